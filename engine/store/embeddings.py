"""Embeddings per model: each track's pooled vector, its window vectors, and why one is missing.

Vectors are float32 little-endian bytes (migrations 0003 and 0004 say why).
Rows are kept per ``model_id`` and ``pipeline_version``, so switching models
leaves the old rows aside instead of mixing two vector spaces.

A search index loads a model's pooled vectors through :class:`VectorCache`,
files beside the database that DuckDB's rows are checked against on every load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import uuid
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import EngineError
from engine.store.database import Database, id_list
from engine.store.journal import Journal
from engine.store.recent import Recent
from engine.store.types import IS_MISSING, Embedded, EmbeddingFailure, EmbeddingWrite, WindowSet

log = logging.getLogger(__name__)

# Up to this many tracks, windows are looked up by key; more, one scan of the model's rows.
WINDOW_KEY_LOOKUP_LIMIT = 1000
RECENT_WINDOW_SETS = 1024  # window sets kept for searches' hits (engine.store.recent): up to 12 MB at 6 windows

# What tells two writes of a track's row apart: created_at (microseconds), set by every INSERT
# (write_embedding deletes and inserts; imports and shard merges insert) and never updated.
STAMP = "epoch_us(e.created_at)"


def window_key(track_id: str, model_id: str) -> str:
    """window_sets' one-column key: DuckDB looks single-column keys up through their index."""
    return f"{track_id}:{model_id}"


def write_embedding(conn, track_id: str, e: EmbeddingWrite) -> None:
    """Write one track's embeddings inside an open transaction, replacing earlier rows of the model."""
    windows = np.ascontiguousarray(e.windows, dtype="<f4")
    key = window_key(track_id, e.model_id)
    conn.execute("DELETE FROM window_sets WHERE key = ?", [key])
    conn.execute("DELETE FROM track_embeddings WHERE track_id = ? AND model_id = ?", [track_id, e.model_id])
    conn.execute("DELETE FROM embedding_errors WHERE track_id = ?", [track_id])
    conn.execute(
        "INSERT INTO track_embeddings (track_id, model_id, pipeline_version, dim, embedding, window_count)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [track_id, e.model_id, e.pipeline_version, windows.shape[1],
         np.ascontiguousarray(e.track, dtype="<f4").tobytes(), len(windows)],
    )
    conn.execute(
        "INSERT INTO window_sets (key, track_id, model_id, dim, starts_s, ends_s, embeddings)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [key, track_id, e.model_id, windows.shape[1], [float(x) for x in e.starts_s],
         [float(x) for x in e.ends_s], windows.tobytes()],
    )


def write_failure(conn, track_id: str, failure: EmbeddingFailure) -> None:
    """Record why a track has no embedding, inside an open transaction."""
    conn.execute(
        "INSERT INTO embedding_errors (track_id, model_id, message) VALUES (?, ?, ?)"
        " ON CONFLICT (track_id) DO UPDATE SET model_id = excluded.model_id,"
        " message = excluded.message, noted_at = now()",
        [track_id, failure.model_id, failure.message],
    )


def embedded(e: EmbeddingWrite) -> Embedded:
    """What the journal carries of a write, so an index takes the track in without reading it back."""
    return Embedded(e.model_id, e.pipeline_version, np.array(e.track, dtype=np.float32), len(e.windows))


