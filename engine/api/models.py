"""The API's request and response bodies, with the specification's field names where it has them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.categories import KINDS, NAMES
from engine.keys import KEY_PATTERN, KEY_WITH_MODE_PATTERN

# The library stores local wall-clock times (DuckDB's TIMESTAMP in the session's time zone, the
# system's); the API says which, as RFC 3339 requires: "2026-11-29T11:58:17+01:00".
Timestamp = Annotated[dt.datetime, AfterValidator(lambda value: value if value.tzinfo else value.astimezone())]

# A tag or a collection's name as the schema allows it: 1 to 64 characters, no control character, not
# only spaces; a collection's name holds no "/" (it is a segment of URLs). The engine accepts a little
# more (it folds runs of spaces and tabs into one): every name the schema allows, it accepts.
TAG_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
# Text that is not all blank. The engine strips with Python's str.strip, which also strips the
# separators \x1c-\x1f; pydantic's \S (Rust regex, Unicode White_Space) does not count them as blank.
NOT_BLANK_PATTERN = r"[^\s\x1c-\x1f]"
COLLECTION_PATTERN = r"^[^\x00-\x1f\x7f-\x9f/]*[^\s\x00-\x1f\x7f-\x9f/][^\x00-\x1f\x7f-\x9f/]*$"
TagText = Annotated[str, Field(min_length=1, max_length=64, pattern=TAG_PATTERN, description="a tag, any case")]
CollectionText = Annotated[str, Field(min_length=1, max_length=64, pattern=COLLECTION_PATTERN,
                                      description="a collection's name, any case")]

# The most results one search returns (the CLI's --limit reaches this far through the server too).
MAX_RESULTS = 10_000

# What the filters accept, in the schema itself, so a client (and the fuzzer) knows before asking.
KindName = Literal[KINDS]  # type: ignore[valid-type]
CategoryName = Literal[NAMES]  # type: ignore[valid-type]
KeyText = Annotated[str, Field(pattern=KEY_PATTERN, max_length=32, description='"F minor", "Fm", "F#", "4A"')]
KeyWithMode = Annotated[str, Field(pattern=KEY_WITH_MODE_PATTERN, max_length=32,
                                   description="a key with its mode: it and the keys that mix with it")]


class ErrorDetail(BaseModel):
    title: str
    message: str
    hint: str | None = None
    type: str | None = None  # the engine's error class ("InputError"); None for the guard's refusals




class ErrorResponse(BaseModel):
    detail: ErrorDetail


class ModelHealth(BaseModel):
    loaded: bool
    model: str | None = None
    model_id: str | None = None
    backend: str | None = None
    device: str | None = None
    error: str | None = None
    hint: str | None = None


class Health(BaseModel):
    status: str  # "ok"
    version: str
    tracks: int
    model: ModelHealth


class UploadAccepted(BaseModel):
    job_id: str | None  # None when the file was refused before it was queued
    filename: str
    status: str  # queued, or failed with the reason in message
    message: str


class ProcessingStatus(BaseModel):
    job_id: str
    status: str  # queued, running, added, duplicate, failed, interrupted
    progress: float = Field(ge=0, le=1)
    message: str | None
    stage: str | None
    audio_file_id: str | None


class Category(BaseModel):
    name: str
    score: float


class AudioFile(BaseModel):
    """A track as listed: the specification's fields first, then everything else stored about it."""

    id: str
    filename: str
    duration: float
    tempo: float | None
    file_size: int
    created_at: Timestamp
    processed: bool | None  # embedded by the current model (searchable); None until the model has loaded
    format: str
    codec: str | None
    sample_rate: int
    channels: int
    spectral_centroid: float | None
    zero_crossing_rate: float | None
    rms_energy: float | None
    kind: str | None
    key: str | None
    key_confidence: float | None
    camelot: str | None
    tempo_source: str | None
    key_tonic: str | None  # "C" ... "B" in sharps
    key_mode: str | None  # "major", "minor", or None when only the note is known
    key_source: str | None  # "audio" or "name"
    categories: list[Category]
    favourite: bool
    tags: list[str]  # lower case, sorted
    collections: list[str]  # the names of the collections holding it
    storage: str  # "managed" (the library's copy) or "referenced" (the user's file in place)
    path: str  # managed: relative to the data folder; referenced: absolute
    locations: list[str]  # every absolute path holding this content, the managed copy first
    missing: bool
    analysed_duration: float
    truncated: bool
    file_mtime: float | None
    feature_version: int | None


