"""Exact cosine search over the library's CLAP embeddings.

Vectors are unit length, so cosine similarity is a dot product. The scan runs
over an index of the current model's track embeddings, which replays the
store's change journal before every query, so an ingest, re-embed or delete is
visible to the next search: never stale.

The scan has two passes and is still exact. A float16 copy of the matrix is
scored first (torch's float16 matrix-vector product reads half the bytes and
ran 3x faster than numpy's float32 one here, docs/BENCHMARKS.md); every row
that could belong to the top ``limit`` given float16's rounding is then
rescored in float32, and only those exact scores rank, filter by
``min_score`` and come back.

The index loads through the vector cache beside the database
(engine.store.embeddings.VectorCache): the float16 rows are memory-mapped from
it and the float32 rows of the few candidates read from it by position, so
neither matrix is copied into the process; DuckDB's rows decide which cached
rows are current. At 1M tracks a load from the cache took 2-5 s and the
process held 1.6 GB after its first query (a load from DuckDB alone: 22 s,
8.6 GB).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from engine.errors import EngineError
from engine.shortlist import Shortlist
from engine.store import Embedded, Filters, Store, Track
from engine.store.embeddings import CachedVectors, Embeddings, fixed_ids, rows_for
from engine.vectors import PIPELINE_VERSION
from engine.windows import WINDOW_SECONDS

log = logging.getLogger(__name__)

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
        # Shallow: asdict deep-copies every value (a datetime, the tags), 1.7 ms for 20 hits.
        return {name: getattr(self, name) for name in _HIT_FIELDS}


_HIT_FIELDS = tuple(field.name for field in fields(Hit))


class _Vectors:
    """The index's rows: unit vectors with per-row metadata for filtering.

    Rows ``0 .. base.rows - 1`` are the cache files' (engine.store.embeddings.VectorCache):
    float16 memory-mapped for the scan, float32 read by row to rescore candidates, so the
    float32 matrix is never resident. Rows added since (journal replay, rows the cache did
    not hold) follow in memory, in float32 and float16. A replaced or deleted row is only
    marked dead. The base's ids are fixed-width bytes found by hash (no per-row Python
    objects); formats are small integer codes.
    """

    def __init__(self, dim: int, base: CachedVectors | None = None):
        self.dim = dim
        self._base = base
        self._base_rows = 0 if base is None else base.rows
        self._n = self._base_rows
        self._tail_ids: list[str] = []  # ids of the in-memory rows, from row base.rows on
        self._tail_row: dict[str, int] = {}  # live in-memory rows by id
        self._exact = np.zeros((0, dim), dtype=np.float32)  # the in-memory rows
        self._coarse = np.zeros((0, dim), dtype=np.float16)  # same rows, for the first pass
        rows = self._base_rows
        self.alive = np.zeros(rows, dtype=bool)
        self.duration = np.full(rows, np.nan)
        self.tempo = np.full(rows, np.nan)
        self.windows = np.zeros(rows)
        self._format = np.zeros(rows, dtype=np.int32)
        self._format_names: list[str | None] = []
        self._format_code: dict[str | None, int] = {}
        self.saved_index: Path | None = None  # where an approximate index over the base rows is kept

    def __len__(self) -> int:
        return self._n

    @property
    def base_rows(self) -> int:
        """Rows from the cache files: the same rows, in the same places, in every process."""
        return self._base_rows

    # -- views kept for callers of the old list / dict / matrix attributes ----------------

    @property
    def row_of(self) -> _RowIndex:
        """Live rows by track id, as a read-only mapping."""
        return _RowIndex(self)

    @property
    def matrix(self) -> _ExactRows:
        """The float32 rows, indexable by row (read from the cache file or memory)."""
        return _ExactRows(self)

    @property
    def format(self) -> _Formats:
        """Each row's format name, indexable by row."""
        return _Formats(self)

    # -- rows ------------------------------------------------------------------------------

    def row(self, track_id: str) -> int | None:
        """The live row of a track, or None."""
        row = self._tail_row.get(track_id)
        if row is not None:
            return row
        if self._base_rows:
            found = int(rows_for(self._base, _fixed([track_id]), self._alive_rows)[0])
            if found >= 0:
                return found
        return None

    def _alive_rows(self, rows: np.ndarray, _positions) -> np.ndarray:
        return self.alive[rows]

    def rows_of(self, track_ids) -> np.ndarray:
        """The live rows of those of ``track_ids`` the index holds (in no particular order)."""
        found = self.rows_by_id(track_ids)
        return found[found >= 0]

    def rows_by_id(self, track_ids) -> np.ndarray:
        """Each of ``track_ids``' live row, or -1 (int64, in their order): one lookup for all of
        them (a lookup per id costs a quarter of a millisecond in numpy's overhead)."""
        track_ids = list(track_ids)
        found = np.asarray([self._tail_row.get(track_id, -1) for track_id in track_ids], dtype=np.int64)
        rest = np.flatnonzero(found < 0)
        if rest.size and self._base_rows:
            found[rest] = rows_for(self._base, _fixed([track_ids[i] for i in rest]), self._alive_rows)
        return found

    def id_of(self, row: int) -> str:
        row = int(row)
        if row < self._base_rows:
            return self._base.ids[row].decode()
        return self._tail_ids[row - self._base_rows]

    def ids_of(self, rows: np.ndarray) -> list[str]:
        rows = np.asarray(rows, dtype=np.int64)
        in_base = rows < self._base_rows
        if in_base.all():
            return [value.decode() for value in self._base.ids[rows].tolist()] if rows.size else []
        return [self.id_of(row) for row in rows.tolist()]

    def exact_rows(self, rows: np.ndarray) -> np.ndarray:
        """The float32 vectors of ``rows``, as a new (len(rows), dim) array in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self._n):
            raise IndexError("row out of range")
        in_base = rows < self._base_rows
        if not in_base.any():
            return self._exact[rows - self._base_rows]
        if in_base.all():
            return self._base.exact.read(rows)
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        out[in_base] = self._base.exact.read(rows[in_base])
        out[~in_base] = self._exact[rows[~in_base] - self._base_rows]
        return out

    def coarse_scores(self, query16):
        """float16 scores of every row (dead ones too) for a float16 torch query vector."""
        import torch

        parts = []
        if self._base_rows:
            parts.append(torch.mv(torch.from_numpy(np.asarray(self._base.coarse)), query16))
        if self._n > self._base_rows:
            parts.append(torch.mv(torch.from_numpy(self._coarse[: self._n - self._base_rows]), query16))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def coarse_matrix(self, rows: int) -> np.ndarray:
        """The float16 rows ``0 .. rows - 1`` as one (rows, dim) array: the cache's memory map itself
        when they are all its, else a copy (the approximate index's build reads it in the background)."""
        if rows <= self._base_rows and self._base_rows:
            return np.asarray(self._base.coarse)[:rows]
        tail = self._coarse[: rows - self._base_rows].copy()
        return np.concatenate([np.asarray(self._base.coarse), tail]) if self._base_rows else tail

    # -- changes ---------------------------------------------------------------------------

    def fill_base(self, rows: np.ndarray, *, windows, duration, tempo, formats) -> None:
        """Make base ``rows`` live with their filter columns (the loader, once)."""
        self.alive[rows] = True
        self.windows[rows] = windows
        self.duration[rows] = duration
        self.tempo[rows] = tempo
        self._format[rows] = self._codes(formats)

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows in memory, so appending them copies nothing."""
        tail = rows - self._exact.shape[0]
        if tail > 0:
            self._exact = np.concatenate([self._exact, np.zeros((tail, self.dim), dtype=np.float32)])
            self._coarse = np.concatenate([self._coarse, np.zeros((tail, self.dim), dtype=np.float16)])

    def append(self, table) -> None:
        """Add rows from an arrow table with track_id, embedding, window_count, duration, tempo, format."""
        if table.num_rows == 0:
            return
        self.append_rows(table.column("track_id").to_pylist(), embedding_matrix(table),
                         windows=_numbers(table, "window_count"), duration=_numbers(table, "duration"),
                         tempo=_numbers(table, "tempo"), formats=table.column("format"))

    def append_rows(self, new_ids: list[str], block: np.ndarray, *, windows, duration, tempo, formats) -> None:
        """Add rows (a row for an id already present replaces it); tempo NaN when unknown."""
        n = len(new_ids)
        if n == 0:
            return
        if block.shape[1] != self.dim:
            raise EngineError(f"stored embeddings have {block.shape[1]} dimensions, the model {self.dim}.",
                              hint="Run 'python -m engine reembed'.", title="Embedding size mismatch")
        codes = self._codes(formats)
        start, tail = self._n, self._n - self._base_rows
        replaced = self.rows_of(new_ids)
        self._exact = _grow(self._exact, tail + n)
        self._exact[tail : tail + n] = block
        self._coarse = _grow(self._coarse, tail + n)
        self._coarse[tail : tail + n] = block
        self.alive = _grow(self.alive, start + n)
        self.windows = _grow(self.windows, start + n)
        self.duration = _grow(self.duration, start + n)
        self.tempo = _grow(self.tempo, start + n)
        self._format = _grow(self._format, start + n)
        self.alive[replaced] = False
        self.alive[start : start + n] = True
        self.windows[start : start + n] = np.asarray(windows, dtype=np.float64)
        self.duration[start : start + n] = np.asarray(duration, dtype=np.float64)
        self.tempo[start : start + n] = np.asarray(tempo, dtype=np.float64)
        self._format[start : start + n] = codes
        for offset, track_id in enumerate(new_ids):
            previous = self._tail_row.get(track_id)
            if previous is not None:  # the same id twice in one call: the last row wins
                self.alive[previous] = False
            self._tail_row[track_id] = start + offset
        self._tail_ids.extend(new_ids)
        self._n = start + n

    def remove(self, track_id: str) -> None:
        self.remove_many([track_id])

    def remove_many(self, track_ids) -> None:
        track_ids = list(track_ids)
        self.alive[self.rows_of(track_ids)] = False
        for track_id in track_ids:
            self._tail_row.pop(track_id, None)

    def _codes(self, formats) -> np.ndarray:
        """Small integer codes of format names (a list, numpy or arrow array; NULL is None)."""
        import pyarrow as pa

        if isinstance(formats, (pa.Array, pa.ChunkedArray)):
            import pyarrow.compute as pc

            if isinstance(formats, pa.ChunkedArray):
                formats = formats.combine_chunks()
            encoded = pc.dictionary_encode(formats)
            names = encoded.dictionary.to_pylist() + [None]
            indices = pc.fill_null(encoded.indices, len(names) - 1).to_numpy(zero_copy_only=False)
            return np.asarray([self._code(name) for name in names], dtype=np.int32)[indices]
        return np.asarray([self._code(name) for name in formats], dtype=np.int32)

    def _code(self, name) -> int:
        name = None if name is None else str(name)
        code = self._format_code.get(name)
        if code is None:
            code = self._format_code[name] = len(self._format_names)
            self._format_names.append(name)
        return code

    def mask(self, filters: Filters) -> np.ndarray:
        n = self._n
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
            wanted = {f.lower().lstrip(".") for f in filters.formats}
            codes = [code for name, code in self._format_code.items() if name in wanted]
            keep &= np.isin(self._format[:n], codes)
        return keep


class _RowIndex(Mapping):
    """``_Vectors.row_of``: track id -> live row."""

    def __init__(self, vectors: _Vectors):
        self._vectors = vectors

    def __getitem__(self, track_id: str) -> int:
        row = self._vectors.row(track_id) if isinstance(track_id, str) else None
        if row is None:
            raise KeyError(track_id)
        return row

    def __contains__(self, track_id) -> bool:
        return isinstance(track_id, str) and self._vectors.row(track_id) is not None

    def __iter__(self):
        vectors = self._vectors
        return iter(vectors.ids_of(np.flatnonzero(vectors.alive[: len(vectors)])))

    def __len__(self) -> int:
        return int(np.count_nonzero(self._vectors.alive[: len(self._vectors)]))


class _ExactRows:
    """``_Vectors.matrix``: float32 rows by index."""

    def __init__(self, vectors: _Vectors):
        self._vectors = vectors

    def __len__(self) -> int:
        return len(self._vectors)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._vectors.exact_rows([key])[0]
        return self._vectors.exact_rows(np.arange(len(self._vectors))[key])


class _Formats:
    """``_Vectors.format``: format names by row."""

    def __init__(self, vectors: _Vectors):
        self._vectors = vectors

    def __getitem__(self, row):
        return self._vectors._format_names[self._vectors._format[row]]


class VectorIndex:
    """The current model's track vectors, in memory, kept in step with the store."""

    def __init__(self, store: Store, model_id: str, dim: int):
        self.store = store
        self.model_id = model_id
        self.dim = dim
        self._lock = threading.Lock()
        self._vectors: _Vectors | None = None
        self._revision = 0
        self.shortlist = Shortlist()  # the approximate first pass past shortlist.MIN_ROWS rows

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
            self._vectors = None  # let the old rows go before the new ones load
            self._vectors = _load(self.store, self.model_id, self.dim)
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
            self._vectors.remove_many(unknown)
            self._vectors.append(self.store.embeddings.table(self.model_id, PIPELINE_VERSION, unknown))
            self._vectors.remove_many(set(unknown) & set(self.store.tracks.missing_ids()))
        if fresh:
            tracks = self.store.tracks.get_many(list(fresh), located=False)
            ids = [track_id for track_id in fresh if track_id in tracks]
            self._vectors.remove_many(fresh.keys() - tracks.keys())  # deleted meanwhile; append_rows replaces the rest
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
            row = vectors.row(track_id)
            return None if row is None else vectors.exact_rows([row])[0]

    def multi_window(self, track_ids: list[str]) -> list[str]:
        """The given tracks that have more than one window (the rest match on their only one)."""
        with self._lock:
            vectors = self._sync()
            rows = vectors.rows_by_id(track_ids)
            return [i for i, row in zip(track_ids, rows.tolist()) if row >= 0 and vectors.windows[row] > 1]

    def snapshot(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every present track's (ids, unit vectors (n, dim) float32, durations (n,) seconds), copied:
        for passes over the whole library (near-duplicates, the sound map)."""
        with self._lock:
            vectors = self._sync()
            rows = np.flatnonzero(vectors.alive[:len(vectors)])
            return vectors.ids_of(rows), vectors.exact_rows(rows), vectors.duration[rows].copy()

    def allowed_ids(self, filters: Filters) -> set[str]:
        """Ids of the tracks that pass ``filters`` (segment mode scans only these)."""
        with self._lock:
            vectors = self._sync()
            return set(vectors.ids_of(np.flatnonzero(vectors.mask(filters))))

    def top(self, query: np.ndarray, *, filters: Filters, limit: int, min_score: float | None,
            exclude: str | None = None, only: set[str] | None = None) -> list[tuple[str, float]]:
        """Top-``limit`` (track id, exact cosine) for a unit query vector, best first; with ``only``,
        among those ids. Exact below shortlist.MIN_ROWS kept rows; past it the candidates come from
        the approximate index (engine.shortlist) and only their scores are exact."""
        with self._lock:
            vectors = self._sync()
            n = len(vectors)
            if n == 0 or limit <= 0:
                return []
            keep = vectors.mask(filters)
            if only is not None:
                allowed = np.zeros(n, dtype=bool)
                allowed[vectors.rows_of(only)] = True
                keep &= allowed
            if exclude is not None:
                row = vectors.row(exclude)
                if row is not None:
                    keep[row] = False
            query = np.ascontiguousarray(query, dtype=np.float32)
            rows = self.shortlist.candidates(vectors, query, keep, limit)
            if rows is None:  # a library (or what its filters keep) small enough to scan, or no index yet
                rows = _candidates(vectors, query, keep, limit)
            # The candidates in id order: BLAS's float32 product rounds a row's last bit differently
            # with its place in the block (in 109 of 200 trials two row orders gave scores differing
            # there), and row order differs between processes (cache, replay), so it is made canonical.
            ids = vectors.ids_of(rows)
            by_id = sorted(range(rows.size), key=ids.__getitem__)
            rows, ids = rows[by_id], [ids[i] for i in by_id]
            exact = vectors.exact_rows(rows) @ query
            keep_score = np.ones(rows.size, dtype=bool) if min_score is None else exact >= min_score
            # Ties are broken by id so equal scores always come back in one order.
            order = sorted(np.flatnonzero(keep_score).tolist(), key=lambda i: (-float(exact[i]), ids[i]))[:limit]
            return [(ids[i], float(exact[i])) for i in order]


# A load takes the cache's rows that DuckDB still holds unchanged; rows written since are read
# from DuckDB (one scan of the vectors, 2.3 s at 1M, whether 1 or 20,000 rows) and appended to the
# cache. More of those than this (or than a tenth of the library), or a quarter of the cache's
# rows dead, and it rewrites the cache from DuckDB instead.
STALE_ROWS_READ_BY_KEY = 20_000
DEAD_ROWS_KEPT = 1_000
# DuckDB's memory during a load: its buffer pool would otherwise keep every block the load read
# (2.2 GB of vectors at 1M) on top of the index; 1 GB cost no time in the scan here.
LOAD_MEMORY_LIMIT = "1GB"


def _load(store: Store, model_id: str, dim: int) -> _Vectors:
    """The model's current rows: DuckDB's list of them (track id, stamp, filter columns), with the
    vectors of the rows the cache holds at the same stamp from the cache, the others from DuckDB.
    Holds the database lock throughout, so no write of this process falls between the reads."""
    with store.db.memory_capped(LOAD_MEMORY_LIMIT):
        cache = store.embeddings.vector_cache(model_id, PIPELINE_VERSION, dim)
        base = cache.load() or _rebuild(cache)
        columns = store.embeddings.index_columns(model_id, PIPELINE_VERSION, base)
        rows = _cached_rows(columns, base)
        if base is not None and rows is not None:
            stale = np.flatnonzero(rows < 0)
            dead = base.rows - (rows.size - stale.size)
            if stale.size > max(STALE_ROWS_READ_BY_KEY, rows.size // 10) or dead > max(DEAD_ROWS_KEPT, base.rows // 4):
                base = None  # unmap the old files before the new ones are written
                base = _rebuild(cache)
                columns = store.embeddings.index_columns(model_id, PIPELINE_VERSION, base)
                rows = _cached_rows(columns, base)
            elif stale.size:
                base = _append_stale(store, cache, base, model_id, columns, rows, stale)
        if rows is None:  # pragma: no cover - a cache row matched twice: read everything from DuckDB
            base, columns = None, store.embeddings.index_columns(model_id, PIPELINE_VERSION)
            rows = np.full(columns.num_rows, -1, dtype=np.int64)
        vectors = _Vectors(dim, base)
        vectors.saved_index = cache.approximate_index_path(base) if base is not None else None
        hit = rows >= 0
        vectors.fill_base(rows[hit], windows=_numbers(columns, "window_count")[hit],
                          duration=_numbers(columns, "duration")[hit], tempo=_numbers(columns, "tempo")[hit],
                          formats=columns.column("format").filter(hit))
        if base is None:  # no cache: every vector into memory, from DuckDB, a batch at a time
            vectors.reserve(columns.num_rows)  # allocated once: growing by copies peaked 1.6 GB higher at 1M
            for batch in store.embeddings.table_batches(model_id, PIPELINE_VERSION):
                vectors.append(batch)
        elif not hit.all():  # rows that could not be added to the cache: into memory
            vectors.append(store.embeddings.table(model_id, PIPELINE_VERSION,
                                                  columns.column("track_id").filter(~hit).to_pylist()))
        del columns
        vectors.remove_many(store.tracks.missing_ids())  # few; an anti-join in the load cost 0.4 s at 100k
        return vectors


def _rebuild(cache) -> CachedVectors | None:
    try:
        return cache.rebuild()
    except OSError as exc:  # a read-only or full disk: the index still loads, from DuckDB alone
        log.warning("could not write the vector cache in %s (%s); reading the vectors from the library",
                    cache.directory, exc)
        return None


def _cached_rows(columns, base: CachedVectors | None) -> np.ndarray | None:
    """index_columns' cached_row as int64, -1 where the cache does not hold the row; None if a
    cache row answers for two rows (cannot happen: a cache never holds one write twice)."""
    import pyarrow.compute as pc

    rows = np.array(pc.fill_null(columns.column("cached_row"), -1).to_numpy(), dtype=np.int64)  # writable
    if base is not None and base.rows and rows.size and \
            np.bincount(rows[rows >= 0], minlength=base.rows).max(initial=0) > 1:
        log.warning("the vector cache answered twice for one row; reading the vectors from the library")
        return None
    return rows


def _append_stale(store: Store, cache, base: CachedVectors, model_id: str, columns, rows: np.ndarray,
                  stale: np.ndarray) -> CachedVectors:
    """``base`` with the current vectors of the ``stale`` rows of ``columns`` appended (read from
    DuckDB); ``rows`` is updated to point at them."""
    wanted = columns.column("track_id").take(stale).to_pylist()
    stamps = columns.column("stamp").take(stale).to_numpy()
    table = store.embeddings.vectors_by_id(model_id, PIPELINE_VERSION, wanted)
    if table.num_rows == 0:
        return base
    block = embedding_matrix(table)
    if block.shape[1] != cache.dim:
        raise EngineError(f"stored embeddings have {block.shape[1]} dimensions, the model {cache.dim}.",
                          hint="Run 'python -m engine reembed'.", title="Embedding size mismatch")
    got_stamps = table.column("stamp").to_numpy()
    try:
        grown = cache.append(base, fixed_ids(table.column("track_id")), got_stamps, block)
    except (OSError, ValueError) as exc:  # the rows are read into memory instead
        log.warning("could not add to the vector cache in %s: %s", cache.directory, exc)
        return base
    at = {track_id: (base.rows + i, stamp)
          for i, (track_id, stamp) in enumerate(zip(table.column("track_id").to_pylist(), got_stamps.tolist()))}
    for position, track_id, stamp in zip(stale.tolist(), wanted, stamps.tolist()):
        found = at.get(track_id)
        if found is not None and found[1] == stamp:
            rows[position] = found[0]
    return grown


def _fixed(track_ids: list[str]) -> np.ndarray:
    return np.array([track_id.encode() for track_id in track_ids], dtype="S") if track_ids else np.zeros(0, "S1")


def _candidates(vectors: _Vectors, query: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray:
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
        scores = vectors.coarse_scores(torch.from_numpy(query.astype(np.float16))).float()
        scores.masked_fill_(torch.from_numpy(~keep), float("-inf"))
        threshold = float(torch.topk(scores, limit, sorted=False).values.min())
        return torch.nonzero(scores >= threshold - 2 * _COARSE_ERROR).flatten().numpy()


def embedding_matrix(table) -> np.ndarray:
    """The ``embedding`` column of an arrow table (float32 little-endian bytes, one vector a row)
    as a read-only float32 (rows, D) matrix over the same memory."""
    import pyarrow as pa

    column = table.column("embedding")
    if isinstance(column, pa.ChunkedArray):  # a table's; a record batch's is one array already
        column = column.combine_chunks()
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


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with room for at least ``rows`` (first axis), and headroom: on this VM touching fresh
    memory cost 2.5 s per GiB, so the first ingest after loading a 100k index must not
    reallocate 300 MB (it made that search take half a second). New room is zero (False)."""
    if rows <= array.shape[0]:
        return array
    capacity = max(rows + rows // 8, int(array.shape[0] * 1.5)) + 1024
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _numbers(table, column: str) -> np.ndarray:
    """A numeric column as float64, NULL as NaN."""
    import pyarrow.compute as pc

    values = table.column(column).cast("float64")
    return pc.fill_null(values, np.nan).to_numpy()
