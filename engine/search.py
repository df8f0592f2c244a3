"""Exact cosine search over the library's CLAP embeddings.

Vectors are unit length, so cosine similarity is a dot product. The scan runs
over an in-memory copy of the current model's track embeddings, which replays
the store's change journal before every query, so an ingest, re-embed or
delete is visible to the next search: never stale.

The scan has two passes and is still exact. A float16 copy of the matrix is
scored first (torch's float16 matrix-vector product reads half the bytes and
ran 3x faster than numpy's float32 one here, docs/BENCHMARKS.md); every row
that could belong to the top ``limit`` given float16's rounding is then
rescored in float32, and only those exact scores rank, filter by
``min_score`` and come back.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass

import numpy as np

from engine.errors import EngineError
from engine.store import Embedded, Filters, Store, Track
from engine.store.embeddings import Embeddings
from engine.vectors import PIPELINE_VERSION
from engine.windows import WINDOW_SECONDS

DEFAULT_LIMIT = 20

# How far a float16 score can be from the float32 one for unit vectors: rounding
# each side of the product to float16 moves it by at most 2**-11 (relative,
# Cauchy-Schwarz), the float16 result by 2**-11 more; accumulation is float32.
# 3 * 4.9e-4 = 1.5e-3, rounded up for subnormals and non-unit rows.
_COARSE_ERROR = 2e-3


@dataclass
class Hit:
    id: str
    filename: str
    score: float
    rank: int
    duration: float
    tempo: float | None
    spectral_centroid: float | None
    format: str
    segment_start: float | None  # seconds: where the best-matching 10 s window starts
    segment_end: float | None
    storage: str
    path: str  # absolute path of the playable file
    kind: str | None = None  # "one-shot", "loop" or "long"
    key: str | None = None  # "F minor"
    camelot: str | None = None  # "4A"
    category: str | None = None  # the best category
    category_score: float | None = None
    created_at: dt.datetime | None = None  # when it joined the library
    favourite: bool = False
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


class _Vectors:
    """A growable matrix of unit rows with per-row metadata for filtering."""

    def __init__(self, dim: int):
        self.dim = dim
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self.coarse = np.zeros((0, dim), dtype=np.float16)  # same rows, for the first pass
        self.alive = np.zeros(0, dtype=bool)
        self.duration = np.zeros(0)
        self.tempo = np.zeros(0)
        self.windows = np.zeros(0)
        self.format = np.zeros(0, dtype=object)

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, table) -> None:
        """Add rows from an arrow table with track_id, embedding, window_count, duration, tempo, format."""
        if table.num_rows == 0:
            return
        self.append_rows(table.column("track_id").to_pylist(), embedding_matrix(table),
                         windows=_numbers(table, "window_count"), duration=_numbers(table, "duration"),
                         tempo=_numbers(table, "tempo"),
                         formats=table.column("format").to_numpy(zero_copy_only=False))

    def append_rows(self, new_ids: list[str], block: np.ndarray, *, windows, duration, tempo, formats) -> None:
        """Add rows (a row for an id already present replaces it); tempo NaN when unknown."""
        n = len(new_ids)
        if n == 0:
            return
        if block.shape[1] != self.dim:
            raise EngineError(f"stored embeddings have {block.shape[1]} dimensions, the model {self.dim}.",
                              hint="Run 'python -m engine reembed'.", title="Embedding size mismatch")
        start = len(self.ids)
        for offset, track_id in enumerate(new_ids):
            old = self.row_of.get(track_id)
            if old is not None:
                self.alive[old] = False  # replaced by the new row
            self.row_of[track_id] = start + offset
        self.ids.extend(new_ids)
        self.matrix = _grow(self.matrix, start + n)
        self.matrix[start : start + n] = block
        self.coarse = _grow(self.coarse, start + n)
        self.coarse[start : start + n] = block
        self.alive = np.concatenate([self.alive[:start], np.ones(n, dtype=bool)])
        self.duration = np.concatenate([self.duration[:start], np.asarray(duration, dtype=np.float64)])
        self.tempo = np.concatenate([self.tempo[:start], np.asarray(tempo, dtype=np.float64)])
        self.windows = np.concatenate([self.windows[:start], np.asarray(windows, dtype=np.float64)])
        self.format = np.concatenate([self.format[:start], np.asarray(formats, dtype=object)])

    def remove(self, track_id: str) -> None:
        row = self.row_of.pop(track_id, None)
        if row is not None:
            self.alive[row] = False

    def mask(self, filters: Filters) -> np.ndarray:
        n = len(self.ids)
        keep = self.alive[:n].copy()
        with np.errstate(invalid="ignore"):  # NaN tempo compares False: excluded by tempo filters
            if filters.min_duration is not None:
                keep &= self.duration[:n] >= filters.min_duration
            if filters.max_duration is not None:
                keep &= self.duration[:n] <= filters.max_duration
            if filters.min_tempo is not None:
                keep &= self.tempo[:n] >= filters.min_tempo
            if filters.max_tempo is not None:
                keep &= self.tempo[:n] <= filters.max_tempo
        if filters.formats:
            keep &= np.isin(self.format[:n], [f.lower().lstrip(".") for f in filters.formats])
        return keep


class VectorIndex:
    """The current model's track vectors, in memory, kept in step with the store."""

    def __init__(self, store: Store, model_id: str, dim: int):
        self.store = store
        self.model_id = model_id
        self.dim = dim
        self._lock = threading.Lock()
        self._vectors: _Vectors | None = None
        self._revision = 0

    def sync(self) -> _Vectors:
        """Replay the store's changes now (searches do this themselves)."""
        with self._lock:
            return self._sync()

    def _sync(self) -> _Vectors:
        # Callers hold self._lock: the arrays change in place here, so no scan
        # may run while they do.
        changes = self.store.journal.since(self._revision)
        if self._vectors is None or any(change.kind == "reload" for change in changes):
            self._revision = self.store.journal.revision  # read first: later changes replay next time
            vectors = _Vectors(self.dim)
            vectors.append(self.store.embeddings.table(self.model_id, PIPELINE_VERSION))
            for track_id in self.store.tracks.missing_ids():  # few; an anti-join in the load cost 0.4 s at 100k
                vectors.remove(track_id)
            self._vectors = vectors
        elif changes:
            self._revision = changes[-1].revision
            self._replay(changes)
        return self._vectors

    def _replay(self, changes) -> None:
        """Apply journal changes in order. Embeddings written in this process come with
        their change; only the tracks' filter columns are read back, by primary key."""
        fresh: dict[str, Embedded] = {}  # track id -> this model's embedding, to add
        unknown: list[str] = []  # to read back from the store
        for change in changes:
            embedded = change.embedded
            if change.kind == "categories":  # filtered in SQL (engine.store.tracks), nothing held here
                continue
            if change.kind in ("delete", "missing") or (change.kind == "add" and embedded is None):
                self._vectors.remove(change.track_id)  # a new track has no embedding yet
                fresh.pop(change.track_id, None)
            elif embedded is None:  # embed without a payload, or found again: read it back
                unknown.append(change.track_id)
            elif embedded.model_id == self.model_id and embedded.pipeline_version == PIPELINE_VERSION:
                fresh[change.track_id] = embedded
            # else: another model's embedding; this model's row, if any, is unchanged
        if unknown:
            unknown = list(dict.fromkeys(t for t in unknown if t not in fresh))
            for track_id in unknown:
                self._vectors.remove(track_id)
            self._vectors.append(self.store.embeddings.table(self.model_id, PIPELINE_VERSION, unknown))
            for track_id in set(unknown) & set(self.store.tracks.missing_ids()):
                self._vectors.remove(track_id)
        if fresh:
            tracks = self.store.tracks.get_many(list(fresh), located=False)
            ids = [track_id for track_id in fresh if track_id in tracks]
            for track_id in fresh.keys() - tracks.keys():  # deleted meanwhile; append_rows replaces the rest
                self._vectors.remove(track_id)
            if ids:
                self._vectors.append_rows(
                    ids, np.stack([fresh[t].vector for t in ids]),
                    windows=[fresh[t].window_count for t in ids],
                    duration=[tracks[t].duration for t in ids],
                    tempo=[np.nan if tracks[t].tempo is None else tracks[t].tempo for t in ids],
                    formats=[tracks[t].format for t in ids],
                )

    def vector_of(self, track_id: str) -> np.ndarray | None:
        with self._lock:
            vectors = self._sync()
            row = vectors.row_of.get(track_id)
            return None if row is None else vectors.matrix[row].copy()

    def multi_window(self, track_ids: list[str]) -> list[str]:
        """The given tracks that have more than one window (the rest match on their only one)."""
        with self._lock:
            vectors = self._sync()
            return [i for i in track_ids if i in vectors.row_of and vectors.windows[vectors.row_of[i]] > 1]

    def snapshot(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every present track's (ids, unit vectors (n, dim) float32, durations (n,) seconds), copied:
        for passes over the whole library (near-duplicates, the sound map)."""
        with self._lock:
            vectors = self._sync()
            rows = np.flatnonzero(vectors.alive[:len(vectors)])
            return [vectors.ids[row] for row in rows], vectors.matrix[rows].copy(), vectors.duration[rows].copy()

    def allowed_ids(self, filters: Filters) -> set[str]:
        """Ids of the tracks that pass ``filters`` (segment mode scans only these)."""
        with self._lock:
            vectors = self._sync()
            return {vectors.ids[row] for row in np.flatnonzero(vectors.mask(filters))}

    def top(self, query: np.ndarray, *, filters: Filters, limit: int, min_score: float | None,
            exclude: str | None = None, only: set[str] | None = None) -> list[tuple[str, float]]:
        """Exact top-``limit`` (track id, cosine) for a unit query vector, best first;
        with ``only``, among those ids."""
        with self._lock:
            vectors = self._sync()
            n = len(vectors)
            if n == 0 or limit <= 0:
                return []
            keep = vectors.mask(filters)
            if only is not None:
                allowed = np.zeros(n, dtype=bool)
                allowed[[vectors.row_of[i] for i in only if i in vectors.row_of]] = True
                keep &= allowed
            if exclude is not None and exclude in vectors.row_of:
                keep[vectors.row_of[exclude]] = False
            query = np.ascontiguousarray(query, dtype=np.float32)
            rows = _candidates(vectors.coarse[:n], query, keep, limit)
            exact = vectors.matrix[rows] @ query
            if min_score is not None:
                rows, exact = rows[exact >= min_score], exact[exact >= min_score]
            # Ties are broken by id so equal scores always come back in one order.
            order = sorted(range(rows.size), key=lambda i: (-float(exact[i]), vectors.ids[rows[i]]))[:limit]
            return [(vectors.ids[rows[i]], float(exact[i])) for i in order]


def _candidates(coarse: np.ndarray, query: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray:
    """Rows of ``keep`` that may be in the exact top ``limit``, from float16 scores.

    If t is the ``limit``-th best float16 score, ``limit`` rows score at least
    t - e exactly, so every row of the exact top ``limit`` scores at least
    t - e exactly and at least t - 2e in float16 (e = _COARSE_ERROR).
    """
    import torch

    kept = int(np.count_nonzero(keep))
    if kept == 0:
        return np.zeros(0, dtype=np.int64)
    if kept <= limit:
        return np.flatnonzero(keep)
    with torch.inference_mode():
        scores = torch.mv(torch.from_numpy(coarse), torch.from_numpy(query.astype(np.float16))).float()
        scores.masked_fill_(torch.from_numpy(~keep), float("-inf"))
        threshold = float(torch.topk(scores, limit, sorted=False).values.min())
        return torch.nonzero(scores >= threshold - 2 * _COARSE_ERROR).flatten().numpy()


def embedding_matrix(table) -> np.ndarray:
    """The ``embedding`` column of an arrow table (float32 little-endian bytes, one vector a row)
    as a read-only float32 (rows, D) matrix over the same memory."""
    import pyarrow as pa

    column = table.column("embedding").combine_chunks()
    offset_type = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    offsets = np.frombuffer(column.buffers()[1], dtype=offset_type)[column.offset : column.offset + len(column) + 1]
    sizes = np.diff(offsets)
    if len(sizes) and ((sizes != sizes[0]).any() or sizes[0] % 4):
        raise EngineError("the stored embeddings of one model differ in size.", hint="Run 'python -m engine reembed'.",
                          title="Damaged embeddings")
    data = np.frombuffer(column.buffers()[2], dtype="<f4", count=int(offsets[-1] - offsets[0]) // 4,
                         offset=int(offsets[0]))
    return data.reshape(len(column), -1)


def best_windows(embeddings: Embeddings, model_id: str, query: np.ndarray,
                 track_ids: list[str] | None) -> dict[str, tuple[float, float, float]]:
    """For each track (all when ``track_ids`` is None), its window most similar to ``query``:
    (score, start_s, end_s); the earliest window wins a tie."""
    if track_ids is not None and not track_ids:
        return {}
    query = np.ascontiguousarray(query, dtype=np.float32)
    best: dict[str, tuple[float, float, float]] = {}
    for track_id, windows in embeddings.windows(model_id, track_ids).items():
        scores = windows.embeddings @ query
        i = int(np.argmax(scores))
        best[track_id] = (float(scores[i]), windows.starts_s[i], windows.ends_s[i])
    return best


def rank_segments(embeddings: Embeddings, model_id: str, query: np.ndarray, allowed: set[str], *, limit: int,
                  min_score: float | None, exclude: str | None = None) -> list[tuple[str, float, float, float]]:
    """Segment mode: rank tracks by their single best 10 s window. Returns (id, score, start, end)."""
    best = best_windows(embeddings, model_id, query, sorted(allowed))
    ranked = sorted(
        ((track_id, score, start, end) for track_id, (score, start, end) in best.items()
         if track_id != exclude and (min_score is None or score >= min_score)),
        key=lambda hit: (-hit[1], hit[0]),
    )
    return ranked[:limit]


def combined(track: np.ndarray, prompt: np.ndarray, *, weight: float) -> np.ndarray:
    """"Like this, but ...": ``track`` + ``weight`` x ``prompt``, renormalised (both (dim,) unit vectors).
    Weight 0 is the track alone; 1 the midpoint of the two directions. A prompt exactly opposite the
    track at weight 1 cancels it: then the prompt alone is the query."""
    query = np.asarray(track, dtype=np.float32) + np.float32(weight) * np.asarray(prompt, dtype=np.float32)
    norm = float(np.linalg.norm(query))
    return query / norm if norm > 1e-6 else np.asarray(prompt, dtype=np.float32)


def make_hits(store: Store, scored: list[tuple[str, float]], spans: dict[str, tuple[float, float]]) -> list[Hit]:
    """Hits for ranked (track id, score) pairs, with each track's best span (default: its first window)."""
    tracks = store.tracks.get_many([track_id for track_id, _ in scored], located=False)
    hits = []
    for track_id, score in scored:
        track: Track | None = tracks.get(track_id)
        if track is None:  # deleted between the scan and this read
            continue
        start, end = spans.get(track_id, (0.0, min(track.duration, WINDOW_SECONDS)))
        hits.append(Hit(
            id=track_id, filename=track.filename, score=score, rank=len(hits) + 1, duration=track.duration,
            tempo=track.tempo, spectral_centroid=track.spectral_centroid, format=track.format,
            segment_start=start, segment_end=end, storage=track.storage,
            path=str(store.files.absolute_path(track)), kind=track.kind, key=track.key, camelot=track.camelot,
            category=track.category, category_score=track.categories[0][1] if track.categories else None,
            created_at=track.created_at, favourite=track.favourite, tags=track.tags,
        ))
    return hits


def _grow(matrix: np.ndarray, rows: int) -> np.ndarray:
    """``matrix`` with room for at least ``rows``, and headroom: on this VM touching fresh
    memory cost 2.5 s per GiB, so the first ingest after loading a 100k index must not
    reallocate 300 MB (it made that search take half a second)."""
    if rows <= matrix.shape[0]:
        return matrix
    capacity = max(rows + rows // 8, int(matrix.shape[0] * 1.5)) + 1024
    grown = np.zeros((capacity, matrix.shape[1]), dtype=matrix.dtype)
    grown[: matrix.shape[0]] = matrix
    return grown


def _numbers(table, column: str) -> np.ndarray:
    """A numeric column as float64, NULL as NaN."""
    import pyarrow.compute as pc

    values = table.column(column).cast("float64")
    return pc.fill_null(values, np.nan).to_numpy()