class AudioMetadata(AudioFile):
    file_path: str  # the playable file, absolute


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt filter is an error, not silently ignored

    min_duration: float | None = Field(None, ge=0)
    max_duration: float | None = Field(None, ge=0)
    min_tempo: float | None = Field(None, ge=0)
    max_tempo: float | None = Field(None, ge=0)
    # Arrays in JSON; tuples here, whose empty defaults pydantic need not deep-copy at every request.
    formats: tuple[str, ...] = ()
    kinds: tuple[KindName, ...] = ()
    key: KeyText | None = None
    compatible_with: KeyWithMode | None = None
    categories: tuple[CategoryName, ...] = ()
    favourite: bool = False  # only favourites
    tags: tuple[TagText, ...] = ()  # tracks with every one of them
    collection: CollectionText | None = None  # only this collection's tracks


class TextSearch(SearchFilters):
    query: str = Field(min_length=1, max_length=500, pattern=NOT_BLANK_PATTERN,
                       description='e.g. "punchy 808 kick"')
    limit: int = Field(20, ge=1, le=MAX_RESULTS)
    min_score: float | None = Field(None, ge=-1, le=1)
    segments: bool = False


class SearchResult(BaseModel):
    id: str
    filename: str
    similarity_score: float
    rank: int
    duration: float
    tempo: float | None
    spectral_centroid: float | None
    file_path: str
    created_at: Timestamp | None
    segment_start: float | None
    segment_end: float | None
    format: str
    storage: str
    kind: str | None
    key: str | None
    camelot: str | None
    category: str | None
    category_score: float | None
    favourite: bool
    tags: list[str]


class Deleted(BaseModel):
    message: str
    id: str
    filename: str
    file_kept: bool  # the user's own file stays where it is (only a managed copy is removed)


# A path on the server's machine: no NUL byte, which no file system allows.
PathText = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\x00]+$",
                                description="an absolute path on the server's machine")]


class FolderOut(BaseModel):
    path: str
    watched: bool
    added_at: Timestamp
    last_sync: Timestamp | None
    tracks: int
    missing: int


class FolderAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: PathText
    watch: bool = True


class FolderRemoved(BaseModel):
    removed: str
    tracks_removed: list[dict]  # {path, id}: tracks that were only there; their files are untouched


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[PathText] = []  # empty: every folder


class SyncState(BaseModel):
    running: bool
    runs: int  # syncs finished since the server started
    progress: dict | None  # {phase: scan | analyse | done, found, done, total}
    report: dict | None  # the last sync's added, changed, moved, duplicates, restored, missing, ... lists
    error: str | None


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str  # "bearer"
    expires_in: int  # seconds


class LibraryStats(BaseModel):
    tracks: int
    total_duration_s: float
    total_bytes: int
    formats: dict[str, int]  # tracks per format, most first
    missing: int  # tracks whose files are all gone
    pending_embeddings: int | None  # None until the model has loaded


class IngestTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[PathText] = Field(min_length=1, max_length=10_000)  # files and folders on the server's machine
    copy_files: bool = Field(False, alias="copy", description="keep a copy under the library's folder")


class SyncTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[PathText] = Field([], max_length=10_000)  # empty: every folder
    prune: bool = False  # remove tracks whose files are all gone


class FolderTask(FolderAdd):
    pass


class ExportTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: PathText  # an empty or new folder on the server's machine


class TaskOut(BaseModel):
    id: str
    action: str  # ingest, sync, add_folder, export
    status: str  # queued, running, done, failed
    progress: dict  # the latest event: {phase, done, source} for ingest; {phase, found, done, total} for syncs
    result: list[dict] | dict | None  # ingest: a result per file; sync, add_folder: the report; export: the manifest
    error: ErrorDetail | None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=NOT_BLANK_PATTERN,
                      description="what the key is for")


class ApiKeyCreated(BaseModel):
    name: str
    key: str  # shown once


class ApiKeyOut(BaseModel):
    name: str
    created_at: Timestamp


class ApiKeyRevoked(BaseModel):
    revoked: str


class TagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[TagText] = Field([], max_length=100)
    remove: list[TagText] = Field([], max_length=100)


class TagCount(BaseModel):
    tag: str
    tracks: int


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CollectionText


class CollectionOut(BaseModel):
    name: str
    tracks: int
    created_at: Timestamp


class TrackIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=10_000)  # full ids or unique prefixes, in order


class CollectionTracks(BaseModel):
    name: str
    tracks: list[str]  # ids, in the collection's order


class CollectionContents(BaseModel):
    name: str
    tracks: list[AudioFile]


class DuplicatePair(BaseModel):
    a: str
    b: str
    score: float  # cosine of the two tracks' embeddings


class DuplicateGroupOut(BaseModel):
    ids: list[str]  # best-connected first
    pairs: list[DuplicatePair]  # every pair, highest first
