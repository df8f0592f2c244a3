"""Following watched folders as files arrive, change, move and go.

watchdog reports events on its own thread; they are only collected here. One
worker thread waits until the folders have been quiet for ``QUIET_S``, checks
that new files have stopped growing, and syncs exactly the paths that changed
(engine.sync), so a burst of a thousand files is one queue worked through in
batches, not a thousand threads, and a move is seen as one (both of its paths
are synced together).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

QUIET_S = 1.0  # no events for this long: the burst is over
STABLE_S = 0.5  # a file whose size changed within this is still being written
MAX_WAIT_S = 10.0  # sync what has settled even while events keep coming


class FolderWatcher:
    """Watches folders and calls ``sync(paths)`` with the changed paths, debounced."""

    def __init__(self, sync: Callable[[list[str]], object], *, quiet_s: float = QUIET_S):
        self._sync = sync
        self._quiet_s = quiet_s
        self._pending: dict[str, float] = {}  # path -> when an event last named it
        self._lock = threading.Condition()
        self._stopping = False
        self._observer = None
        self._watches: dict[str, object] = {}
        self._thread = threading.Thread(target=self._loop, name="folder-watch", daemon=True)

    def start(self, folders: list[str]) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.daemon = True
        self.update(folders)
        self._observer.start()
        self._thread.start()

    def update(self, folders: list[str]) -> None:
        """Watch exactly these folders (new ones are added, dropped ones unwatched)."""
        wanted = {os.path.realpath(f) for f in folders if os.path.isdir(f)}
        for folder in set(self._watches) - wanted:
            self._observer.unschedule(self._watches.pop(folder))
        for folder in wanted - set(self._watches):
            self._watches[folder] = self._observer.schedule(_Handler(self._note), folder, recursive=True)

    @property
    def folders(self) -> list[str]:
        return sorted(self._watches)

    def stop(self) -> None:
        """Stop watching; a sync under way finishes first (each file's write is one transaction)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join()

    def _note(self, *paths: str) -> None:
        now = time.monotonic()
        with self._lock:
            for path in paths:
                if path and not os.path.basename(path).startswith("."):
                    self._pending[path] = now
            self._lock.notify_all()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                first = min(self._pending.values())
                # Wait for a quiet moment, but not forever while a long copy keeps the folder busy.
                while not self._stopping:
                    last = max(self._pending.values())
                    now = time.monotonic()
                    if now - last >= self._quiet_s or now - first >= MAX_WAIT_S:
                        break
                    self._lock.wait(self._quiet_s - (now - last) if now - last < self._quiet_s else 0.1)
                if self._stopping:
                    return
                batch = self._pending
                self._pending = {}
            ready, growing = _settled(list(batch))
            if growing:
                self._note(*growing)  # still being written: look again later
            if ready:
                try:
                    self._sync(ready)
                except Exception:  # a sync failing must not end the watch
                    log.exception("sync of watched changes failed")


def _settled(paths: list[str]) -> tuple[list[str], list[str]]:
    """Split paths into those ready to sync and files still growing (size changed within STABLE_S)."""
    sizes = {p: _size(p) for p in paths}
    time.sleep(STABLE_S)
    growing = [p for p in paths if sizes[p] is not None and _size(p) != sizes[p]]
    return [p for p in paths if p not in growing], growing


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size if os.path.isfile(path) else None
    except OSError:
        return None


class _Handler:
    """Forwards the paths of every create, modify, move and delete to ``note``."""

    def __init__(self, note: Callable[..., None]):
        self._note = note

    def dispatch(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return  # its files have events of their own; syncing the folder would rescan all of it
        paths = [event.src_path]
        if getattr(event, "dest_path", ""):
            paths.append(event.dest_path)
        self._note(*(os.fsdecode(p) for p in paths))
