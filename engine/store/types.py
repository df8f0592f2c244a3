"""What the library stores and hands back: typed rows and the value objects of a write.

Reads return these instead of dicts, so a caller's editor knows every field;
a new track's write is one :class:`NewTrack`, so everything that lands in the
track's transaction is visible in one place.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

STORAGE_KINDS = ("managed", "referenced")
# A managed copy's path relative to the data folder; nothing else is ever opened or removed there.
MANAGED_PATH = re.compile(r"audio/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,8}")


class JobStatus(enum.StrEnum):
    """Where one file's import job stands, stored and shown as the plain word."""

    QUEUED = "queued"
    RUNNING = "running"
    ADDED = "added"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class Filters:
    """What a search or a listing keeps. Tracks without a tempo never pass a tempo filter."""

    min_duration: float | None = None  # seconds
    max_duration: float | None = None
    min_tempo: float | None = None  # BPM
    max_tempo: float | None = None
    formats: tuple[str, ...] = ()  # e.g. ("wav", "flac"); empty means all


@dataclass(frozen=True)
class Track:
    """One stored track with its measurements, as every reader sees it."""

    id: str  # SHA-256 of the file's bytes
    filename: str  # the original base name, metadata only
    storage: str  # "managed" (a copy under data/audio) or "referenced" (the user's file in place)
    path: str  # managed: relative to the data folder; referenced: absolute
    format: str
    codec: str | None
    file_size: int
    file_mtime: float | None
    sample_rate: int  # Hz, the original file's
    channels: int  # the original file's
    duration: float  # seconds, the whole file
    analysed_duration: float  # seconds decoded and measured
    truncated: bool
    created_at: dt.datetime
    tempo: float | None  # BPM; None without a steady pulse
    spectral_centroid: float | None  # Hz
    zero_crossing_rate: float | None  # 0 to 1
    rms_energy: float | None  # linear, full scale 1.0
    feature_version: int | None
    missing: bool  # every file of it is gone; left out of search and the default listing
    locations: tuple[str, ...] = ()  # absolute paths where this content is (the managed copy first)

    def to_dict(self) -> dict:
        return {**asdict(self), "locations": list(self.locations)}


# Whether track ``t`` is missing (every file gone), as SQL.
IS_MISSING = "EXISTS (SELECT 1 FROM missing_tracks m WHERE m.track_id = t.id)"
_FEATURE_COLUMNS = {"tempo", "spectral_centroid", "zero_crossing_rate", "rms_energy", "feature_version"}
# Column list matching Track's fields up to ``missing``, in order (t: tracks, f: features);
# ``locations`` comes from the sources table.
TRACK_COLUMNS = ", ".join(
    IS_MISSING if field.name == "missing"
    else ("f." if field.name in _FEATURE_COLUMNS else "t.") + field.name
    for field in fields(Track) if field.name != "locations"
)


@dataclass(frozen=True)
class Job:
    """One file's import job, as the upload pages and the API show it."""

    id: str
    batch_id: str
    source: str  # a path, or an upload's original name
    status: JobStatus
    stage: str | None
    progress: float  # 0 to 1
    message: str | None
    track_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value}


@dataclass(frozen=True)
class Folder:
    """A folder the library indexes in place."""

    path: str  # absolute
    watched: bool
    added_at: dt.datetime
    last_sync: dt.datetime | None
    tracks: int  # tracks with a file under it, present
    missing: int  # tracks last seen under it whose files are all gone

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Known:
    """A path the library has seen, as it was then: a track's source, or a file that failed."""

    track_id: str | None  # None for a failure
    file_size: int
    file_mtime: float
    error: str | None = None


@dataclass(frozen=True)
class TrackRecord:
    """What is stored about one file, besides its measurements."""

    id: str
    filename: str
    storage: str  # "managed" or "referenced"
    path: str
    format: str
    codec: str | None
    file_size: int
    file_mtime: float | None
    sample_rate: int
    channels: int
    duration: float
    analysed_duration: float
    truncated: bool


@dataclass(frozen=True)
class Measurements:
    """A track's stored measurements; the store keeps them as given."""

    tempo: float | None
    spectral_centroid: float
    zero_crossing_rate: float
    rms_energy: float
    feature_version: int


@dataclass(frozen=True)
class Source:
    """A user's file a track was read from: known unchanged while size and mtime match."""

    path: str  # absolute
    file_size: int
    file_mtime: float


@dataclass(frozen=True)
class EmbeddingWrite:
    """One track's embeddings from one model: the pooled vector and every window's."""

    model_id: str
    pipeline_version: int
    track: np.ndarray  # float32 (D,)
    windows: np.ndarray  # float32 (n, D)
    starts_s: list[float]
    ends_s: list[float]


@dataclass(frozen=True)
class EmbeddingFailure:
    """Why a track has no embedding (yet): stored so a user can see it and reembed."""

    model_id: str | None
    message: str


@dataclass(frozen=True)
class NewTrack:
    """Everything one new track writes, committed together or not at all."""

    record: TrackRecord
    measurements: Measurements
    source: Source | None = None  # a user's file in place, remembered so a rerun skips it unread
    managed_file: Path | None = None  # a file moved to ``record.path`` inside the transaction
    embedding: EmbeddingWrite | EmbeddingFailure | None = None
    job_id: str | None = None  # finished as added in the same transaction


@dataclass(frozen=True)
class Embedded:
    """What an embedding write stored: enough for a search index to take the track in."""

    model_id: str
    pipeline_version: int
    vector: np.ndarray  # float32 (D,)
    window_count: int


@dataclass(frozen=True)
class Change:
    """One entry of the change journal search indexes replay."""

    revision: int
    kind: str  # add, delete, embed, missing (files gone), found (back again), reload
    track_id: str
    embedded: Embedded | None = None  # add and embed: the embedding written with the change, if any


@dataclass(frozen=True)
class WindowSet:
    """One track's window embeddings from one model."""

    starts_s: list[float]
    ends_s: list[float]
    embeddings: np.ndarray  # float32 (len(starts_s), D), read-only
