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

from engine import categories as vocabulary
from engine.errors import InputError
from engine.keys import camelot_of, key_label, labels_matching

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


KINDS = vocabulary.KINDS


@dataclass(frozen=True)
class Filters:
    """What a search or a listing keeps. Tracks without a tempo never pass a tempo filter,
    nor tracks without a key a key filter. Checked when made: a bad value is an InputError."""

    min_duration: float | None = None  # seconds
    max_duration: float | None = None
    min_tempo: float | None = None  # BPM
    max_tempo: float | None = None
    formats: tuple[str, ...] = ()  # e.g. ("wav", "flac"); empty means all
    kinds: tuple[str, ...] = ()  # of KINDS; empty means all
    key: str | None = None  # "F minor", "Fm", "F#", "4A": that key (a bare note: either mode)
    compatible_with: str | None = None  # a key with its mode: it and the keys that mix with it
    categories: tuple[str, ...] = ()  # of engine.categories.NAMES: tracks belonging to any of them
    favourite: bool = False  # only favourites
    tags: tuple[str, ...] = ()  # tracks carrying every one of them (any case)
    collection: str | None = None  # only the tracks of this collection

    def __post_init__(self):
        from engine.store.curation import collection_name, tag_name  # (curation reads the database)

        for tag in self.tags:
            tag_name(tag)
        if self.collection is not None:
            collection_name(self.collection)
        for kind in self.kinds:
            if kind not in KINDS:
                raise InputError(f"{kind!r} is not a kind of sample; choose from {', '.join(KINDS)}.",
                                 title="Invalid filter")
        for name in self.categories:
            if name not in vocabulary.NAMES:
                raise InputError(f"{name!r} is not a category; choose from {', '.join(vocabulary.NAMES)}.",
                                 title="Invalid filter")
        self.key_labels()  # raises for a key that is not one

    @property
    def described(self) -> bool:
        """Whether it filters on what a sample is (kind, key, category), beyond its measurements."""
        return bool(self.kinds or self.key or self.compatible_with or self.categories)

    @property
    def curated(self) -> bool:
        """Whether it filters on what a person kept (favourites, tags, a collection)."""
        return bool(self.favourite or self.tags or self.collection)

    @property
    def beyond_measurements(self) -> bool:
        """Whether it needs SQL beyond the measurements a search index holds (what a sample is, what was kept)."""
        return self.described or self.curated

    def key_labels(self) -> list[str] | None:
        """The stored key labels that pass (``engine.keys.labels_matching``), or None for any key."""
        accepted = None
        for text, compatible in ((self.key, False), (self.compatible_with, True)):
            if not text:
                continue
            try:
                labels = labels_matching(text, compatible=compatible)
            except ValueError:
                need = " with its mode" if compatible else ""
                raise InputError(f"{text!r} is not a key{need}; write it like 'F minor', 'F#m' or '4A'.",
                                 title="Invalid filter") from None
            accepted = labels if accepted is None else [label for label in accepted if label in labels]
        return accepted


class _Keyed:
    """The key of a row with ``key_tonic`` and ``key_mode``, as people read it."""

    @property
    def key(self) -> str | None:
        """"F minor", or "C#" when only the note is known."""
        return key_label(self.key_tonic, self.key_mode)

    @property
    def camelot(self) -> str | None:
        """"4A"; None without a key or its mode."""
        return camelot_of(self.key_tonic, self.key_mode)


@dataclass(frozen=True)
class Track(_Keyed):
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
    kind: str | None  # "one-shot", "loop" or "long"; None until analysed
    tempo_source: str | None  # "audio" or "name"
    key_tonic: str | None  # "C" ... "B" in sharps; None for unpitched material
    key_mode: str | None  # "major", "minor", or None when only the note is known
    key_confidence: float | None  # 0 to 1 from the audio; None when only the name gave the key
    key_source: str | None  # "audio" or "name"
    missing: bool  # every file of it is gone; left out of search and the default listing
    categories: tuple[tuple[str, float], ...] = ()  # (category, score) it belongs to, best first
    locations: tuple[str, ...] = ()  # absolute paths where this content is (the managed copy first)
    favourite: bool = False
    tags: tuple[str, ...] = ()  # lower case, sorted
    collections: tuple[str, ...] = ()  # the names of the collections holding it, by name

    @property
    def category(self) -> str | None:
        return self.categories[0][0] if self.categories else None

    def to_dict(self) -> dict:
        return {**asdict(self), "key": self.key, "camelot": self.camelot, "locations": list(self.locations),
                "categories": [{"name": name, "score": score} for name, score in self.categories],
                "tags": list(self.tags), "collections": list(self.collections)}


