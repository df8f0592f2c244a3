"""The library's folders: adding and checking them, syncing in the foreground or the
background, removing them, and watching them (engine.sync, engine.watch)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from engine.config import Settings
from engine.errors import EngineError, InputError, NotFoundError
from engine.ingest import Ingestor
from engine.scan import within
from engine.store import Folder, Store
from engine.sync import SyncCallback, Syncer, SyncProgress, SyncReport
from engine.watch import FolderWatcher

log = logging.getLogger(__name__)


class FolderKeeper:
    def __init__(self, store: Store, ingestor: Ingestor, settings: Settings):
        self._store = store
        self._settings = settings
        self._syncer = Syncer(store, ingestor, settings)
        self._watcher: FolderWatcher | None = None
        self._on_sync = None  # called with each watcher-driven sync's report
        self._state: dict = {"running": False, "progress": None, "report": None, "error": None, "runs": 0}
        self._queue: list[list[str]] = []  # background sync requests not started yet
        self._current: list[str] = []  # the roots of the background sync under way
        self._state_lock = threading.Lock()

    # -- the folder list -------------------------------------------------------

    def add(self, path, *, watch: bool, progress: SyncCallback | None, background: bool) -> SyncReport | None:
        folder = self._checked(path)
        self._store.folders.add(folder, watched=watch)
        self._rewatch()
        if background:
            self.start_sync([folder])
            return None
        return self._syncer.sync([folder], progress=progress)

    def remember(self, paths: list[Path]) -> None:
        """Folders an import came from become library folders (not watched unless asked)."""
        for path in paths:
            real = os.path.realpath(path)
            if not self._inside_data(real):
                self._store.folders.remember(real)

    def set_watched(self, path, watched: bool) -> Folder:
        folder = self._known(path)
        self._store.folders.set_watched(folder, watched)
        self._rewatch()
        return self._store.folders.get(folder)

    def remove(self, path) -> dict:
        """Forget a folder; tracks with no location left in another folder go with it (rows only)."""
        folder = self._known(path)
        with self._syncer.lock:
            self._store.folders.remove(folder)
            others = [f.path for f in self._store.folders.list()]
            local = {p: k for p, k in self._store.sources.under([folder]).items()
                     if not any(within(p, other) for other in others)}
            self._store.sources.forget(list(local))
            affected = sorted({k.track_id for k in local.values() if k.track_id})
            removed = []
            remaining = self._store.sources.of(affected)
            for track in self._store.tracks.get_many(affected).values():
                if track.storage == "referenced" and not remaining.get(track.id):
                    self._store.tracks.delete(track.id)
                    removed.append({"path": track.path, "id": track.id})
        self._rewatch()
        return {"removed": folder, "tracks_removed": removed}

    # -- syncing -----------------------------------------------------------------

    def sync(self, paths, *, prune: bool, progress: SyncCallback | None) -> SyncReport:
        return self._syncer.sync(self._roots(paths), prune=prune, progress=progress)

    def start_sync(self, paths) -> bool:
        """Sync in a background thread; a request made while one runs is queued behind it.
        True when this request starts a new run."""
        roots = self._roots(paths)  # a bad path is reported now, not in the background
        with self._state_lock:
            # A request already covered by the sync under way, or by one waiting, adds nothing.
            covered = self._current + [root for request in self._queue for root in request]
            roots = [root for root in roots if not any(within(root, other) for other in covered)]
            if roots:
                self._queue.append(roots)
            if self._state["running"]:
                return False
            self._state.update(running=True, progress=SyncProgress("scan"), report=None, error=None)
        threading.Thread(target=self._run_queue, name="library-sync", daemon=True).start()
        return True

    def _run_queue(self) -> None:
        def note(event: SyncProgress) -> None:
            with self._state_lock:
                self._state["progress"] = event

        while True:
            with self._state_lock:
                self._current = []
                if not self._queue:
                    self._state["running"] = False
                    return
                roots = sorted({root for request in self._queue for root in request})
                self._queue.clear()
                self._current = roots
            report, error = None, None
            try:
                report = self._syncer.sync(roots, progress=note)
            except EngineError as exc:
                error = exc
            except Exception as exc:  # shown on the page; the trace goes to the log
                log.exception("background sync failed")
                error = EngineError(f"the sync stopped unexpectedly ({type(exc).__name__}: {exc}).",
                                    title="Sync failed", hint="Run it again; the library keeps what was done.")
            with self._state_lock:
                self._state.update(report=report, error=error, runs=self._state["runs"] + 1)

    def state(self) -> dict:
        with self._state_lock:
            return dict(self._state)

    def prune(self) -> list[dict]:
        with self._syncer.lock:
            missing = self._store.tracks.get_many(self._store.tracks.missing_ids())
            for track in missing.values():
                self._store.tracks.delete(track.id)
        return [{"path": t.path, "id": t.id} for t in missing.values()]

    # -- watching ----------------------------------------------------------------

    def watch(self, stop: threading.Event, on_sync=None) -> None:
        """Watch in the foreground: the watcher starts first, so nothing that changes during
        the catch-up sync of the watched folders is missed; then wait for ``stop``."""
        self._on_sync = on_sync
        self.start_watching()
        try:
            report = self._syncer.sync(self._watched())
            if on_sync is not None:
                on_sync(report)
            stop.wait()
        finally:
            self.stop_watching()

    def start_watching(self, *, catch_up: bool = False) -> None:
        """Watch the watched folders; ``catch_up`` first syncs them in the background (what
        changed while nothing watched)."""
        if self._watcher is None:
            self._watcher = FolderWatcher(self._sync_changed)
            self._watcher.start(self._watched())
            if catch_up and self._watched():
                self.start_sync(self._watched())

    def stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _sync_changed(self, paths: list[str]) -> None:
        folders = self._watched()
        roots = sorted({os.path.realpath(p) if os.path.exists(p) else p for p in paths
                        if any(within(p, folder) for folder in folders)})
        if roots:
            report = self._syncer.sync(roots)
            if self._on_sync is not None:
                self._on_sync(report)

    def _rewatch(self) -> None:
        if self._watcher is not None:
            self._watcher.update(self._watched())

    def _watched(self) -> list[str]:
        return [f.path for f in self._store.folders.list() if f.watched]

    # -- paths ---------------------------------------------------------------------

    def _checked(self, path) -> str:
        """A folder a user typed or pasted, resolved, or an InputError saying what is wrong with it."""
        raw = str(path).strip().strip('"').strip("'")
        if not raw:
            raise InputError("type or paste the path of a folder.", title="No folder given")
        _real(raw)  # a path the system cannot take is refused here
        folder = Path(raw).expanduser()
        if not folder.is_absolute():
            folder = Path.cwd() / folder
        if not folder.exists():
            raise InputError(f"{folder} does not exist.", title="Folder not found",
                             hint="Check the path; on a removable drive, connect it first.")
        if not folder.is_dir():
            raise InputError(f"{folder} is a file, not a folder.", title="Not a folder",
                             hint="Give the folder that holds your samples.")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise InputError(f"{folder} cannot be read by this program.", title="Folder not readable",
                             hint="Check its permissions.")
        real = os.path.realpath(folder)
        if self._inside_data(real):
            raise InputError(f"{folder} is the library's own data folder.", title="Not a sample folder",
                             hint="Add the folders where your samples are; uploads already live here.")
        return real

    def _inside_data(self, real: str) -> bool:
        return within(real, os.path.realpath(self._settings.data_dir))

    def _known(self, path) -> str:
        real = _real(str(path).strip())
        known = [f.path for f in self._store.folders.list()]
        if real not in known:
            raise NotFoundError(f"{path} is not one of the library's folders.",
                                hint="List them with 'python -m engine folder list'.")
        return real

    def _roots(self, paths) -> list[str]:
        """The given paths resolved (each inside a library folder), or every library folder."""
        folders = [f.path for f in self._store.folders.list()]
        if not paths:
            return folders
        roots = []
        for path in paths:
            real = _real(str(path))
            if not any(within(real, folder) for folder in folders):
                raise NotFoundError(f"{path} is not in one of the library's folders.",
                                    hint="Add it first with 'python -m engine folder add PATH'.")
            roots.append(real)
        return roots


def _real(path: str) -> str:
    """``path`` resolved (user folder expanded, links followed), or an InputError for one the
    system cannot take (a NUL byte, an overlong name, "~someone" who is no user here)."""
    try:
        return os.path.realpath(Path(path).expanduser(), strict=False)
    except (ValueError, OSError, RuntimeError) as exc:
        raise InputError(f"{path!r} is not a usable path ({exc}).", title="Invalid path") from None
