"""Keeping the library in step with the user's folders: what was added, changed, moved or lost.

A sync scans folders (engine.scan) and compares every file with what the
library knows of its path:

* same path, same size and mtime: **unchanged**, not read;
* a file that failed before and has not changed since: counted, not retried;
* a new path: imported through the normal pipeline, which hashes it first. Content
  the library already has whose old path is gone has **moved**: the track keeps
  its id, tags and embeddings and nothing is decoded; content still present
  elsewhere is a second location (**duplicates**);
* a known path whose bytes changed: **changed**, its track replaced by the new content's;
* a known path that is gone: the location is forgotten, and a track left with no
  file is **missing** (kept, out of search) until it comes back or is pruned.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from engine.config import Settings
from engine.ingest import Ingestor, Progress
from engine.scan import scan, within
from engine.store import JobStatus, Source, Store

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    added: list[dict] = field(default_factory=list)  # {path, id}
    changed: list[dict] = field(default_factory=list)  # {path, id}: new content at a known path
    moved: list[dict] = field(default_factory=list)  # {path, from, id}
    duplicates: list[dict] = field(default_factory=list)  # {path, id}: one more location of known content
    restored: list[dict] = field(default_factory=list)  # {path, id}: a missing track's file is back
    missing: list[dict] = field(default_factory=list)  # {path, id}: every missing track in scope, path last seen
    pruned: list[dict] = field(default_factory=list)  # {path, id}
    failed: list[dict] = field(default_factory=list)  # {path, error}: failed in this run
    unchanged: int = 0
    skipped: int = 0  # clutter and hidden files
    failed_before: int = 0  # failed earlier and unchanged since: not retried

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SyncProgress:
    """How far a sync is: ``found`` files so far while scanning, then ``done`` of ``total`` analysed."""

    phase: str  # "scan", "analyse", "done"
    found: int = 0
    done: int = 0
    total: int = 0


SyncCallback = Callable[[SyncProgress], None]


class Syncer:
    """Runs syncs against one store; one at a time (a watcher and a button may both ask)."""

    def __init__(self, store: Store, ingestor: Ingestor, settings: Settings):
        self._store = store
        self._ingestor = ingestor
        self._settings = settings
        self.lock = threading.Lock()

    def sync(self, roots: list[str], *, prune: bool = False, progress: SyncCallback | None = None) -> SyncReport:
        """Sync everything at or under ``roots`` (absolute, resolved paths: folders or single files)."""
        with self.lock:
            return self._sync(roots, prune, _safe(progress))

    def _sync(self, roots: list[str], prune: bool, progress: SyncCallback) -> SyncReport:
        store, report = self._store, SyncReport()
        found = scan([Path(r) for r in roots], allowed_extensions=self._settings.allowed_extensions,
                     exclude=(self._settings.data_dir,), progress=lambda n: progress(SyncProgress("scan", found=n)))
        report.skipped = found.skipped
        files = found.files
        known = store.sources.under(roots)
        missing_before = set(store.tracks.missing_ids())

        to_import: list[str] = []
        for path, stat in files.items():
            seen = known.get(path)
            if seen is not None and (seen.file_size, seen.file_mtime) == stat:
                if seen.track_id is None:
                    report.failed_before += 1
                elif seen.track_id in missing_before:
                    report.restored.append({"path": path, "id": seen.track_id})
                else:
                    report.unchanged += 1
            else:
                to_import.append(path)
        gone = {path: seen for path, seen in known.items() if path not in files}
        store.sources.forget([path for path, seen in gone.items() if seen.track_id is None])
        gone_of: dict[str, list[str]] = {}
        for path, seen in sorted(gone.items()):
            if seen.track_id is not None:
                gone_of.setdefault(seen.track_id, []).append(path)

        results = self._import(to_import, len(files), progress)
        replaced: set[str] = set()
        for path, result in zip(to_import, results):
            before = known.get(path)
            before_id = before.track_id if before else None
            if result.status == JobStatus.FAILED:
                size, mtime = files[path]
                store.sources.note_failure(Source(path, size, mtime), result.error)
                report.failed.append({"path": path, "error": result.error})
                continue
            track_id = result.track_id
            if before_id is not None and before_id != track_id:
                report.changed.append({"path": path, "id": track_id})
                replaced.add(before_id)
            elif before_id == track_id:  # touched, same bytes: only the new mtime is recorded
                if track_id in missing_before:
                    report.restored.append({"path": path, "id": track_id})
                else:
                    report.unchanged += 1
            elif result.status == JobStatus.ADDED:
                report.added.append({"path": path, "id": track_id})
            elif gone_of.get(track_id) or track_id in missing_before:
                origin = (gone_of.get(track_id) or store.sources.of([track_id]).get(track_id, [path]))[0]
                report.moved.append({"path": path, "from": origin, "id": track_id})
            else:
                report.duplicates.append({"path": path, "id": track_id})

        affected = set(gone_of) | replaced | {item["id"] for item in report.moved + report.restored}
        self._settle(affected, files, replaced, prune, report)
        if prune:
            for track in store.tracks.get_many(store.tracks.missing_ids(roots)).values():
                store.tracks.delete(track.id)
                report.pruned.append({"path": track.path, "id": track.id})
        for track in sorted(store.tracks.get_many(store.tracks.missing_ids(roots)).values(), key=lambda t: t.path):
            report.missing.append({"path": track.path, "id": track.id})
        store.folders.synced([folder.path for folder in store.folders.list()
                              if any(within(root, folder.path) for root in roots)])
        progress(SyncProgress("done", found=len(files), done=len(to_import), total=len(to_import)))
        return report

    def _import(self, paths: list[str], found: int, progress: SyncCallback):
        done = 0

        def count(event: Progress) -> None:
            nonlocal done
            if event.result is not None:
                done += 1
                progress(SyncProgress("analyse", found=found, done=done, total=len(paths)))

        progress(SyncProgress("analyse", found=found, done=0, total=len(paths)))
        return self._ingestor.ingest_files([Path(p) for p in paths], progress=count) if paths else []

    def _settle(self, track_ids: set[str], files: dict, replaced: set[str], prune: bool, report: SyncReport) -> None:
        """Forget gone paths and set each affected track's playing path and missing flag."""
        store = self._store
        tracks = store.tracks.get_many(sorted(track_ids))
        locations = store.sources.of(sorted(track_ids))
        for track_id, track in tracks.items():
            paths = locations.get(track_id, [])
            # A location outside this sync's roots is checked on disk.
            present = [p for p in paths if p in files or Path(p).is_file()]
            gone = [p for p in paths if p not in present]
            if track.storage == "managed":
                store.sources.forget(gone)
                continue
            if present:
                store.sources.forget(gone)
                if track.path not in present or track.missing:
                    store.tracks.set_location(track_id, path=present[0], missing=False)
            elif track_id in replaced or prune:
                # Its only path now holds other content (or the user asked to prune): it is gone for good.
                store.tracks.delete(track_id)
                if prune and track_id not in replaced:
                    report.pruned.append({"path": track.path, "id": track_id})
            elif gone:
                keep = track.path if track.path in gone else gone[0]
                store.sources.forget([p for p in gone if p != keep])
                store.tracks.set_location(track_id, path=keep, missing=True)


def _safe(progress: SyncCallback | None) -> SyncCallback:
    """A progress callback whose failures are logged, never raised: a broken display must not stop a sync."""

    def report(event: SyncProgress) -> None:
        if progress is not None:
            try:
                progress(event)
            except Exception:
                log.exception("sync progress callback failed")

    return report
