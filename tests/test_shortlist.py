"""The approximate first pass inside VectorIndex.top: clustered rows, a lowered size threshold; exact
scores, near-exact recall, filters and deletes respected, rows added after the build found."""

import numpy as np
import pytest

pytest.importorskip("faiss")

from engine import shortlist  # noqa: E402
from engine.search import VectorIndex  # noqa: E402
from engine.store import Filters  # noqa: E402
from tests.test_search import _vectors_of  # noqa: E402

ROWS, DIM = 6000, 32


def clustered(rng, rows: int) -> np.ndarray:
    centres = rng.standard_normal((60, DIM))
    matrix = centres[rng.integers(0, 60, rows)] + 0.25 * rng.standard_normal((rows, DIM))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def index(monkeypatch):
    monkeypatch.setattr(shortlist, "MIN_ROWS", 1000)
    rng = np.random.default_rng(3)
    matrix = clustered(rng, ROWS)
    durations = rng.uniform(0.05, 60, ROWS)
    vectors = _vectors_of(matrix, durations)
    built = VectorIndex(store=None, model_id="m", dim=DIM)
    built._sync = lambda: vectors
    queries = matrix[rng.choice(ROWS, 40, replace=False)] + 0.1 * rng.standard_normal((40, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return built, vectors, matrix, durations, queries


def exact_top(matrix, query, keep, limit):
    scores = matrix @ query
    rows = sorted(np.flatnonzero(keep), key=lambda i: (-float(scores[i]), f"t{i:05d}"))[:limit]
    return [f"t{i:05d}" for i in rows], scores


def test_past_the_threshold_candidates_come_from_the_approximate_index(index):
    built, vectors, matrix, durations, queries = index
    first = built.top(queries[0], filters=Filters(), limit=10, min_score=None)  # exact; starts the build
    assert [i for i, _ in first] == exact_top(matrix, queries[0], np.ones(ROWS, bool), 10)[0]
    built.shortlist.wait(120)
    assert built.shortlist._index is not None and built.shortlist.failed is None
    assert built.shortlist.recall >= 0.95
    found = total = 0
    for query in queries:
        got = built.top(query, filters=Filters(), limit=10, min_score=None)
        expected, scores = exact_top(matrix, query, np.ones(ROWS, bool), 10)
        assert [score for _, score in got] == [float(scores[int(i[1:])]) for i, _ in got]  # scores are exact
        found += len({i for i, _ in got} & set(expected))
        total += len(expected)
    assert found / total >= 0.95


def test_filters_and_deleted_rows_are_respected(index):
    built, vectors, matrix, durations, queries = index
    built.top(queries[0], filters=Filters(), limit=10, min_score=None)
    built.shortlist.wait(120)
    gone = [f"t{i:05d}" for i in range(0, ROWS, 3)]
    vectors.remove_many(gone)  # deleted after the build: the index still holds them, the mask does not
    long_only = Filters(min_duration=20.0)  # keeps about two thirds of what is left: still approximate
    for query in queries:
        got = built.top(query, filters=long_only, limit=15, min_score=None)
        assert got and not {i for i, _ in got} & set(gone)
        assert all(durations[int(i[1:])] >= 20.0 for i, _ in got)


def test_rows_added_after_the_build_are_found(index):
    built, vectors, matrix, durations, queries = index
    built.top(queries[0], filters=Filters(), limit=10, min_score=None)
    built.shortlist.wait(120)
    newcomer = queries[5].copy()  # a new track exactly where the query points
    vectors.append_rows(["new-track"], newcomer[None, :], windows=[1], duration=[5.0], tempo=[np.nan],
                        formats=["wav"])
    got = built.top(queries[5], filters=Filters(), limit=5, min_score=None)
    assert got[0][0] == "new-track" and got[0][1] == pytest.approx(1.0, abs=1e-5)


def test_below_the_threshold_nothing_is_built(index, monkeypatch):
    built, vectors, matrix, durations, queries = index
    monkeypatch.setattr(shortlist, "MIN_ROWS", ROWS + 1)
    got = built.top(queries[0], filters=Filters(), limit=10, min_score=None)
    assert [i for i, _ in got] == exact_top(matrix, queries[0], np.ones(ROWS, bool), 10)[0]
    assert built.shortlist._thread is None


def test_vectors_without_structure_keep_the_exact_scan(monkeypatch):
    """Uniform vectors give the approximate index a recall far under the target: the shortlist says
    so and every search stays exact."""
    monkeypatch.setattr(shortlist, "MIN_ROWS", 1000)
    rng = np.random.default_rng(4)
    matrix = rng.standard_normal((20_000, 256)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vectors = _vectors_of(matrix, np.ones(len(matrix)))
    built = VectorIndex(store=None, model_id="m", dim=256)
    built._sync = lambda: vectors
    queries = rng.standard_normal((10, 256)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    built.top(queries[0], filters=Filters(), limit=10, min_score=None)
    built.shortlist.wait(120)
    assert built.shortlist._index is None
    assert built.shortlist.recall < 0.95 and "recall@10" in built.shortlist.failed
    for query in queries:
        got = built.top(query, filters=Filters(), limit=20, min_score=None)
        expected, _ = exact_top(matrix, query, np.ones(len(matrix), bool), 20)
        assert [i for i, _ in got] == expected
    assert built.shortlist._thread is None or not built.shortlist._thread.is_alive()  # not rebuilt per query