class Embeddings:
    def __init__(self, db: Database, journal: Journal):
        self._db = db
        self._journal = journal
        self._recent = Recent(db, size=RECENT_WINDOW_SETS)  # a search's hits' windows, asked for again

    def save(self, track_id: str, e: EmbeddingWrite) -> bool:
        """Store a track's embeddings; False (nothing written) when the track was deleted meanwhile."""
        with self._db.transaction("save embeddings") as conn:
            if not conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                return False
            write_embedding(conn, track_id, e)
        self._journal.record("embed", track_id, embedded(e))
        return True

    def note_failure(self, track_id: str, failure: EmbeddingFailure) -> None:
        with self._db.transaction("record an embedding error") as conn:
            if conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                write_failure(conn, track_id, failure)

    def pending(self, model_id: str | None, pipeline_version: int) -> list[str]:
        """Ids of the present tracks with no embedding from this model and pipeline version (all
        when model_id is None), oldest first. A missing track's file cannot be read."""
        rows = self._db.rows(
            "list tracks awaiting embeddings",
            f"SELECT t.id FROM tracks t WHERE NOT {IS_MISSING}"
            " AND NOT EXISTS (SELECT 1"
            " FROM track_embeddings e WHERE e.track_id = t.id AND e.model_id = ? AND e.pipeline_version = ?)"
            " ORDER BY t.created_at, t.id",
            [model_id, pipeline_version],
        )
        return [track_id for (track_id,) in rows]

    def embedded_ids(self, model_id: str, pipeline_version: int, track_ids: list[str]) -> set[str]:
        """Those of ``track_ids`` that have an embedding from this model and pipeline version."""
        if not track_ids:
            return set()
        in_list, values = id_list(track_ids)
        return {track_id for (track_id,) in self._db.rows(
            "look up embeddings", "SELECT track_id FROM track_embeddings WHERE model_id = ? AND pipeline_version = ?"
            f" AND track_id IN {in_list}", [model_id, pipeline_version, *values])}

    def count_pending(self, model_id: str | None, pipeline_version: int) -> int:
        return self._db.rows(
            "count tracks awaiting embeddings",
            f"SELECT count(*) FROM tracks t WHERE NOT {IS_MISSING}"
            " AND NOT EXISTS (SELECT 1"
            " FROM track_embeddings e WHERE e.track_id = t.id AND e.model_id = ? AND e.pipeline_version = ?)",
            [model_id, pipeline_version],
        )[0][0]

    _TABLE_SQL = (
        "SELECT e.track_id, e.embedding, e.window_count, t.duration, f.tempo, t.format FROM track_embeddings e"
        " JOIN tracks t ON t.id = e.track_id LEFT JOIN features f ON f.track_id = e.track_id"
        " WHERE e.model_id = ? AND e.pipeline_version = ?"
    )

    def table_batches(self, model_id: str, pipeline_version: int, rows: int = 65_536):
        """:meth:`table` of every track, as record batches streamed (the whole table at 1M rows is
        2 GB of arrow memory on top of what a caller makes of it)."""
        return self._db.batches("read embeddings", self._TABLE_SQL, [model_id, pipeline_version], rows)

    def table(self, model_id: str, pipeline_version: int, track_ids: list[str] | None = None):
        """Current track embeddings with the columns search filters on, as a pyarrow table
        (missing tracks included: the index leaves them out, cheaper than an anti-join here)."""
        sql = self._TABLE_SQL
        params: list = [model_id, pipeline_version]
        if track_ids is not None:
            in_list, values = id_list(track_ids)
            sql += f" AND e.track_id IN {in_list}"
            params += values
        # No ORDER BY: sorting rows that carry 2 KB vectors is most of a 1M-row load,
        # and search breaks ties by id itself.
        return self._db.arrow("read embeddings", sql, params)

    def index_columns(self, model_id: str, pipeline_version: int, cached: CachedVectors | None = None):
        """Every current embedding's row without its vector, as a pyarrow table: cached_row, the
        row of ``cached`` holding this very write (same track id and stamp; NULL when none),
        track_id (only where cached_row is NULL: the index needs no other), stamp, window_count,
        duration, tempo, format. Missing tracks are included, as in :meth:`table`. Matching in
        the query's join costs next to nothing (1M rows: about 1.3 s with or without it)."""
        sql = ("SELECT {row} AS cached_row, {track_id} AS track_id, " + STAMP + " AS stamp, e.window_count,"
               " t.duration, f.tempo, t.format FROM track_embeddings e JOIN tracks t ON t.id = e.track_id"
               " LEFT JOIN features f ON f.track_id = e.track_id{join}"
               " WHERE e.model_id = ? AND e.pipeline_version = ?")
        params = [model_id, pipeline_version]
        if cached is None or cached.rows == 0:
            return self._db.arrow("read the embedding index",
                                  sql.format(row="NULL::BIGINT", track_id="e.track_id", join=""), params)
        relation = f"cached_rows_{uuid.uuid4().hex[:12]}"  # fixed characters: safe in SQL
        with self._db.registered(relation, cached.as_arrow()):
            return self._db.arrow("read the embedding index", sql.format(
                row="c.cache_row", track_id="CASE WHEN c.cache_row IS NULL THEN e.track_id END",
                join=f" LEFT JOIN {relation} c ON c.track_id = e.track_id AND c.stamp = {STAMP}"), params)

    def vectors_by_id(self, model_id: str, pipeline_version: int, track_ids: list[str]):
        """The current embeddings of ``track_ids`` (those that have one), as a pyarrow table of
        track_id, stamp and embedding. DuckDB reads the whole vector column for it (no key
        lookup: 2.3 s at 1M rows, whether for 10 ids or 20,000)."""
        in_list, values = id_list(track_ids)
        return self._db.arrow(
            "read embeddings",
            f"SELECT e.track_id, {STAMP} AS stamp, e.embedding FROM track_embeddings e"
            f" WHERE e.model_id = ? AND e.pipeline_version = ? AND e.track_id IN {in_list}",
            [model_id, pipeline_version, *values],
        )

    def vector_cache(self, model_id: str, pipeline_version: int, dim: int) -> VectorCache:
        """The cache files of this model's track vectors, beside the database (see VectorCache)."""
        return VectorCache(self._db, model_id, pipeline_version, dim)

    def windows(self, model_id: str, track_ids: list[str] | None = None) -> dict[str, WindowSet]:
        """Each track's window embeddings from this model (all tracks when ``track_ids`` is None).
        A few ids (a search's hits) come from memory when read since the last write."""
        sql = "SELECT track_id, starts_s, ends_s, dim, embeddings FROM window_sets"
        wanted, found, writes = None, {}, None
        if track_ids is None or len(track_ids) > WINDOW_KEY_LOOKUP_LIMIT:
            # Many ids: one scan of this model's rows beats thousands of key lookups.
            sql, params = sql + " WHERE model_id = ?", [model_id]
            wanted = None if track_ids is None else set(track_ids)
        else:
            keys = {window_key(track_id, model_id): track_id for track_id in track_ids}
            kept, writes = self._recent.take(keys)
            found = {keys[key]: window for key, window in kept.items()}
            missing = [key for key in keys if key not in kept]
            if not missing:
                return found
            in_list, params = id_list(missing)
            sql += f" WHERE key IN {in_list}"
        rows = self._db.rows("read window embeddings", sql, params)
        read = {
            track_id: WindowSet(starts, ends, np.frombuffer(blob, dtype="<f4").reshape(len(starts), dim))
            for track_id, starts, ends, dim, blob in rows
            if wanted is None or track_id in wanted
        }
        if writes is not None:
            self._recent.keep({window_key(track_id, model_id): window for track_id, window in read.items()}, writes)
        return found | read


