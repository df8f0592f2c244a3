"""The approximate first pass inside VectorIndex.top: clustered rows, a lowered size threshold; exact
scores, near-exact recall, filters and deletes respected, rows added after the build found."""

import numpy as np
import pytest

pytest.importorskip("faiss")

from engine import shortlist  # noqa: E402
from engine.search import VectorIndex  # noqa: E402
from engine.store import EmbeddingWrite, Filters, Store  # noqa: E402
from engine.vectors import PIPELINE_VERSION  # noqa: E402
from tests.store.helpers import add, record  # noqa: E402
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


# -- the index kept beside the vector cache, loaded by the next process -------------------------

STORED_ROWS = 2400


def store_of(directory, matrix: np.ndarray):
    """A store on disk holding ``matrix``'s rows as tracks; (store, ids)."""
    store = Store(directory)
    ids = [f"{i:064x}" for i in range(len(matrix))]
    for i, (track_id, vector) in enumerate(zip(ids, matrix)):
        add(store, record(track_id, filename=f"t{i}.wav", path=f"/music/t{i}.wav"))
        store.embeddings.save(track_id, EmbeddingWrite("m", PIPELINE_VERSION, vector, vector[None, :], [0.0], [1.0]))
    return store, ids


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """A store on disk with clustered vectors, the size threshold lowered; (store, ids, matrix)."""
    monkeypatch.setattr(shortlist, "MIN_ROWS", 500)
    matrix = clustered(np.random.default_rng(4), STORED_ROWS)
    store, ids = store_of(tmp_path / "data", matrix)
    yield store, ids, matrix
    store.close()


def searched(store, query, limit=10):
    """A fresh VectorIndex (as a new process has), its first pass ready; (index, ids found)."""
    built = VectorIndex(store, "m", DIM)
    built.top(query, filters=Filters(), limit=limit, min_score=None)  # exact; loads or builds the first pass
    built.shortlist.wait(120)
    assert built.shortlist._index is not None, built.shortlist.failed
    return built, [i for i, _ in built.top(query, filters=Filters(), limit=limit, min_score=None)]


def refuse_builds(monkeypatch):
    from engine.ann import ApproximateIndex

    def built_again(*args, **kwargs):
        raise AssertionError("the approximate index was built again")

    monkeypatch.setattr(ApproximateIndex, "build", built_again)


def test_a_built_index_is_kept_and_the_next_process_loads_it(stored, monkeypatch):
    store, ids, matrix = stored
    first, found = searched(store, matrix[7])
    saved = first._vectors.saved_index
    assert not first.shortlist.loaded and saved is not None and saved.exists()
    assert found[0] == ids[7]
    refuse_builds(monkeypatch)
    second, again = searched(store, matrix[7])
    assert second.shortlist.loaded and second.shortlist.recall >= 0.95
    assert again == found
    rng = np.random.default_rng(9)
    hits = total = 0
    for row in rng.choice(STORED_ROWS, 20, replace=False):
        query = matrix[row] + 0.1 * rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        got = second.top(query, filters=Filters(), limit=10, min_score=None)
        scores = matrix @ query
        expected = {ids[i] for i in np.argsort(-scores)[:10]}
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        hits, total = hits + len({i for i, _ in got} & expected), total + 10
    assert hits / total >= 0.95


def test_tracks_deleted_since_the_index_was_kept_never_come_back(stored, monkeypatch):
    store, ids, matrix = stored
    searched(store, matrix[0])
    gone = ids[:: 4]
    for track_id in gone:
        store.tracks.delete(track_id)
    refuse_builds(monkeypatch)
    for row in range(0, 40, 4):  # each query points straight at a deleted track
        second, found = searched(store, matrix[row])
        assert second.shortlist.loaded
        assert found and not set(found) & set(gone)


def test_a_track_found_again_is_added_to_the_kept_index(stored, monkeypatch):
    store, ids, matrix = stored
    store.tracks.set_location(ids[11], path="/music/t11.wav", missing=True)
    first, found = searched(store, matrix[11])  # built while the track was missing: not in the index
    assert ids[11] not in found and 11 not in first.shortlist._index
    store.tracks.set_location(ids[11], path="/music/moved/t11.wav", missing=False)
    refuse_builds(monkeypatch)
    second, found = searched(store, matrix[11])
    assert second.shortlist.loaded and 11 in second.shortlist._index
    assert found[0] == ids[11]


def test_the_kept_index_outlives_rows_appended_to_the_cache(stored, monkeypatch):
    store, ids, matrix = stored
    first, _ = searched(store, matrix[5])
    del first
    newcomer = matrix[5] * 0.6 + matrix[6] * 0.4
    newcomer /= np.linalg.norm(newcomer)
    add(store, record("f" * 64, filename="new.wav", path="/music/new.wav"))
    store.embeddings.save("f" * 64, EmbeddingWrite("m", PIPELINE_VERSION, newcomer, newcomer[None, :], [0.0], [1.0]))
    refuse_builds(monkeypatch)
    second, found = searched(store, newcomer)  # the load appends the new row to the cache files
    assert second._vectors.base_rows == STORED_ROWS + 1
    assert second.shortlist.loaded and found[0] == "f" * 64


def test_a_damaged_kept_index_is_built_again(stored):
    store, ids, matrix = stored
    first, _ = searched(store, matrix[3])
    first._vectors.saved_index.write_bytes(b"not an index")
    second, found = searched(store, matrix[3])
    assert not second.shortlist.loaded and found[0] == ids[3]
    third, _ = searched(store, matrix[3])  # the build was kept again
    assert third.shortlist.loaded


def test_the_kept_index_goes_with_the_cache_files_it_was_built_from(stored):
    store, ids, matrix = stored
    first, _ = searched(store, matrix[3])
    saved = first._vectors.saved_index
    del first
    store.embeddings.vector_cache("m", PIPELINE_VERSION, DIM).rebuild()  # new cache files: other row numbers
    assert not saved.exists()
    second, found = searched(store, matrix[3])
    assert not second.shortlist.loaded and found[0] == ids[3]


def test_a_refused_build_is_not_built_again_at_the_next_start(tmp_path, monkeypatch):
    monkeypatch.setattr(shortlist, "MIN_ROWS", 500)
    rng = np.random.default_rng(8)
    matrix = rng.standard_normal((STORED_ROWS, DIM)).astype(np.float32)  # uniform: no structure
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    store, ids = store_of(tmp_path / "data", matrix)
    try:
        first = VectorIndex(store, "m", DIM)
        first.top(matrix[0], filters=Filters(), limit=10, min_score=None)
        first.shortlist.wait(120)
        assert first.shortlist._index is None and "too little structure" in first.shortlist.failed
        assert first._vectors.saved_index.exists()
        refuse_builds(monkeypatch)
        second = VectorIndex(store, "m", DIM)
        for row in (0, 1, 2):
            got = second.top(matrix[row], filters=Filters(), limit=10, min_score=None)
            second.shortlist.wait(120)
            scores = matrix @ matrix[row]
            assert [i for i, _ in got] == [ids[i] for i in np.argsort(-scores, kind="stable")[:10]]  # exact
        assert second.shortlist._index is None and "earlier start" in second.shortlist.failed
    finally:
        store.close()