# Whether track ``t`` is missing (every file gone), as SQL.
IS_MISSING = "EXISTS (SELECT 1 FROM missing_tracks m WHERE m.track_id = t.id)"
# The model whose categories reads show (engine.store.descriptions).
CATEGORY_MODEL = "(SELECT value FROM library_state WHERE key = 'category_model')"
# Track's fields from the descriptions table, read for the rows in hand (Tracks._assemble): joining
# descriptions and categories into every read made a 20-track lookup five times slower at 100k tracks.
DESCRIBED_FIELDS = ("kind", "tempo_source", "key_tonic", "key_mode", "key_confidence", "key_source")
_FEATURE_FIELDS = {"tempo", "spectral_centroid", "zero_crossing_rate", "rms_energy", "feature_version"}
CURATED_FIELDS = ("favourite", "tags", "collections")  # read for the rows in hand too (Curation.of)
BASE_FIELDS = tuple(field.name for field in fields(Track)
                    if field.name not in (*DESCRIBED_FIELDS, *CURATED_FIELDS, "categories", "locations"))
# Columns of BASE_FIELDS, in order, over t (tracks) and f (features).
TRACK_COLUMNS = ", ".join(
    IS_MISSING if name == "missing" else f"{'f' if name in _FEATURE_FIELDS else 't'}.{name}" for name in BASE_FIELDS
)
TRACK_FROM = "FROM tracks t LEFT JOIN features f ON f.track_id = t.id"
# What filters and sorts on what a sample is join in: d descriptions, c the shown categories.
DESCRIPTION_JOIN = " LEFT JOIN descriptions d ON d.track_id = t.id"
CATEGORY_JOIN = f" LEFT JOIN track_categories c ON c.track_id = t.id AND c.model_id = {CATEGORY_MODEL}"


def track_from_row(row: tuple, described: tuple | None = None, categorised: tuple | None = None) -> Track:
    """A Track from a row of TRACK_COLUMNS, its DESCRIBED_FIELDS values and its (members, scores)."""
    values = dict(zip(BASE_FIELDS, row))
    values.update(zip(DESCRIBED_FIELDS, described or (None,) * len(DESCRIBED_FIELDS)))
    return Track(**values, categories=category_scores(*categorised) if categorised else ())


def category_scores(members: list[str] | None, scores: bytes | None) -> tuple[tuple[str, float], ...]:
    """(category, score) pairs of a track_categories row's members, best first."""
    if not members or scores is None:
        return ()
    values = np.frombuffer(scores, dtype="<f4")
    if len(values) != len(vocabulary.NAMES):  # another vocabulary's row, until it is recomputed
        return ()
    return tuple((name, round(float(values[vocabulary.NAMES.index(name)]), 4)) for name in members
                 if name in vocabulary.NAMES)


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
class Description(_Keyed):
    """What a sample is (engine.analysis), stored beside its measurements."""

    kind: str  # "one-shot", "loop" or "long"
    kind_confidence: float  # 0 to 1
    tempo_source: str | None  # "audio" or "name"; None without a tempo (the tempo is in Measurements)
    bars: int | None  # whole 4/4 bars at the tempo, when the duration holds a whole number
    key_tonic: str | None  # "C" ... "B" in sharps; None for unpitched material
    key_mode: str | None  # "major", "minor", or None (a name naming only a note)
    key_confidence: float | None  # 0 to 1 from the audio; None when only the name gave the key
    key_source: str | None  # "audio" or "name"
    name_category: str | None  # the category word in the path ("Kicks/"): a hint for the categories
    version: int


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
    description: Description | None = None
    categories: CategoryScores | None = None  # from ``embedding``'s model
    waveform: WaveformWrite | None = None  # the overview drawn for the track (engine.waveform)


@dataclass(frozen=True)
class WaveformWrite:
    """One track's waveform overview (engine.waveform), as stored."""

    version: int  # engine.waveform.WAVEFORM_VERSION when made
    duration: float  # seconds the columns span
    peaks: np.ndarray  # int8 (columns, 2): min, max per column; 127 = full scale


@dataclass(frozen=True)
class CategoryScores:
    """One track's category scores from one model (engine.categories)."""

    model_id: str
    version: int
    scores: np.ndarray  # float32 (categories,), summing to 1
    members: list[str]  # the categories it belongs to, best first


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
    kind: str  # add, delete, embed, missing (files gone), found (back again), describe (features
    # rewritten), categories (scores written; search indexes skip it), reload
    track_id: str
    embedded: Embedded | None = None  # add and embed: the embedding written with the change, if any


@dataclass(frozen=True)
class WindowSet:
    """One track's window embeddings from one model."""

    starts_s: list[float]
    ends_s: list[float]
    embeddings: np.ndarray  # float32 (len(starts_s), D), read-only
