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

from engine import audio
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

        to_check = self._compare(files, known, missing_before, report)
        gone = {path: seen for path, seen in known.items() if path not in files}
        store.sources.forget([path for path, seen in gone.items() if seen.track_id is None])
        gone_of: dict[str, list[str]] = {}
        for path, seen in sorted(gone.items()):
            if seen.track_id is not None:
                gone_of.setdefault(seen.track_id, []).append(path)

        to_import = self._follow_moves(to_check, files, known, gone_of, report)
        results = self._import(to_import, len(files), progress)
        replaced = self._classify(to_import, results, files, known, gone_of, missing_before, report)

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
        progress(SyncProgress("done", found=len(files), done=len(to_check), total=len(to_check)))
        return report

    @staticmethod
    def _compare(files: dict, known: dict, missing_before: set[str], report: SyncReport) -> list[str]:
        """Count what is as the library last saw it; return the paths that need a closer look."""
        to_check = []
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
                to_check.append(path)
        return to_check

    def _follow_moves(self, paths: list[str], files: dict, known: dict, gone_of: dict[str, list[str]],
                      report: SyncReport) -> list[str]:
        """Record moves without the import pipeline; return the paths it must still import.

        A file at a new path whose content is a track that lost a path has moved.
        Moves keep a file's size, so only files of a size some lost path had are
        hashed here (the rest are new or changed, and the pipeline hashes them).
        """
        lost_sizes = {known[path].file_size for lost in gone_of.values() for path in lost}
        candidates = [path for path in paths if path not in known and files[path][0] in lost_sizes]
        origins = {track_id: list(lost) for track_id, lost in gone_of.items()}
        moves: list[tuple[str, Source]] = []
        for path in candidates:
            try:
                track_id = audio.hash_file(Path(path))
            except OSError:
                continue  # gone again or unreadable: the pipeline reports it
            if origins.get(track_id):
                moves.append((track_id, Source(path, *files[path])))
                report.moved.append({"path": path, "from": origins[track_id].pop(0), "id": track_id})
        self._store.sources.add_many(moves)
        moved = {source.path for _, source in moves}
        return [path for path in paths if path not in moved]

    def _classify(self, paths: list[str], results, files: dict, known: dict, gone_of: dict[str, list[str]],
                  missing_before: set[str], report: SyncReport) -> set[str]:
        """Sort imported files into the report; return the ids of tracks whose path now holds other content."""
        store, replaced = self._store, set()
        for path, result in zip(paths, results):
            before = known.get(path)
            before_id = before.track_id if before else None
            if result.status == JobStatus.FAILED:
                store.sources.note_failure(Source(path, *files[path]), result.error)
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
        return replaced

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
        """Forget gone paths and set each affected track's playing path and missing flag, in one
        write for all of them (a moved folder of a thousand tracks is one transaction)."""
        store = self._store
        tracks = store.tracks.get_many(sorted(track_ids), located=False)
        locations = store.sources.of(sorted(track_ids))
        forget: list[str] = []
        relocate: list[tuple[str, str, bool]] = []  # (track id, path, missing)
        for track_id, track in tracks.items():
            paths = locations.get(track_id, [])
            # A location outside this sync's roots is checked on disk.
            present = [p for p in paths if p in files or Path(p).is_file()]
            gone = [p for p in paths if p not in present]
            if track.storage == "managed":
                forget += gone
            elif present:
                forget += gone
                if track.path not in present or track.missing:
                    relocate.append((track_id, present[0], False))
            elif track_id in replaced or prune:
                # Its only path now holds other content (or the user asked to prune): it is gone for good.
                store.tracks.delete(track_id)
                if prune and track_id not in replaced:
                    report.pruned.append({"path": track.path, "id": track_id})
            elif gone:
                keep = track.path if track.path in gone else gone[0]
                forget += [p for p in gone if p != keep]
                if not track.missing:
                    relocate.append((track_id, keep, True))
        store.sources.forget(forget)
        store.tracks.set_locations(relocate)


def _safe(progress: SyncCallback | None) -> SyncCallback:
    """A progress callback whose failures are logged, never raised: a broken display must not stop a sync."""

    def report(event: SyncProgress) -> None:
        if progress is not None:
            try:
                progress(event)
            except Exception:
                log.exception("sync progress callback failed")

    return report
