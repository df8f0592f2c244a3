"""The import pipeline's steps for one file, listed in one place (:data:`STAGES`).

Each stage reads and fills one :class:`Work` and may end it early with a
result (an unchanged file, content already in the library). Its progress
fraction is owned by the table, so the job list and progress bars agree on
how far a file is. A stage raising ``EngineError`` fails only its file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine import audio
from engine.analysis import analyse
from engine.config import Settings
from engine.features import FEATURE_VERSION
from engine.spool import spool
from engine.store import (
    CategoryScores,
    Description,
    EmbeddingFailure,
    EmbeddingWrite,
    JobStatus,
    Measurements,
    NewTrack,
    Source,
    Store,
    TrackRecord,
    WaveformWrite,
)
from engine.vectors import embed_decoded
from engine.waveform import WAVEFORM_VERSION, overview

log = logging.getLogger(__name__)


@dataclass
class FileResult:
    """How one file's import ended."""

    source: str  # the path, or an upload's original name
    status: JobStatus  # added | duplicate | failed
    track_id: str | None = None
    error: str | None = None
    job_id: str | None = None
    note: str | None = None  # e.g. why the embedding is pending

    def to_dict(self) -> dict:
        return {"source": self.source, "status": self.status.value, "track_id": self.track_id,
                "error": self.error, "job_id": self.job_id, "note": self.note}


@dataclass(frozen=True)
class Item:
    """One file queued for import."""

    path: Path  # where the bytes are now
    source: str  # what to call it in messages and the job list
    filename: str  # original base name, stored as metadata
    placement: str  # "reference" (index in place), "copy" (keep a managed copy) or "move" (a spooled upload)
    job_id: str


@dataclass
class Work:
    """One file in flight: what the stages know so far."""

    item: Item
    store: Store
    settings: Settings
    model_id: str | None  # the loaded model's id, or None when embeddings will be pending
    embed_audio: Callable | None  # the shared batcher's embed_audio, or None
    pending: str | None  # why the embedding will be pending, if it will
    categoriser: object | None = None  # engine.classify.Categoriser of the model, or None
    size: int = 0
    source: Source | None = None  # set for a user's file (not an upload)
    track_id: str | None = None
    decoded: audio.DecodedAudio | None = None
    measurements: Measurements | None = None
    description: Description | None = None
    embedding: EmbeddingWrite | None = None
    categories: CategoryScores | None = None
    waveform: WaveformWrite | None = None
    staged: list[Path] = field(default_factory=list)  # temporary copies to remove afterwards

    def done(self, status: JobStatus, note: str | None = None) -> FileResult:
        return FileResult(self.item.source, status, self.track_id, job_id=self.item.job_id, note=note)


def validate(work: Work) -> FileResult | None:
    """Type and size, before a byte is read; an unchanged known file ends here, unread."""
    settings, item = work.settings, work.item
    work.size = audio.check_file(item.path, allowed_extensions=settings.allowed_extensions,
                                 max_size_bytes=settings.max_file_size_bytes, display_name=item.source)
    if item.placement == "move":
        return None
    resolved = item.path.resolve()
    work.source = Source(str(resolved), work.size, os.stat(resolved).st_mtime)
    work.track_id = work.store.sources.track_for(work.source)
    return work.done(JobStatus.DUPLICATE) if work.track_id else None


def identify(work: Work) -> FileResult | None:
    """The content's SHA-256 is the track's id: known content is a duplicate (its new path is remembered)."""
    work.track_id = audio.hash_file(work.item.path)
    if not work.store.tracks.exists(work.track_id):
        return None
    if work.source:
        work.store.sources.add(work.track_id, work.source)
        work.store.tracks.found_at(work.track_id, work.source.path)
    return work.done(JobStatus.DUPLICATE)


def decode(work: Work) -> None:
    work.decoded = audio.decode(work.item.path, max_duration_s=work.settings.max_duration_s,
                                display_name=work.item.source)
    # The overview is one min/max pass over the samples just decoded, so the file is never read
    # again for it: 0.2 ms for 1 s, 7 ms for 60 s of audio, under 1% of an import (bench/bench_waveform.py).
    work.waveform = waveform_of(work.decoded)