# -- the vector cache -------------------------------------------------------------------------
#
# A search index at 1M tracks read every vector out of DuckDB on start (22 s, 10.7 GB at the
# peak, docs/BENCHMARKS.md). The cache keeps a model's pooled vectors in files beside the
# database instead: float16 rows the index memory-maps and scans, float32 rows it reads a few at
# a time to rescore candidates, and each row's track id and stamp. DuckDB stays the only source
# of truth. A load reads every current row's (track id, stamp) from DuckDB, cheap without the
# vectors, and takes a cached row only where both match: a vector written, replaced or deleted
# since the files were written is never served, whichever code path changed it.

CACHE_FORMAT = 1
CACHE_BATCH_ROWS = 32_768  # rows per record batch while the files are written (64 MB of float32 at D=512)
_REBUILDING = threading.Lock()


@dataclass
class CachedVectors:
    """A model's track vectors as the cache files hold them; row i of every array is one track."""

    ids: np.ndarray  # (rows,) fixed-width UTF-8 bytes (numpy "S"), the track ids
    stamps: np.ndarray  # (rows,) int64: the row's STAMP when it was read
    keys: np.ndarray  # (rows,) uint64 id_keys(ids), sorted, for lookups by id
    order: np.ndarray  # (rows,) int64: the row of each sorted key
    coarse: np.ndarray  # (rows, dim) float16, memory-mapped copy-on-write (nothing writes it)
    exact: RowFile  # the same rows in float32, read by row
    header: dict | None = None  # the cache header these were opened from

    @property
    def rows(self) -> int:
        return len(self.ids)

    def as_arrow(self):
        """The rows' track_id, stamp and cache_row (their number) as a pyarrow table, for a join."""
        import pyarrow as pa

        n, width = self.rows, self.ids.dtype.itemsize
        raw = np.asarray(self.ids).view(np.uint8).reshape(n, width)
        if n == 0 or raw[:, -1].all():  # every id as wide as the widest (hex digests): no copy
            offsets, data = np.arange(0, (n + 1) * width, width, dtype=np.int64), np.asarray(self.ids)
        else:  # ids hold no NUL: the padding is every zero byte
            filled = raw != 0
            offsets = np.concatenate([[0], np.cumsum(np.count_nonzero(filled, axis=1))]).astype(np.int64)
            data = raw[filled]
        track_id = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return pa.table({"track_id": track_id, "stamp": self.stamps, "cache_row": np.arange(n, dtype=np.int64)})


