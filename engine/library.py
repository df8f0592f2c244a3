"""The library as the CLI and the dashboard see it: one object per process."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from engine import audio
from engine.config import Settings, load_settings
from engine.clap import get_embedder, model_status
from engine.errors import EngineError, InputError
from engine.ingest import FileResult, Ingestor, ProgressCallback, reembed, safe_filename, spool
from engine.search import DEFAULT_LIMIT, Filters, Hit, VectorIndex, best_windows, rank_segments
from engine.store import Store
from engine.vectors import PIPELINE_VERSION, embed_track
from engine.windows import WINDOW_SECONDS


class Library:
    """A store plus the settings, model and pipeline that work on it."""

    def __init__(self, settings: Settings | None = None, *, embedder_provider=None):
        self.settings = settings or load_settings()
        self.store = Store(self.settings.data_dir)
        # Opening is the moment to clean up after a process that died: DuckDB
        # gives one process the file, so nothing else can be mid-import.
        self.interrupted_jobs = self.store.interrupt_stale_jobs()
        self.swept_files = self.store.sweep_orphans()
        shutil.rmtree(self.settings.tmp_dir, ignore_errors=True)
        self.embedder_provider = embedder_provider or (lambda: get_embedder(self.settings))
        self.ingestor = Ingestor(self.store, self.settings, embedder_provider=self._embedder)
        self._index: VectorIndex | None = None
        self._index_lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- importing ------------------------------------------------------------

    def ingest(self, paths, *, copy: bool = False, progress: ProgressCallback | None = None) -> list[FileResult]:
        return self.ingestor.ingest_paths(paths, copy=copy, progress=progress)

    def ingest_upload(self, name: str, data: bytes, *, progress: ProgressCallback | None = None) -> FileResult:
        return self.ingestor.ingest_upload(name, data, progress=progress)

    def reembed(self, *, progress: ProgressCallback | None = None) -> list[FileResult]:
        return reembed(self.store, self.settings, self._embedder(), progress=progress)

    # -- reading --------------------------------------------------------------

    def track(self, track_id: str) -> dict:
        return self.store.get_track(self.store.resolve_id(track_id))

    def tracks(self, *, limit: int = 50, offset: int = 0) -> list[dict]:
        return self.store.list_tracks(limit=limit, offset=offset)

    def stats(self) -> dict:
        stats = self.store.stats()
        status = self.model_status()
        # Which embeddings are pending depends on the model; unknown until it has loaded.
        stats["pending_embeddings"] = (
            self.store.count_pending(status["model_id"], PIPELINE_VERSION) if status["loaded"] else None
        )
        return stats

    def delete(self, track_id: str) -> dict:
        return self.store.delete_track(self.store.resolve_id(track_id))

    def audio_path(self, track: dict) -> Path:
        return self.store.absolute_path(track)

    def model_status(self) -> dict:
        """What the model is or would be, without loading it (cheap enough for every page view)."""
        return model_status(self.settings, predict_id=False, import_torch=False)

    # -- searching ------------------------------------------------------------

    def prepare_search(self) -> None:
        """Load the model and the vector index now, so the first search pays for neither."""
        self._index_for(self._embedder()).sync()

    def search(self, *, text: str | None = None, audio_path: Path | None = None, audio_bytes: bytes | None = None,
               audio_name: str = "query.wav", like: str | None = None, filters: Filters = Filters(),
               limit: int = DEFAULT_LIMIT, min_score: float | None = None, segments: bool = False) -> list[Hit]:
        """Rank the library against one query: a text prompt, example audio, or a track ("more like this")."""
        given = [text is not None, audio_path is not None or audio_bytes is not None, like is not None]
        if sum(given) != 1:
            raise InputError("give exactly one query: a text prompt, an audio example or a track id.",
                             title="Invalid search")
        if limit < 1:
            raise InputError("the result limit must be at least 1.", title="Invalid search")
        embedder = self._embedder()
        index = self._index_for(embedder)
        exclude = None
        if text is not None:
            if not text.strip():
                raise InputError("type something to search for.", title="Empty prompt")
            query = embedder.embed_text([text.strip()])[0]
        elif like is not None:
            exclude = self.store.resolve_id(like)
            query = index.vector_of(exclude)
            if query is None:
                raise EngineError("this track has no embedding yet, so there is nothing to compare with.",
                                  hint="Run 'python -m engine reembed'.", title="Embedding pending")
        else:
            query = self._embed_example(embedder, audio_path, audio_bytes, audio_name)

        if segments:
            allowed = index.allowed_ids(filters)
            ranked = rank_segments(self.store, embedder.model_id, query, allowed, limit=limit,
                                   min_score=min_score, exclude=exclude)
            spans = {track_id: (start, end) for track_id, _, start, end in ranked}
            scored = [(track_id, score) for track_id, score, _, _ in ranked]
        else:
            scored = index.top(query, filters=filters, limit=limit, min_score=min_score, exclude=exclude)
            # A single-window track's best segment is that window: no need to read it back.
            best = best_windows(self.store, embedder.model_id, query, index.multi_window([i for i, _ in scored]))
            spans = {track_id: (start, end) for track_id, (_, start, end) in best.items()}
        return self._hits(scored, spans)

    def _hits(self, scored, spans) -> list[Hit]:
        tracks = self.store.get_tracks([track_id for track_id, _ in scored])
        hits = []
        for track_id, score in scored:
            track = tracks.get(track_id)
            if track is None:  # deleted between the scan and this read
                continue
            start, end = spans.get(track_id, (0.0, min(track["duration"], WINDOW_SECONDS)))
            hits.append(Hit(
                id=track_id, filename=track["filename"], score=score, rank=len(hits) + 1,
                duration=track["duration"], tempo=track["tempo"], spectral_centroid=track["spectral_centroid"],
                format=track["format"], segment_start=start, segment_end=end, storage=track["storage"],
                path=str(self.store.absolute_path(track)),
            ))
        return hits

    def _embed_example(self, embedder, audio_path, audio_bytes, audio_name):
        settings = self.settings
        spooled = None
        try:
            if audio_bytes is not None:
                name = safe_filename(audio_name)
                audio.check_size(len(audio_bytes), max_size_bytes=settings.max_file_size_bytes, name=name)
                spooled = spool(audio_bytes, name, settings.tmp_dir)
                path, display = spooled, name
            else:
                path, display = Path(audio_path), str(audio_path)
            audio.check_file(path, allowed_extensions=settings.allowed_extensions,
                             max_size_bytes=settings.max_file_size_bytes, display_name=display)
            decoded = audio.decode(path, max_duration_s=settings.max_duration_s, display_name=display)
            return embed_track(decoded.at_rate(audio.CLAP_RATE), embedder.embed_audio).track
        finally:
            if spooled is not None:
                spooled.unlink(missing_ok=True)

    def _embedder(self):
        return self.embedder_provider()

    def _index_for(self, embedder) -> VectorIndex:
        with self._index_lock:
            if self._index is None or self._index.model_id != embedder.model_id:
                self._index = VectorIndex(self.store, embedder.model_id, embedder.dim)
            return self._index



