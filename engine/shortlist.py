"""The first pass for large libraries: candidate rows from the approximate index (engine.ann).

Past ``MIN_ROWS`` rows kept by a query's filters, ``VectorIndex.top`` asks the
shortlist for candidates instead of scoring every row, then rescores them
exactly in float32, so every score it returns is exact and only the candidate
set is approximate (recall@10 0.99 to 1.0 on clustered data at 1M rows:
docs/BENCHMARKS.md).

The approximate index is built in a background thread from the index's
float16 rows, and until it is ready (or after a reload, which makes new rows)
searches take the exact scan. It covers the rows that existed when its build
began; rows added since (the "tail") are scored exactly on every query, and
past ``REBUILD_SHARE`` of the indexed rows a new build starts. Rows are never
removed from it: a query passes the rows it may return (live, and passing the
filters) as a mask, so a deleted or replaced track never comes back. It is
rebuilt from the vectors, never the only copy of anything.

A build over the rows of the vector cache files alone is saved beside them
(``VectorCache.approximate_index_path``), so the next process loads it in
seconds instead of building it again (50-90 s at 1M rows on 2 cores). The
saved index is used only for the same cache files; rows alive now that it does
not hold (a missing track found again) are added to it, and it is checked like
a new build before use. A build that was refused is remembered the same way, so
an unstructured library does not pay for a refused build at every start.

Each build is checked before it is used: ``engine.ann.calibrate`` measures its
recall on probe queries against the exact scan and widens the cells scanned
until it reaches ``RECALL_TARGET``. Vectors without the structure real
libraries have (uniform ones: a few per cent of the exact top-20 found at 1M)
never reach it; the index is then dropped and searches stay exact, with the
reason in ``failed``.
"""

from __future__ import annotations

import logging
import threading
import weakref

import numpy as np

from engine.ann import ANN_MIN_ROWS, CANDIDATES_PER_RESULT, MIN_CANDIDATES, RECALL_TARGET

log = logging.getLogger(__name__)

MIN_ROWS = ANN_MIN_ROWS  # rows a query keeps before the approximate pass pays (engine.ann)
# Rows added since the build, as a share of the rows it holds, before a new build starts: the tail
# is scored exactly on every query (10 % of 1M rows is about 20 ms).
REBUILD_SHARE = 0.1