class RowFile:
    """float32 rows of a file, read by position: rescoring reads a few rows a query, and
    none of the file stays mapped into the process (it would count as its memory)."""

    def __init__(self, path: Path, rows: int, dim: int):
        self.rows, self.dim = rows, dim
        self._row_bytes = dim * 4
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by the finalizer)
        self._lock = threading.Lock()  # for seek + read where os.pread is missing (Windows)
        weakref.finalize(self, self._file.close)

    def _read(self, size: int, offset: int) -> bytes:
        if hasattr(os, "pread"):
            data = os.pread(self._file.fileno(), size, offset)
        else:  # pragma: no cover - Windows
            with self._lock:
                self._file.seek(offset)
                data = self._file.read(size)
        if len(data) != size:
            raise OSError(f"{self._file.name} is shorter than its header says")
        return data

    def read(self, rows) -> np.ndarray:
        """The given rows as a new (len(rows), dim) float32 array, in the order given."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        if rows.size == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.rows:
            raise IndexError("row out of range")
        if rows.size <= 64:  # a search's candidates: one read each
            for i, row in enumerate(rows.tolist()):
                out[i] = np.frombuffer(self._read(self._row_bytes, row * self._row_bytes), dtype="<f4")
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        span = 8192  # rows per contiguous read (16 MB at D=512)
        start = 0
        while start < ordered.size:
            lo = int(ordered[start])
            stop = int(np.searchsorted(ordered, lo + span, side="left"))
            hi = int(ordered[stop - 1]) + 1
            if stop - start >= (hi - lo) // 8:  # dense enough: one read of the range
                block = np.frombuffer(self._read((hi - lo) * self._row_bytes, lo * self._row_bytes),
                                      dtype="<f4").reshape(hi - lo, self.dim)
                out[order[start:stop]] = block[ordered[start:stop] - lo]
            else:
                for i in range(start, stop):
                    row = int(ordered[i])
                    out[order[i]] = np.frombuffer(self._read(self._row_bytes, row * self._row_bytes), dtype="<f4")
            start = stop
        return out


def fixed_ids(array) -> np.ndarray:
    """A pyarrow string array (or chunked array) as fixed-width UTF-8 bytes, numpy "S" (ids hold no NUL)."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype="S1")
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        if array.null_count:
            raise ValueError("track ids cannot be NULL")
        offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
        offsets = np.frombuffer(array.buffers()[1], dtype=offset_type)[array.offset : array.offset + n + 1]
        start = int(offsets[0])
        offsets = offsets.astype(np.int64) - start
        values = array.buffers()[2]
        data = (np.frombuffer(values, dtype=np.uint8) if values is not None else np.zeros(0, np.uint8))
        data = data[start : start + int(offsets[-1])]
        lengths = np.diff(offsets)
        width = max(1, int(lengths.max()))
        if (lengths == width).all():
            return data.view(f"S{width}").copy()
        padded = np.zeros((n, width), dtype=np.uint8)
        padded[np.repeat(np.arange(n), lengths), np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], lengths)] = data
        return padded.view(f"S{width}").reshape(n)
    return np.array([value.encode() for value in array.to_pylist()], dtype="S")  # string_view and the like


