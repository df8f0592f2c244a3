"""Approximate nearest-neighbour first pass for libraries of millions of tracks.

The exact search (engine.search) scans every row: linear in the library, about
41-48 ms at 1M rows of 512 floats on the AVX-512 machines of FINDINGS.md and
130-180 ms on a 2-core AVX2 one. This module narrows a query to 100 candidate
rows in 1-3 ms at 1M rows; the caller then rescores those candidates exactly in
float32 (so scores, ``min_score`` and ties stay exact) and only the candidate
*set* is approximate.

The index is faiss's IVF with an 8-bit scalar quantiser (``IVF<lists>,SQ8``,
inner product). Why this one (bench/bench_ann.py has the numbers):

- IVF partitions the unit sphere into ``lists`` cells by spherical k-means
  on a sample; a query scans only the ``nprobe`` cells nearest to it.
- The vectors are stored as 8-bit codes (512 bytes a row at 512 dims), a
  quarter of the float32 matrix the caller already holds, not a second copy
  of it; the candidates' exact scores come from the caller's float32 rows.
- Build is a k-means on 50 rows per list plus one pass assigning every row,
  minutes at 1M on 2 cores, and deterministic for the same input and seed.
- Rows are added and removed in place (``add`` / ``remove``); a removed row
  is gone from the lists at once, so it can never come back as a candidate.
  The cells stay those of the last build: after the library has grown by
  half since (``stale``), rebuild in the background and swap.
- A search can be restricted to an allowed set of rows (a bit mask passed to
  faiss as an ``IDSelectorBitmap``), so filters are applied inside the scan
  instead of after it.

faiss is imported lazily: the engine imports and runs the exact scan without it.
Not thread safe for writers: like VectorIndex, callers serialise ``add``,
``remove`` and ``search`` under one lock (concurrent searches alone are safe
in faiss, but a search during an add is not).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

# Above this many rows (live rows, or rows a filter keeps) the caller should use
# the approximate first pass, then rescore exactly; below it, the exact scan.
# Measured with bench/bench_ann.py on a 2-core AVX2 machine shared with other
# work: the engine's exact float16 scan + rescoring to the top 20 cost 3.7 /
# 7.5 / 21 / 39 / 128 ms (fastest query, 2 threads) and 8 / 13 / 33 / 77 /
# 146 ms (p50, 1 thread) at 50k / 100k / 250k / 500k / 1M rows, linear in
# rows; ANN search + rescoring cost 0.5-1.1 ms p50 at 100k, 0.7-1.4 at 250k,
# 1.2-1.9 at 500k and ~3 at 1M. At 100k, timed query by query in turn, the
# exact p50 was 10.9 ms against 1.05 ms (11x; recall@10 0.999-1.0, build 5.5 s,
# 51 MB of index): the saving reaches the size of the rest of a query (a
# bfloat16 text embedding is ~12 ms) and keeps growing linearly. Below 100k
# the exact scan is a few milliseconds, too little to trade exactness, a
# build and memory for. (The exact scan's p50 also suffers on a busy 2-core
# machine: its 2-thread product waits for a core, 8 ms at 20k rows instead of
# 0.6; the ANN search runs on one thread and is spared.)
ANN_MIN_ROWS = 100_000

# Candidates to ask ``search`` for per result wanted, and at least this many.
# The 8-bit scores order rows almost as the exact ones do: in a trial at 100k
# rows recall@10 was the same for 20, 50, 100 and 200 candidates (misses come
# from cells not scanned, not from the cut), so 100 is margin, and rescoring
# 100 float32 rows costs a few tens of microseconds.
CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 100

# Rows of the k-means training sample per list: faiss warns below 39 and caps
# at 256 by default; 50 keeps the k-means at 1M rows to ~45 s on 2 cores, and
# the bench's recall (0.99-1.0 at the default nprobe) leaves no need for more.
_TRAIN_PER_LIST = 50
# Rows converted to float32 and handed to faiss at once while adding: bounds
# the temporary memory (faiss computes residuals for the whole batch).
_ADD_CHUNK = 65_536
# Rebuild when the rows added since the build exceed this share of the rows
# the cells were trained on: the cells no longer describe the library well
# (lists grow unbalanced, so the same nprobe scans more rows and finds less).
_STALE_GROWTH = 0.5


def lists_for(rows: int) -> int:
    """IVF cells for ``rows`` indexed rows: the power of two nearest 2 * sqrt(rows),
    at most rows / 39 (faiss's minimum training rows per cell) and at least 1.

    2 * sqrt(N) (512 at 100k, 2048 at 1M, 8192 at 10M) keeps the build to
    minutes on 2 cores: its k-means grows with lists^2 and its assignment pass
    with N x lists (at 1M, 4096 cells took 2.4x the build time of 2048 in a
    trial run). A search's cost is the ``lists`` centroid products plus the
    ``nprobe * N / lists`` codes scanned; with nprobe a fixed share of the
    cells (``nprobe_for``) the second term does not depend on ``lists``, so
    more cells would not make a search faster at equal recall."""
    if rows <= 0:
        return 1
    target = 2.0 * math.sqrt(rows)
    lists = 2 ** round(math.log2(target))
    return int(max(1, min(lists, rows // 39)))


def nprobe_for(lists: int) -> int:
    """Cells to scan per query: 1/64 of the cells, at least 16 (all when fewer).

    Clustered libraries put a query's neighbours in the several cells that
    carve up its cluster, so recall follows the share of cells scanned. At 1M
    rows (2048 cells) in the bench, recall@10 after rescoring (near / far
    queries) was 0.999 / 0.978 at 16 cells, 0.9999 / 0.997 at 32 and 1.0 / 1.0
    at 64 on nested data, 0.972 / 0.944, 0.994 / 0.989 and 1.0 / 0.9998 on flat
    data, for about 1.5-2, 2.3-3.1 and 4.2-5.2 ms p50: 32 is the knee. Small
    indexes need a larger share (with 256 cells, 4 cells gave 0.93 in
    tests/test_ann.py), hence the floor of 16 (1/32 of 512 cells at 100k,
    recall@10 1.0 there)."""
    return int(min(lists, max(16, lists // 64)))


def _faiss():
    try:
        import faiss
    except ImportError as error:  # the engine works without it (exact scan only)
        raise ImportError(
            "the approximate index needs faiss: pip install faiss-cpu (see requirements.txt)") from error
    return faiss


class ApproximateIndex:
    """Approximate inner-product index over unit rows identified by the caller's row numbers.

    Build with :meth:`build` (or :meth:`load`); ``search`` returns candidate row
    numbers which the caller rescores exactly.
    """

    def __init__(self, index, *, dim: int, nprobe: int, trained_rows: int, present: np.ndarray):
        # Use build() or load(); this takes a trained faiss IndexIVFScalarQuantizer.
        self._index = index
        self.dim = dim
        self.nprobe = nprobe
        self.trained_rows = trained_rows  # rows the cells were built from (for ``stale``)
        self.added_rows = 0  # rows added since the build
        self.build_seconds: dict[str, float] = {}  # k-means ("train") and assignment ("add") times of build()
        self._present = present  # bool per row number: in the index now

    # -- building ------------------------------------------------------------

    @classmethod
    def build(cls, matrix: np.ndarray, *, seed: int = 0, rows: np.ndarray | None = None,
              lists: int | None = None, nprobe: int | None = None) -> ApproximateIndex:
        """Index ``matrix`` (N, D) float32 or float16 of unit rows.

        ``rows``: the row numbers of ``matrix`` to index (e.g. the live ones),
        default all; a row's number is its id in searches. ``lists`` / ``nprobe``
        default to :func:`lists_for` / :func:`nprobe_for`. The same matrix, rows
        and ``seed`` give the same index (the k-means sample and initialisation
        are seeded; faiss's k-means is otherwise deterministic: bit-identical
        serialised indexes with 1 and 2 threads here). Another CPU or BLAS may
        round differently and so build slightly different cells.

        Time and memory at 1M x 512 on 2 cores: ~75-90 s (half k-means on
        102k sampled rows, half assigning every row), 501 MB of index, +705 MB
        RSS, ~900 MB peak above the start.
        """
        faiss = _faiss()
        matrix = _check_matrix(matrix)
        n, dim = matrix.shape
        rows = np.arange(n, dtype=np.int64) if rows is None else _check_rows(rows, n)
        if rows.size == 0:
            raise ValueError("an approximate index needs at least one row")
        lists = lists_for(rows.size) if lists is None else int(lists)
        if not 1 <= lists <= rows.size:
            raise ValueError(f"lists must be between 1 and the number of rows ({rows.size}), not {lists}")
        index = faiss.index_factory(dim, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = int(seed) & 0x7FFFFFFF
        ivf.cp.spherical = True  # unit centroids: the right cells for inner product on the sphere
        ivf.cp.max_points_per_centroid = _TRAIN_PER_LIST + 1  # we sample; faiss must not resample
        ivf.cp.min_points_per_centroid = 1  # small test indexes: no warning noise
        rng = np.random.default_rng(seed)
        sample_size = min(rows.size, _TRAIN_PER_LIST * lists)
        sample = np.sort(rng.choice(rows.size, size=sample_size, replace=False))
        started = time.perf_counter()
        index.train(np.ascontiguousarray(matrix[rows[sample]], dtype=np.float32))
        trained = time.perf_counter()
        present = np.zeros(n, dtype=bool)
        built = cls(index, dim=dim, nprobe=nprobe_for(lists) if nprobe is None else int(nprobe),
                    trained_rows=int(rows.size), present=present)
        built._add(rows, matrix, rows_index_matrix=True)
        built.build_seconds = {"train": trained - started, "add": time.perf_counter() - trained}
        return built

    def _add(self, rows: np.ndarray, vectors: np.ndarray, *, rows_index_matrix: bool) -> None:
        """Append codes for ``rows`` in chunks; with ``rows_index_matrix`` the vectors are
        ``vectors[rows]`` (build), else ``vectors[i]`` is row ``rows[i]`` (add)."""
        for start in range(0, rows.size, _ADD_CHUNK):
            ids = rows[start : start + _ADD_CHUNK]
            block = vectors[ids] if rows_index_matrix else vectors[start : start + _ADD_CHUNK]
            self._index.add_with_ids(np.ascontiguousarray(block, dtype=np.float32), ids)
        top = int(rows.max()) + 1 if rows.size else 0
        if top > self._present.size:
            self._present = np.concatenate([self._present, np.zeros(top - self._present.size, dtype=bool)])
        self._present[rows] = True

    # -- changes -------------------------------------------------------------

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Index new rows: ``rows`` (m,) row numbers, ``vectors`` (m, D) unit rows (float32/16).

        A row number already present is replaced. The rows join the cells of
        the last build (no retraining); see ``stale`` for when to rebuild."""
        vectors = _check_matrix(vectors)
        rows = _check_rows(rows, None)
        if vectors.shape != (rows.size, self.dim):
            raise ValueError(f"vectors must be ({rows.size}, {self.dim}), not {vectors.shape}")
        if rows.size == 0:
            return
        if np.unique(rows).size != rows.size:
            raise ValueError("rows must not repeat")
        self.remove(rows)
        self._add(rows, vectors, rows_index_matrix=False)
        self.added_rows += int(rows.size)

    def remove(self, rows: np.ndarray) -> int:
        """Drop rows (absent ones are ignored); they are never returned again. Returns how many
        were removed. One call scans every list once (~10-20 ms at 1M rows): batch removals."""
        faiss = _faiss()
        rows = _check_rows(rows, None)
        rows = rows[rows < self._present.size]
        rows = np.unique(rows[self._present[rows]])
        if rows.size == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(rows)))
        self._present[rows] = False
        return removed

    # -- queries -------------------------------------------------------------

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None,
               nprobe: int | None = None) -> np.ndarray:
        """Up to ``k`` candidate row numbers (int64, best approximate score first) for a unit
        ``query`` (D,). ``allowed``: optional bool mask over row numbers (rows past its end
        are not allowed); only allowed rows come back. Fewer than ``k`` come back when the
        scanned cells hold fewer (allowed) rows: the caller should then fall back to the
        exact scan. ``nprobe`` overrides the cells scanned for this query."""
        faiss = _faiss()
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise ValueError(f"query must have {self.dim} dimensions, not {query.shape[1]}")
        if k <= 0 or self._index.ntotal == 0:
            return np.zeros(0, dtype=np.int64)
        params = faiss.SearchParametersIVF()
        params.nprobe = int(min(self.lists, max(1, nprobe if nprobe is not None else self.nprobe)))
        bits = None
        if allowed is not None:
            # Bit i of byte i // 8 (little bit order) is row i: faiss's IDSelectorBitmap layout.
            bits = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
            params.sel = faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits))
        _, labels = self._index.search(query, int(k), params=params)
        del bits  # kept alive until here: faiss reads it during the search
        labels = labels[0]
        return labels[labels >= 0]

    # -- state ---------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, row: int) -> bool:
        return 0 <= row < self._present.size and bool(self._present[row])

    @property
    def span(self) -> int:
        """Row numbers below this are those of the matrix it was built from (or grew to by ``add``)."""
        return int(self._present.size)

    def absent(self, rows: np.ndarray) -> np.ndarray:
        """Those of ``rows`` (int64 row numbers) that are not in the index."""
        rows = np.asarray(rows, dtype=np.int64)
        inside = rows < self._present.size
        return rows[~inside | ~self._present[np.where(inside, rows, 0)]]

    @property
    def lists(self) -> int:
        return int(self._index.nlist)

    @property
    def stale(self) -> bool:
        """True once the rows added since the build exceed half the rows it was built from:
        time to rebuild (in the background) so the cells fit the library again."""
        return self.added_rows > _STALE_GROWTH * self.trained_rows

    @property
    def memory_bytes(self) -> int:
        """Bytes of the index's own arrays: codes and ids in the lists, the centroids,
        the quantiser's ranges and the row bit map. The lists' growth headroom
        (std::vector capacity, invisible from Python) comes on top: the bench
        reports RSS growth beside this figure."""
        code_size = int(self._index.invlists.code_size)
        held = len(self) * (code_size + 8)  # an int64 id per code
        held += self.lists * self.dim * 4  # centroids, float32
        held += 2 * self.dim * 4  # scalar quantiser's per-dimension ranges
        return held + self._present.nbytes

    # -- persistence -----------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (faiss's format plus the row bookkeeping, one .npz): first
        to a temporary file flushed to disk, then renamed, so ``path`` holds a whole index or none."""
        faiss = _faiss()
        blob = faiss.serialize_index(self._index)
        meta = np.array([self.dim, self.nprobe, self.trained_rows, self.added_rows], dtype=np.int64)
        write_arrays(path, index=blob, meta=meta, present=self._present)

    @classmethod
    def load(cls, path: str | Path) -> ApproximateIndex:
        faiss = _faiss()
        with np.load(path) as stored:
            index = faiss.deserialize_index(stored["index"])
            dim, nprobe, trained_rows, added_rows = (int(v) for v in stored["meta"])
            loaded = cls(index, dim=dim, nprobe=nprobe, trained_rows=trained_rows, present=stored["present"].copy())
        loaded.added_rows = added_rows
        return loaded


def write_arrays(path: str | Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` as one .npz: first to a temporary file flushed to disk, then
    renamed, so ``path`` holds all of them or none (what was there before stays until the rename)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:  # a file object: np.savez must not append ".npz"
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# Recall@10 an index must reach on probe queries (``calibrate``) before its candidates are used; below
# it the caller keeps the exact scan. Real libraries are clustered and reach 0.99-1.0 at the default
# nprobe (docs/BENCHMARKS.md); vectors without structure (uniform on the sphere) reach a few per cent,
# as every row is then about as near as any other and the cells say nothing.
RECALL_TARGET = 0.95
# ``calibrate`` doubles nprobe up to this share of the cells: scanning more costs as much as a
# large part of the exact scan, which then gives exact results for little more.
_MAX_PROBE_SHARE = 1 / 8
# Probe queries: a library row plus noise of this norm (cosine about 0.6 to it), like a text prompt
# that lands between sounds, the harder of bench_ann's two query sets.
_PROBE_NOISE = 1.3
_PROBE_CHUNK = 65_536


def calibrate(index: ApproximateIndex, matrix: np.ndarray, rows: np.ndarray, *, probes: int = 48,
              limit: int = 10, target: float = RECALL_TARGET, seed: int = 0) -> float:
    """Measure ``index``'s recall@``limit`` over ``matrix[rows]`` (the rows it may return) and
    raise its ``nprobe`` until it reaches ``target`` or scans ``_MAX_PROBE_SHARE`` of the cells.

    ``probes`` queries are drawn from the rows plus noise; both sides rank by ``matrix``'s own
    scores (the candidates rescored, as the caller rescores them). Returns the recall at the
    ``nprobe`` left on the index: below ``target`` the caller should not use the index. Cost: one
    pass of ``probes`` products over the rows (about 2 s at 1M x 512 on 2 cores) and a few searches."""
    matrix = _check_matrix(matrix)
    rows = _check_rows(rows, matrix.shape[0])
    rng = np.random.default_rng(seed)
    picked = matrix[rows[rng.choice(rows.size, size=min(probes, rows.size), replace=False)]].astype(np.float32)
    noise = rng.standard_normal(picked.shape).astype(np.float32) * np.float32(_PROBE_NOISE / np.sqrt(index.dim))
    queries = picked + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    limit = min(limit, rows.size)
    truth = _exact_top(matrix, rows, queries, limit)
    wanted = max(CANDIDATES_PER_RESULT * limit, MIN_CANDIDATES)
    ceiling = max(index.nprobe, int(index.lists * _MAX_PROBE_SHARE))
    # Searched as queries search: only the given rows allowed (an index kept from an earlier
    # process may still hold rows deleted since; a query's mask leaves them out too).
    allowed = np.zeros(matrix.shape[0], dtype=bool)
    allowed[rows] = True
    while True:
        found = 0
        for query, best in zip(queries, truth):
            candidates = index.search(query, wanted, allowed=allowed)
            scores = matrix[candidates].astype(np.float32) @ query
            found += len(set(candidates[np.argsort(-scores, kind="stable")[:limit]].tolist()) & set(best))
        recall = found / (limit * len(queries))
        if recall >= target or index.nprobe >= ceiling:
            return recall
        index.nprobe = min(ceiling, index.nprobe * 2)


def _exact_top(matrix: np.ndarray, rows: np.ndarray, queries: np.ndarray, limit: int) -> list[list[int]]:
    """The exact top ``limit`` row numbers of ``matrix[rows]`` per query (m, D), by chunks of rows."""
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    best_scores = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, rows.size, _PROBE_CHUNK):
        chunk = rows[start : start + _PROBE_CHUNK]
        scores = np.concatenate([best_scores, queries @ matrix[chunk].astype(np.float32).T], axis=1)
        held = np.concatenate([best_rows, np.broadcast_to(chunk, (len(queries), chunk.size))], axis=1)
        part = np.argpartition(-scores, limit - 1, axis=1)[:, :limit]
        best_scores, best_rows = np.take_along_axis(scores, part, 1), np.take_along_axis(held, part, 1)
    return [row.tolist() for row in best_rows]


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.dtype not in (np.float32, np.float16):
        raise ValueError(f"expected a 2-d float32 or float16 matrix, got {matrix.dtype} {matrix.shape}")
    return matrix


def _check_rows(rows: np.ndarray, n: int | None) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size and rows.min() < 0:
        raise ValueError("row numbers must not be negative")
    if n is not None and rows.size and rows.max() >= n:
        raise ValueError(f"row numbers must be below the matrix's {n} rows")
    return rows