class Shortlist:
    """An approximate index over one ``engine.search._Vectors``' rows, kept current in the background."""

    def __init__(self, *, seed: int = 0):
        self._seed = seed
        self._lock = threading.Lock()
        self._index = None  # engine.ann.ApproximateIndex over rows [0, self._rows)
        self._rows = 0
        self._owner = None  # weakref to the _Vectors it was built from
        self._thread: threading.Thread | None = None
        self.failed: str | None = None  # why the last build failed or was refused (searches stay exact)
        self.recall: float | None = None  # the last build's measured recall@10 (engine.ann.calibrate)
        self._failed_owner = None  # a build that failed is not retried for the same rows
        self.loaded = False  # the index in use was loaded from a saved file, not built here

    def candidates(self, vectors, query: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray | None:
        """Rows that may be in the top ``limit`` of ``keep`` for a unit ``query``, or None when the
        caller should scan exactly (few rows kept, no index ready yet, or too few candidates found).
        Callers hold the vectors' lock."""
        if int(np.count_nonzero(keep)) < MIN_ROWS or self._failed_owner is not None and self._failed_owner() is vectors:
            return None
        with self._lock:
            index, rows = (self._index, self._rows) if self._owner and self._owner() is vectors else (None, 0)
        if index is None or len(vectors) - rows > REBUILD_SHARE * rows:
            self._start_build(vectors)
        if index is None:
            return None
        wanted = max(CANDIDATES_PER_RESULT * limit, MIN_CANDIDATES)
        found = index.search(query, wanted, allowed=keep[:rows])
        if found.size < min(limit, int(np.count_nonzero(keep[:rows]))):
            return None  # the scanned cells held too few allowed rows (a narrow filter): exact scan
        tail = np.flatnonzero(keep[rows:]) + rows
        if tail.size > limit:  # rows added since the build: their exact best
            scores = vectors.exact_rows(tail) @ query
            tail = tail[np.argpartition(-scores, limit - 1)[:limit]]
        return np.concatenate([found, tail])

    def wait(self, timeout: float | None = None) -> None:
        """Until a build running now ends (tests, benchmarks)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _start_build(self, vectors) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            rows = len(vectors)
            # What the build reads, taken under the caller's lock: the base rows are a read-only
            # memory map; the in-memory rows are copied, as the arrays may grow meanwhile.
            matrix = vectors.coarse_matrix(rows)
            live = np.flatnonzero(vectors.alive[:rows])
            owner = weakref.ref(vectors)
            # Only an index over the cache files' rows alone is kept: in-memory rows differ by process.
            saved = vectors.saved_index
            keep_as = saved if saved is not None and rows == vectors.base_rows else None
            self._thread = threading.Thread(target=self._build, args=(owner, matrix, live, rows, saved, keep_as),
                                            name="shortlist-build", daemon=True)
            self._thread.start()

    def _build(self, owner, matrix: np.ndarray, live: np.ndarray, rows: int, saved=None, keep_as=None) -> None:
        from engine.ann import ApproximateIndex, calibrate

        try:
            index = _saved_index(saved, matrix, live, rows)
            if isinstance(index, float):  # an earlier start refused a build over these rows: not again
                self._refuse(index, owner, earlier=True)
                return
            loaded = index is not None
            if index is None:
                index = ApproximateIndex.build(matrix, rows=live, seed=self._seed)
            recall = calibrate(index, matrix, live[live < index.span], seed=self._seed)
        except Exception as exc:  # noqa: BLE001 - searches stay exact (faiss missing, memory): the reason is kept
            log.exception("building the approximate index failed; searches stay exact")
            with self._lock:
                self.failed, self._failed_owner = f"{type(exc).__name__}: {exc}", owner
            return
        if recall < RECALL_TARGET:
            if loaded:  # the next process builds afresh rather than load a refused index again
                saved.unlink(missing_ok=True)
            elif keep_as is not None:  # nor builds again what was refused for these rows (47-90 s at 1M)
                _keep(keep_as, refused_recall=np.array([recall]), rows=np.array([rows], dtype=np.int64))
            log.info("approximate index found %.0f%% of the exact top 10 (needs %.0f%%); searches stay exact",
                     100 * recall, 100 * RECALL_TARGET)
            self._refuse(recall, owner, earlier=False)
            return
        if keep_as is not None and not loaded:
            _keep(keep_as, index=index)
        with self._lock:
            self._index, self._rows, self._owner, self.failed, self.recall = index, index.span, owner, None, recall
            self.loaded = loaded

    def _refuse(self, recall: float, owner, *, earlier: bool) -> None:
        with self._lock:
            self.recall, self._failed_owner = recall, owner
            self.failed = (f"recall@10 {recall:.2f} on probe queries, under {RECALL_TARGET}: these vectors "
                           "have too little structure for the approximate index"
                           + (" (measured at an earlier start)" if earlier else ""))


def _saved_index(path, matrix: np.ndarray, live: np.ndarray, rows: int):
    """What an earlier start kept for these cache files: its index, with the live rows it lacks
    added; or the recall of a build it refused (a float); or None: nothing kept, unreadable, another
    width, or so far behind the rows that a new build is due anyway."""
    from engine.ann import ApproximateIndex

    if path is None or not path.exists():
        return None
    try:
        with np.load(path) as stored:  # reads only the members asked for
            if "refused_recall" in stored.files:
                span, recall = int(stored["rows"][0]), float(stored["refused_recall"][0])
                return recall if _current(span, rows) else None
        index = ApproximateIndex.load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: build a new one
        log.warning("not using the saved approximate index %s (%s: %s)", path, type(exc).__name__, exc)
        return None
    if index.dim != matrix.shape[1] or not _current(index.span, rows):
        return None
    lacking = index.absent(live[live < index.span])  # dead when it was built, alive now (found again)
    if lacking.size:
        index.add(lacking, matrix[lacking])
    return index


def _current(span: int, rows: int) -> bool:
    """Whether what was kept for ``span`` rows still answers for ``rows``: at most REBUILD_SHARE more."""
    return span <= rows and rows - span <= REBUILD_SHARE * span


def _keep(path, index=None, **refusal) -> None:
    """Keep a built index, or a refusal's arrays, at ``path`` for the next start; a read-only or full
    disk only means the next start builds again."""
    from engine.ann import write_arrays

    try:
        if index is not None:
            index.save(path)
        else:
            write_arrays(path, **refusal)
    except OSError as exc:
        log.warning("could not keep the approximate index in %s (%s)", path, exc)