def id_keys(ids: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each fixed-width id (numpy "S"), the same for the same id at any width:
    lookups search these, then compare the ids themselves (two ids may share a key)."""
    n, width = len(ids), ids.dtype.itemsize
    words = -(-width // 8)
    raw = np.ascontiguousarray(ids).view(np.uint8).reshape(n, width)
    trimmed = raw
    if width % 8:
        trimmed = np.zeros((n, words * 8), dtype=np.uint8)
        trimmed[:, :width] = raw
    # Trailing all-zero words are padding: skip them per row, so the key does not depend on the width.
    lanes = trimmed.view("<u8").reshape(n, words)
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    for j in range(words):
        lane = lanes[:, j]
        live = lane != 0
        if j and not live.any():
            break
        mixed = (h ^ lane) * np.uint64(0x100000001B3)
        h = np.where(live | (j == 0), mixed, h)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def rows_for(cached: CachedVectors, ids: np.ndarray, accept=None) -> np.ndarray:
    """For each fixed-width id, its row in ``cached``, or -1. An id may have several rows (an
    appended row replaces an older one): ``accept(rows, positions)`` says which of the candidate
    ``rows`` for ``ids[positions]`` count (a bool array); the first accepted wins."""
    found = np.full(len(ids), -1, dtype=np.int64)
    if cached.rows == 0 or len(ids) == 0:
        return found
    keys = id_keys(ids)
    at = np.searchsorted(cached.keys, keys, side="left")
    pending = np.arange(len(ids))
    while pending.size:  # one pass per row sharing a key: usually one
        pending = pending[at[pending] < cached.rows]
        pending = pending[cached.keys[at[pending]] == keys[pending]]
        if pending.size == 0:
            break
        rows = cached.order[at[pending]]
        match = cached.ids[rows] == ids[pending]
        if accept is not None:
            match[match] = accept(rows[match], pending[match])
        found[pending[match]] = rows[match]
        pending = pending[~match]
        at[pending] += 1
    return found


class VectorCache:
    """One model's track vectors in files under ``<database>.vectors/``.

    ``<key>.json`` says what the files hold and which are current: the vectors, ``<key>.<data>.f16``
    and ``.f32`` (raw row-major matrices, only ever appended to), and the rows' index,
    ``<key>.<index>.ids.npy``, ``.stamps.npy``, ``.keys.npy`` and ``.order.npy``. The json is
    replaced last, after the files it names are flushed to disk, so a crash leaves the previous
    cache (or none), never half of one. A cache written before a schema migration is not used
    (the migration may have rewritten rows).
    """

    def __init__(self, db: Database, model_id: str, pipeline_version: int, dim: int):
        self._db = db
        self.model_id, self.pipeline_version, self.dim = model_id, pipeline_version, dim
        self.directory = db.path.with_name(db.path.name + ".vectors")
        self.key = hashlib.sha256(f"{model_id}\n{pipeline_version}".encode()).hexdigest()[:16]

    @property
    def header_path(self) -> Path:
        return self.directory / f"{self.key}.json"

    def _file(self, generation: str, suffix: str) -> Path:
        return self.directory / f"{self.key}.{generation}.{suffix}"

    def approximate_index_path(self, cached: CachedVectors) -> Path | None:
        """Where the approximate index over ``cached``'s rows is kept (engine.shortlist): beside the
        vectors it was built from, and swept with them. Appends keep it: they never move a row."""
        return self._file(str(cached.header["data"]), "ann") if cached.header else None

    def _identity(self) -> dict:
        return {"format": CACHE_FORMAT, "model_id": self.model_id, "pipeline_version": self.pipeline_version,
                "dim": self.dim, "migrations": self._db.applied_migrations()}

    def _header(self) -> dict | None:
        try:
            header = json.loads(self.header_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("not using the vector cache %s: %s", self.header_path, exc)
            return None
        identity = self._identity()
        if not isinstance(header, dict) or {k: header.get(k) for k in identity} != identity:
            return None
        return header

    def load(self) -> CachedVectors | None:
        """The cached vectors, memory-mapped, or None when there are none usable. Rows are not
        checked against the database here: that is the caller's part (rows_for and the stamps)."""
        header = self._header()
        if header is None:
            return None
        try:
            return self._open(header)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("not using the vector cache %s: %s", self.header_path, exc)
            return None

    def _open(self, header: dict) -> CachedVectors:
        data, index, rows, dim = str(header["data"]), str(header["index"]), int(header["rows"]), self.dim
        for suffix, width in (("f16", 2), ("f32", 4)):
            if self._file(data, suffix).stat().st_size < rows * dim * width:  # appends may have run on
                raise ValueError(f"{self._file(data, suffix).name} is shorter than {rows} rows")
        arrays = {name: np.load(self._file(index, f"{name}.npy"), mmap_mode="r", allow_pickle=False)
                  for name in ("ids", "stamps", "keys", "order")}
        if any(a.shape != (rows,) for a in arrays.values()) or arrays["ids"].dtype.kind != "S":
            raise ValueError("the cache's row files disagree")
        if rows:
            coarse = np.memmap(self._file(data, "f16"), dtype="<f2", mode="c", shape=(rows, dim))
        else:
            coarse = np.zeros((0, dim), dtype=np.float16)
        cached = CachedVectors(ids=arrays["ids"], stamps=np.array(arrays["stamps"]), keys=np.array(arrays["keys"]),
                               order=np.array(arrays["order"]), coarse=coarse,
                               exact=RowFile(self._file(data, "f32"), rows, dim))
        cached.header = header
        return cached

    def rebuild(self) -> CachedVectors:
        """Write the model's current vectors from DuckDB as new files and return them. Streams
        record batches, so neither the arrow result nor the matrices are ever whole in memory.
        Raises OSError when the files cannot be written."""
        with _REBUILDING:  # one at a time: a rebuild sweeps away every other file here
            self.directory.mkdir(parents=True, exist_ok=True)
            data = uuid.uuid4().hex[:12]

            def write(written: list[Path]) -> dict:
                ids, stamps, rows = self._write_vectors(data, written)
                return {**self._identity(), "data": data, "rows": rows,
                        "index": self._write_index(ids, stamps, written)}

            return self._publish(write)

    def append(self, cached: CachedVectors, ids: np.ndarray, stamps: np.ndarray, block: np.ndarray) -> CachedVectors:
        """``cached`` with rows added at its end (fixed-width ids, their stamps, float32 vectors);
        rows already there stay where they are, so what maps or reads them is undisturbed.
        Raises OSError when the files cannot be written, ValueError when ``cached`` is not current."""
        with _REBUILDING:
            header = self._header()
            if header is None or header != cached.header:
                raise ValueError("the vector cache changed meanwhile")
            rows, data = int(header["rows"]), str(header["data"])
            block = np.ascontiguousarray(block, dtype="<f4")
            for suffix, rows_of in (("f16", _float16), ("f32", lambda b: b)):
                with open(self._file(data, suffix), "r+b") as fh:
                    size = rows * self.dim * (2 if suffix == "f16" else 4)
                    fh.truncate(size)  # what an append that never committed left
                    fh.seek(size)
                    fh.write(memoryview(rows_of(block)).cast("B"))
                    fh.flush()
                    os.fsync(fh.fileno())
            all_ids, all_stamps = np.concatenate([np.asarray(cached.ids), ids]), np.concatenate([cached.stamps, stamps])
            return self._publish(lambda written: {**header, "rows": rows + len(ids),
                                                  "index": self._write_index(all_ids, all_stamps, written)})

    def _publish(self, write) -> CachedVectors:
        """Run ``write(written)``, which writes new files (listing each in ``written`` as it is
        created) and returns the header naming them; then commit that header, sweep what it does
        not name and open it. A failure before the commit removes the new files."""
        written: list[Path] = []
        try:
            header = write(written)
            self._commit(header, written)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self._sweep(header)
        return self._open(header)

    def _write_vectors(self, data: str, written: list[Path]) -> tuple[np.ndarray, np.ndarray, int]:
        dim, params = self.dim, [self.model_id, self.pipeline_version]
        ids, stamps = [], []
        rows = 0
        f16_path, f32_path = self._file(data, "f16"), self._file(data, "f32")
        written += [f16_path, f32_path]
        with open(f16_path, "wb") as f16, open(f32_path, "wb") as f32:
            for batch in self._db.batches(
                    "read embeddings",
                    f"SELECT e.track_id, {STAMP} AS stamp, e.embedding FROM track_embeddings e"
                    " WHERE e.model_id = ? AND e.pipeline_version = ?", params, CACHE_BATCH_ROWS):
                if batch.num_rows == 0:
                    continue
                block = _float32_rows(batch.column(2), dim)
                f32.write(memoryview(block).cast("B"))
                f16.write(memoryview(_float16(block)).cast("B"))
                # Copies: a column kept from the batch would keep the whole batch (its vectors) alive.
                ids.append(fixed_ids(batch.column(0)))
                stamps.append(np.array(batch.column(1).to_numpy(), dtype=np.int64))
                rows += batch.num_rows
                del batch, block
        fixed = np.concatenate(ids) if ids else np.zeros(0, dtype="S1")  # to the widest id's width
        return fixed, (np.concatenate(stamps) if stamps else np.zeros(0, np.int64)), rows

    def _write_index(self, ids: np.ndarray, stamps: np.ndarray, written: list[Path]) -> str:
        """Write the rows' ids, stamps and sorted id keys as new files; returns their generation."""
        index = uuid.uuid4().hex[:12]
        keys = id_keys(ids)
        order = np.argsort(keys, kind="stable")
        for name, array in (("ids", ids), ("stamps", stamps.astype(np.int64)), ("keys", keys[order]),
                            ("order", order.astype(np.int64))):
            path = self._file(index, f"{name}.npy")
            written.append(path)
            with open(path, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        return index

    def _commit(self, header: dict, written: list[Path]) -> None:
        """Flush the new files to disk (4.5 s for 3 GB at 1M rows here), then replace the header."""
        for path in written:
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
        tmp = self.directory / f"{self.key}.{header['index']}.json.tmp"
        written.append(tmp)
        with open(tmp, "w") as fh:
            json.dump(header, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.header_path)
        written.clear()  # committed: nothing to undo
        if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _sweep(self, header: dict) -> None:
        """Remove every file here the header does not name: older files, other models' caches,
        leftovers of a crash. On Linux a file still mapped or open elsewhere stays readable there."""
        keep = {self.header_path.name, *(self._file(header["data"], suffix).name for suffix in ("f16", "f32", "ann"))}
        keep |= {self._file(header["index"], f"{name}.npy").name for name in ("ids", "stamps", "keys", "order")}
        for path in self.directory.iterdir():
            if path.name not in keep and path.is_file():
                try:
                    path.unlink()
                except OSError:  # still open elsewhere (Windows): the next rebuild tries again
                    pass


def _float16(block: np.ndarray) -> np.ndarray:
    """float32 rows rounded to float16 (to nearest even, as numpy does). With torch already
    imported (a search process has it), through torch: vectorised, 1.5 s against 3 s at 1M rows."""
    torch = sys.modules.get("torch")
    if torch is None:
        return block.astype(np.float16)
    with warnings.catch_warnings():  # a read-only view of arrow's buffer: torch only reads it
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(block)).to(torch.float16).numpy()


def _float32_rows(column, dim: int) -> np.ndarray:
    """A binary column of float32 little-endian vectors as a (rows, dim) float32 view."""
    import pyarrow as pa

    offset_type = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    offsets = np.frombuffer(column.buffers()[1], dtype=offset_type)[column.offset : column.offset + len(column) + 1]
    sizes = np.diff(offsets)
    if (sizes != sizes[0]).any() or sizes[0] % 4:
        raise EngineError("the stored embeddings of one model differ in size.", hint="Run 'python -m engine reembed'.",
                          title="Damaged embeddings")
    if sizes[0] != dim * 4:
        raise EngineError(f"stored embeddings have {int(sizes[0]) // 4} dimensions, the model {dim}.",
                          hint="Run 'python -m engine reembed'.", title="Embedding size mismatch")
    data = np.frombuffer(column.buffers()[2], dtype="<f4", count=int(offsets[-1] - offsets[0]) // 4,
                         offset=int(offsets[0]))
    return data.reshape(len(column), dim)
