"""The library as the CLI and the dashboard see it: one object per process."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.config import Settings, load_settings
from engine.ingest import FileResult, Ingestor, ProgressCallback
from engine.store import Store


class Library:
    """A store plus the settings and pipeline that work on it."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.store = Store(self.settings.data_dir)
        # Opening is the moment to clean up after a process that died: DuckDB
        # gives one process the file, so nothing else can be mid-import.
        self.interrupted_jobs = self.store.interrupt_stale_jobs()
        self.swept_files = self.store.sweep_orphans()
        shutil.rmtree(self.settings.tmp_dir, ignore_errors=True)
        self.ingestor = Ingestor(self.store, self.settings)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ingest(self, paths, *, copy: bool = False, progress: ProgressCallback | None = None) -> list[FileResult]:
        return self.ingestor.ingest_paths(paths, copy=copy, progress=progress)

    def ingest_upload(self, name: str, data: bytes, *, progress: ProgressCallback | None = None) -> FileResult:
        return self.ingestor.ingest_upload(name, data, progress=progress)

    def track(self, track_id: str) -> dict:
        return self.store.get_track(self.store.resolve_id(track_id))

    def tracks(self, *, limit: int = 50, offset: int = 0) -> list[dict]:
        return self.store.list_tracks(limit=limit, offset=offset)

    def stats(self) -> dict:
        return self.store.stats()

    def delete(self, track_id: str) -> dict:
        return self.store.delete_track(self.store.resolve_id(track_id))

    def audio_path(self, track: dict) -> Path:
        return self.store.absolute_path(track)