def waveform_of(decoded: audio.DecodedAudio) -> WaveformWrite:
    """The stored overview of a decoded file (also ``Library.waveform``'s, for a track without one):
    the mono downmix the decode holds, over the seconds analysed."""
    drawn = overview(decoded.samples, sample_rate=decoded.sample_rate)
    return WaveformWrite(WAVEFORM_VERSION, drawn.duration, drawn.peaks)


def measure(work: Work) -> None:
    """Features and what the sample is, from one pass; the path's names are hints."""
    work.measurements, work.description = measure_decoded(work.decoded, name=work.item.source)


def measure_decoded(decoded: audio.DecodedAudio, *, name: str | None) -> tuple[Measurements, Description]:
    """The stored measurements and description of a decoded file (also ``reanalyse``'s)."""
    analysis = analyse(samples=decoded.at_rate(audio.FEATURE_RATE), sample_rate=audio.FEATURE_RATE, name=name)
    features = analysis.features
    measurements = Measurements(tempo=features.tempo_bpm, spectral_centroid=features.spectral_centroid_hz,
                                zero_crossing_rate=features.zero_crossing_rate, rms_energy=features.rms_energy,
                                feature_version=FEATURE_VERSION)
    return measurements, analysis.description


def embed(work: Work) -> None:
    try:
        work.embedding = embed_decoded(work.decoded, work.embed_audio).for_model(work.model_id)
    except Exception as exc:  # the track is still worth keeping; reembed can finish it
        log.exception("embedding failed for %s", work.item.source)
        work.pending = f"Embedding failed ({type(exc).__name__}: {exc}); run 'python -m engine reembed'."
        return
    if work.categoriser is not None:  # one small matrix product; categories never fail an import
        try:
            work.categories = work.categoriser.scores(work.embedding.track[None, :],
                                                      [work.description.name_category])[0]
        except Exception:
            log.exception("categories failed for %s", work.item.source)


def save(work: Work) -> FileResult:
    """Write the track whole: rows, managed copy, embedding (or why not) and the job's end."""
    item, decoded = work.item, work.decoded
    managed_file = None
    if item.placement == "reference":
        path = work.source.path
    else:
        path = work.store.files.relative_path(work.track_id, decoded.container)
        managed_file = item.path
        if item.placement == "copy":
            # Copy before the transaction, so the store lock is held only for a rename.
            with open(item.path, "rb") as original:
                managed_file = spool(original, item.filename, work.settings.tmp_dir)
            work.staged.append(managed_file)
    record = TrackRecord(
        id=work.track_id, filename=item.filename, storage="managed" if managed_file else "referenced",
        path=path, format=decoded.container, codec=decoded.codec, file_size=work.size,
        file_mtime=work.source.file_mtime if work.source else None, sample_rate=decoded.sample_rate,
        channels=decoded.channels, duration=decoded.duration_s, analysed_duration=decoded.analysed_s,
        truncated=decoded.truncated,
    )
    # No vectors to write: record why, in the same transaction as the track.
    embedding = EmbeddingFailure(work.model_id, work.pending) if work.pending else work.embedding
    added = work.store.tracks.add(NewTrack(record, work.measurements, source=work.source,
                                           managed_file=managed_file, embedding=embedding, job_id=item.job_id,
                                           description=work.description, categories=work.categories,
                                           waveform=work.waveform))
    if not added:
        return work.done(JobStatus.DUPLICATE)
    return work.done(JobStatus.ADDED, note=f"Embedding pending: {work.pending}" if work.pending else None)


@dataclass(frozen=True)
class Stage:
    name: str  # shown in the job list
    progress: float  # how far a file is when this stage starts, 0 to 1
    run: Callable[[Work], FileResult | None]  # a result ends the file's import
    when: Callable[[Work], bool] = lambda work: True
    heavy: bool = True  # reads or decodes: runs in one of the max_concurrent_jobs slots


# The pipeline, in order. Decoding is the file's only full read; every later
# stage works on that one decode. Embedding and saving are light for the file's
# own thread (it waits for the shared model), so a short file leaves its slot there
# and the next file decodes while the model works (engine.ingest.SHORT_FILE_S).
STAGES: tuple[Stage, ...] = (
    Stage("validate", 0.02, validate),
    Stage("hash", 0.05, identify),
    Stage("decode", 0.15, decode),
    Stage("features", 0.45, measure),
    Stage("embed", 0.60, embed, when=lambda work: work.embed_audio is not None, heavy=False),
    Stage("save", 0.95, save, heavy=False),
)
