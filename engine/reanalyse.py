"""Bring existing tracks up to the current analysis without re-embedding them.

A track analysed by an older version (``FEATURE_VERSION``,
``DESCRIPTION_VERSION``) or never described is decoded again from its file
and measured by the same code as an import (``engine.stages.measure_decoded``);
its features and description are replaced in one transaction. Its
embeddings are not touched: categories come from them
(``engine.classify.categorise_library``). A file that is gone or changed is
reported and skipped, and the track keeps what it had.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from engine.analysis import DESCRIPTION_VERSION
from engine.config import Settings
from engine.features import FEATURE_VERSION, warm_up
from engine.ingest import Progress, ProgressCallback, decode_stored, failure_message, report_progress
from engine.stages import FileResult, measure_decoded
from engine.store import JobStatus, Store, Track

CHUNK = 256  # tracks listed at a time


@dataclass
class ReanalyseState:
    """A background reanalysis, as the dashboard shows it."""

    running: bool = False
    done: int = 0
    total: int = 0
    failed: list[FileResult] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"running": self.running, "done": self.done, "total": self.total, "error": self.error,
                "failed": [result.to_dict() for result in self.failed]}


def outdated(store: Store) -> int:
    """How many tracks the current analysis has not seen."""
    return store.descriptions.count_to_analyse(feature_version=FEATURE_VERSION,
                                               description_version=DESCRIPTION_VERSION)


def reanalyse(store: Store, settings: Settings, *, progress: ProgressCallback | None = None,
              stop: threading.Event | None = None, state: ReanalyseState | None = None) -> list[FileResult]:
    """Analyse every outdated track again; results per track (``added``: updated, ``failed``: why not)."""
    state = state or ReanalyseState()
    results: list[FileResult] = []
    skipped: set[str] = set()  # failed this run: not listed again
    state.total = outdated(store)
    warm_up()
    with ThreadPoolExecutor(max_workers=max(1, settings.max_concurrent_jobs)) as pool:
        while not (stop and stop.is_set()):
            ids = [i for i in store.descriptions.to_analyse(
                feature_version=FEATURE_VERSION, description_version=DESCRIPTION_VERSION,
                limit=CHUNK + len(skipped)) if i not in skipped][:CHUNK]
            if not ids:
                break
            tracks = store.tracks.get_many(ids, located=False)
            for result in pool.map(lambda track: None if stop and stop.is_set() else
                                   _one(store, settings, track, progress),
                                   [tracks[i] for i in ids if i in tracks]):
                if result is None:  # stopped: the rest of the chunk is left for next time
                    continue
                results.append(result)
                state.done += 1
                if result.status == JobStatus.FAILED:
                    skipped.add(result.track_id)
                    state.failed.append(result)
            skipped |= set(ids) - set(tracks)  # deleted meanwhile
    return results


def _one(store: Store, settings: Settings, track: Track, progress: ProgressCallback | None) -> FileResult:
    name = track.filename
    try:
        path, decoded = decode_stored(store, settings, track, progress)
        report_progress(progress, Progress(track.id, name, "features", 0.6))
        # The hints come from where the file is (a managed copy's path is its hash: its name then).
        measurements, description = measure_decoded(
            decoded, name=str(path) if track.storage == "referenced" else track.filename)
        saved = store.descriptions.save(track.id, measurements, description)
        result = FileResult(name, JobStatus.ADDED if saved else JobStatus.FAILED, track.id,
                            error=None if saved else f"{name}: the track was deleted meanwhile.")
    except Exception as exc:  # one bad file never stops the pass
        result = FileResult(name, JobStatus.FAILED, track.id, error=failure_message(name, exc))
    report_progress(progress, Progress(track.id, name, "done", 1.0, result))
    return result
