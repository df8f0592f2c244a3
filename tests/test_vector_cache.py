"""The search index's vector cache (engine.store.embeddings.VectorCache) and its load path.

DuckDB stays the only source of truth: a cached row is used only while DuckDB holds the same
(track id, stamp); everything else is read from DuckDB, and results stay exact.
"""

import json

import numpy as np
import pyarrow as pa
import pytest

from engine.search import VectorIndex, _Vectors
from engine.store import EmbeddingWrite, Filters, Store
from engine.store.embeddings import RowFile, fixed_ids, id_keys
from engine.vectors import PIPELINE_VERSION
from tests.store.helpers import add, record

MODEL = "cache-model"
DIM = 16


def unit(rng, n, dim=DIM):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def save(store, track_id, vector, model=MODEL):
    store.embeddings.save(track_id, EmbeddingWrite(model, PIPELINE_VERSION, vector, vector[None, :], [0.0], [1.0]))


def library(tmp_path, n=40, seed=0, ids=None):
    """A store with n tracks of random unit vectors; returns (store, {id: vector})."""
    store = Store(tmp_path / "data")
    rng = np.random.default_rng(seed)
    vectors = unit(rng, n)
    ids = ids or [f"{i:064x}" for i in range(n)]
    fmts = ("wav", "mp3", "flac")
    for i, (track_id, vector) in enumerate(zip(ids, vectors)):
        add(store, record(track_id, duration=1.0 + i, format=fmts[i % 3], filename=f"t{i}.{fmts[i % 3]}"))
        save(store, track_id, vector)
    return store, dict(zip(ids, vectors))


def exact_top(truth: dict, query, limit, keep=lambda track_id: True):
    ids = [t for t in truth if keep(t)]
    scores = dict(zip(ids, (np.stack([truth[t] for t in ids]) @ query).tolist())) if ids else {}
    return sorted(scores, key=lambda t: (-scores[t], t))[:limit]


def load(store):
    index = VectorIndex(store, MODEL, DIM)
    index.sync()
    return index


def no_rebuild(monkeypatch):
    def refuse(self):
        raise AssertionError("the cache was rewritten")

    monkeypatch.setattr("engine.store.embeddings.VectorCache.rebuild", refuse)


def test_the_first_load_writes_the_cache_and_the_next_uses_it(tmp_path, monkeypatch):
    store, truth = library(tmp_path)
    query = unit(np.random.default_rng(9), 1)[0]
    first = load(store)
    cache = store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM)
    assert cache.header_path.exists()
    # The next load reads no vector from DuckDB: no rebuild, no read by key.
    no_rebuild(monkeypatch)
    monkeypatch.setattr(store.embeddings, "table", lambda *a, **k: pytest.fail("vectors read from DuckDB"))
    second = load(store)
    for index in (first, second):
        got = index.top(query, filters=Filters(), limit=5, min_score=None)
        assert [t for t, _ in got] == exact_top(truth, query, 5)
        assert [s for _, s in got] == pytest.approx([float(truth[t] @ query) for t, _ in got], abs=1e-6)
    vectors = second._vectors
    assert vectors._base is not None and vectors._base.rows == len(truth)
    assert set(vectors.row_of) == set(truth)
    for track_id, vector in truth.items():
        assert np.array_equal(second.vector_of(track_id), vector)


def test_a_vector_rewritten_behind_the_caches_back_is_read_from_duckdb(tmp_path, monkeypatch):
    store, truth = library(tmp_path)
    load(store)  # writes the cache
    target = sorted(truth)[3]
    new = -truth[target]  # the opposite direction: the old row would rank last, the new one first
    save(store, target, new)  # a new row, a new stamp
    truth[target] = new
    no_rebuild(monkeypatch)  # one stale row: read by key, the cache kept
    index = load(store)
    assert np.array_equal(index.vector_of(target), new)
    got = index.top(new, filters=Filters(), limit=1, min_score=None)
    assert got == [(target, pytest.approx(1.0, abs=1e-6))]
    ids, matrix, _ = index.snapshot()
    assert np.array_equal(matrix[ids.index(target)], new)
    assert len(ids) == len(truth)


def test_a_row_with_a_new_stamp_is_not_taken_from_the_cache(tmp_path):
    """Same id, same vector bytes in the cache, but DuckDB's row is another write: not used."""
    store, truth = library(tmp_path, n=5)
    load(store)
    target = sorted(truth)[0]
    with store.db.transaction("rewrite one row") as conn:  # as an import or a shard merge would
        conn.execute("UPDATE track_embeddings SET created_at = created_at + INTERVAL 1 SECOND,"
                     " embedding = ? WHERE track_id = ?", [(-truth[target]).astype("<f4").tobytes(), target])
    index = load(store)
    assert np.array_equal(index.vector_of(target), -truth[target])


def test_deleted_tracks_are_never_returned(tmp_path, monkeypatch):
    store, truth = library(tmp_path)
    load(store)
    gone = sorted(truth)[:5]
    for track_id in gone:
        store.tracks.delete(track_id)
    no_rebuild(monkeypatch)
    index = load(store)
    for track_id in gone:
        query = truth[track_id]
        got = [t for t, _ in index.top(query, filters=Filters(), limit=len(truth), min_score=None)]
        assert track_id not in got and len(got) == len(truth) - len(gone)
        assert index.vector_of(track_id) is None
        assert track_id not in index._vectors.row_of
    ids, matrix, _ = index.snapshot()
    assert sorted(ids) == sorted(set(truth) - set(gone))
    assert index.allowed_ids(Filters()) == set(truth) - set(gone)


def test_missing_tracks_are_left_out(tmp_path):
    store, truth = library(tmp_path, n=6)
    load(store)
    target = sorted(truth)[2]
    store.db.execute("mark missing", "INSERT INTO missing_tracks (track_id) VALUES (?)", [target])
    index = load(store)
    assert target not in index._vectors.row_of and len(index._vectors.row_of) == 5


def test_rows_written_since_are_added_to_the_cache(tmp_path, monkeypatch):
    store, truth = library(tmp_path, n=30)
    load(store)
    cache = store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM)
    before = json.loads(cache.header_path.read_text())
    rng = np.random.default_rng(5)
    for track_id in sorted(truth)[:3]:
        truth[track_id] = unit(rng, 1)[0]
        save(store, track_id, truth[track_id])
    new_id = "e" * 64
    add(store, record(new_id))
    truth[new_id] = unit(rng, 1)[0]
    save(store, new_id, truth[new_id])
    no_rebuild(monkeypatch)
    index = load(store)
    after = json.loads(cache.header_path.read_text())
    assert after["data"] == before["data"] and after["rows"] == before["rows"] + 4
    assert after["index"] != before["index"] and not list(cache.directory.glob(f"*{before['index']}*"))
    for track_id, vector in truth.items():
        assert np.array_equal(index.vector_of(track_id), vector)
    assert len(index._vectors) == 34 and len(index._vectors.row_of) == 31  # 3 dead rows, all in the cache
    # Nothing is read from DuckDB by key the next time.
    monkeypatch.setattr(store.embeddings, "vectors_by_id", lambda *a, **k: pytest.fail("read by key"))
    again = load(store)
    assert all(np.array_equal(again.vector_of(t), v) for t, v in truth.items())


def test_an_append_that_never_committed_is_ignored_and_overwritten(tmp_path):
    store, truth = library(tmp_path, n=10)
    load(store)
    cache = store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM)
    header = json.loads(cache.header_path.read_text())
    for suffix in ("f16", "f32"):  # as if a crash came between the append and the header
        with open(cache.directory / f"{cache.key}.{header['data']}.{suffix}", "ab") as fh:
            fh.write(b"\x7f" * 1000)
    assert cache.load() is not None
    rng = np.random.default_rng(1)
    target = sorted(truth)[4]
    truth[target] = unit(rng, 1)[0]
    save(store, target, truth[target])
    index = load(store)  # appends one row over the leftovers
    assert json.loads(cache.header_path.read_text())["rows"] == 11
    assert (cache.directory / f"{cache.key}.{header['data']}.f32").stat().st_size == 11 * DIM * 4
    assert all(np.array_equal(index.vector_of(t), v) for t, v in truth.items())


def test_many_stale_or_dead_rows_rewrite_the_cache_and_sweep_the_old_files(tmp_path, monkeypatch):
    store, truth = library(tmp_path, n=30)
    load(store)
    cache = store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM)
    before = json.loads(cache.header_path.read_text())
    monkeypatch.setattr("engine.search.STALE_ROWS_READ_BY_KEY", 2)
    rng = np.random.default_rng(5)
    for track_id in sorted(truth)[:4]:
        truth[track_id] = unit(rng, 1)[0]
        save(store, track_id, truth[track_id])
    index = load(store)
    after = json.loads(cache.header_path.read_text())
    assert after["data"] != before["data"] and after["rows"] == 30
    assert not list(cache.directory.glob(f"*{before['data']}*"))
    assert sorted(p.name for p in cache.directory.iterdir()) == sorted(
        [f"{cache.key}.json"] + [f"{cache.key}.{after['data']}.{s}" for s in ("f16", "f32")]
        + [f"{cache.key}.{after['index']}.{n}.npy" for n in ("ids", "keys", "order", "stamps")])
    for track_id, vector in truth.items():
        assert np.array_equal(index.vector_of(track_id), vector)
    # A quarter of the cache's rows dead: rewritten without them.
    monkeypatch.setattr("engine.search.DEAD_ROWS_KEPT", 0)
    for track_id in sorted(truth)[:8]:
        store.tracks.delete(track_id)
        del truth[track_id]
    index = load(store)
    assert json.loads(cache.header_path.read_text())["rows"] == 22 == len(index._vectors)
    assert sorted(index._vectors.row_of) == sorted(truth)


def test_a_damaged_or_foreign_cache_is_not_used(tmp_path):
    store, truth = library(tmp_path, n=8)
    load(store)
    cache = store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM)
    header = json.loads(cache.header_path.read_text())
    f16 = cache.directory / f"{cache.key}.{header['data']}.f16"
    f16.write_bytes(f16.read_bytes()[:-2])  # truncated
    assert cache.load() is None
    index = load(store)  # rebuilt
    assert cache.load() is not None
    assert all(np.array_equal(index.vector_of(t), v) for t, v in truth.items())
    # A header from before a schema migration, or of another width, is not used either.
    header = json.loads(cache.header_path.read_text())
    cache.header_path.write_text(json.dumps({**header, "migrations": header["migrations"][:-1]}))
    assert cache.load() is None
    cache.header_path.write_text(json.dumps(header))
    assert cache.load() is not None
    assert store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM * 2).load() is None
    cache.header_path.write_text("{not json")
    assert cache.load() is None


def test_a_rebuild_that_never_committed_leaves_no_cache(tmp_path, monkeypatch):
    """A process that ends between writing a rebuild's files and its header: the next load
    rebuilds and sweeps the leftovers."""
    store, truth = library(tmp_path, n=8)

    def crash(self, header, written):
        raise KeyboardInterrupt

    monkeypatch.setattr("engine.store.embeddings.VectorCache._commit", crash)
    with pytest.raises(KeyboardInterrupt):
        load(store)
    cache = store.embeddings.vector_cache(MODEL, PIPELINE_VERSION, DIM)
    assert not cache.header_path.exists() and cache.load() is None
    assert not list(cache.directory.iterdir())  # what it wrote was removed
    for name in ("f16", "f32"):  # as if the process had died instead: files without a header
        (cache.directory / f"{cache.key}.0123456789ab.{name}").write_bytes(b"\0" * 64)
    monkeypatch.undo()
    second = load(store)
    assert cache.header_path.exists()
    assert len(list(cache.directory.iterdir())) == 7  # the leftovers were swept
    assert all(np.array_equal(second.vector_of(t), v) for t, v in truth.items())


def test_the_index_loads_without_a_writable_cache(tmp_path, monkeypatch):
    store, truth = library(tmp_path, n=12)

    def fail(self):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("engine.store.embeddings.VectorCache.rebuild", fail)
    index = load(store)
    assert index._vectors._base is None
    query = unit(np.random.default_rng(2), 1)[0]
    got = index.top(query, filters=Filters(), limit=4, min_score=None)
    assert [t for t, _ in got] == exact_top(truth, query, 4)


def test_replayed_changes_after_a_cached_load(tmp_path):
    store, truth = library(tmp_path, n=20)
    load(store)
    index = load(store)  # from the cache
    rng = np.random.default_rng(7)
    new_id = "f" * 64
    add(store, record(new_id, format="flac", duration=3.0))
    truth[new_id] = unit(rng, 1)[0]
    save(store, new_id, truth[new_id])
    replaced = sorted(truth)[0]
    truth[replaced] = unit(rng, 1)[0]
    save(store, replaced, truth[replaced])
    gone = sorted(truth)[1]
    store.tracks.delete(gone)
    del truth[gone]
    for query in unit(rng, 5):
        got = index.top(query, filters=Filters(), limit=len(truth) + 5, min_score=None)
        assert [t for t, _ in got] == exact_top(truth, query, len(truth))
    assert np.array_equal(index.vector_of(replaced), truth[replaced])
    assert index.vector_of(gone) is None
    fresh = VectorIndex(store, MODEL, DIM).sync()
    assert set(fresh.row_of) == set(index.sync().row_of) == set(truth)


def test_filters_only_and_exclude_on_cached_rows(tmp_path):
    store, truth = library(tmp_path, n=30)
    load(store)
    index = load(store)
    durations = {t: 1.0 + i for i, t in enumerate(truth)}  # library() gives track i duration 1 + i
    formats = {t: ("wav", "mp3", "flac")[i % 3] for i, t in enumerate(truth)}
    query = unit(np.random.default_rng(3), 1)[0]
    f = Filters(max_duration=20.0, formats=("flac", ".MP3"))
    got = [t for t, _ in index.top(query, filters=f, limit=50, min_score=None)]
    assert got == exact_top(truth, query, 50, lambda t: durations[t] <= 20 and formats[t] in ("flac", "mp3"))
    only = set(sorted(truth)[5:15])
    excluded = sorted(only)[0]
    got = [t for t, _ in index.top(query, filters=Filters(), limit=50, min_score=None, only=only | {"nope"},
                                   exclude=excluded)]
    assert got == exact_top(truth, query, 50, lambda t: t in only and t != excluded)
    vectors = index._vectors
    assert [vectors.format[vectors.row_of[t]] for t in truth] == list(formats.values())


@pytest.mark.parametrize("seed", range(3))
def test_two_pass_scan_over_cached_and_appended_rows_is_exact(tmp_path, seed):
    """The float16-then-float32 scan stays exact when rows come from the cache files and from memory."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.3, 1.2)
    thetas = angle + rng.uniform(-0.02, 0.02, 120)
    matrix = np.zeros((120, DIM), dtype=np.float32)
    matrix[:, 0], matrix[:, 1] = np.cos(thetas), np.sin(thetas)
    matrix[60:63] = matrix[59]  # exact ties break by id
    query = np.zeros(DIM, dtype=np.float32)
    query[0], query[1] = np.cos(angle), np.sin(angle)
    ids = [f"{i:064x}" for i in range(120)]
    store = Store(tmp_path / "data")
    for track_id, vector in zip(ids[:100], matrix[:100]):
        add(store, record(track_id))
        save(store, track_id, vector)
    load(store)
    index = load(store)  # rows 0-99 from the cache
    for track_id, vector in zip(ids[100:], matrix[100:]):  # the rest replayed into memory
        add(store, record(track_id))
        save(store, track_id, vector)
    exact = matrix @ query
    for limit in (1, 5, 20):
        got = index.top(query, filters=Filters(), limit=limit, min_score=None)
        expected = sorted(range(120), key=lambda i: (-float(exact[i]), ids[i]))[:limit]
        assert [t for t, _ in got] == [ids[i] for i in expected]
        assert [s for _, s in got] == [float(exact[i]) for i in expected]


def test_ids_of_any_length_are_found(tmp_path):
    ids = ["a", "track-0002", "t" * 70, "ü-non-ascii", "ab", "abc" * 3]
    store, truth = library(tmp_path, n=len(ids), ids=ids)
    load(store)
    index = load(store)
    vectors = index._vectors
    assert vectors._base.rows == len(ids)
    for track_id, vector in truth.items():
        assert np.array_equal(index.vector_of(track_id), vector)
    assert index.vector_of("abc") is None and "t" * 69 not in vectors.row_of
    assert sorted(vectors.row_of) == sorted(ids)


def test_fixed_ids_and_keys():
    values = ["x" * 64, "y" * 64, "short", "", "zz"]
    array = pa.chunked_array([pa.array(values[:2]), pa.array(values[2:])])
    fixed = fixed_ids(array)
    assert [v.decode() for v in fixed.tolist()] == values
    assert [v.decode() for v in fixed_ids(pa.array(values).slice(1, 3)).tolist()] == values[1:4]
    assert [v.decode() for v in fixed_ids(pa.array(values[:2], pa.large_string())).tolist()] == values[:2]
    # The key of an id does not depend on the width it is padded to.
    assert np.array_equal(id_keys(fixed), id_keys(np.array([v.encode() for v in values], dtype="S80")))
    assert id_keys(np.array([b"short"]))[0] == id_keys(fixed)[2]
    assert len(set(id_keys(fixed).tolist())) == len(values)


def test_row_file_reads_rows_in_the_order_asked(tmp_path):
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((20_000, 8)).astype(np.float32)
    path = tmp_path / "rows.f32"
    path.write_bytes(matrix.tobytes())
    rows = RowFile(path, 20_000, 8)
    for pick in (np.array([5, 3, 5, 19_999]), rng.choice(20_000, 300), np.arange(20_000)[::-1],
                 np.concatenate([np.arange(100, 5_000), [19_000]]), np.zeros(0, int)):
        assert np.array_equal(rows.read(pick), matrix[pick])
    with pytest.raises(IndexError):
        rows.read([20_000])


def test_vectors_without_a_cache_behave_as_before():
    vectors = _Vectors(4)
    block = np.eye(4, dtype=np.float32)
    vectors.append_rows(["a", "b", "c"], block[:3], windows=[1, 2, 1], duration=[1.0, 2.0, 3.0],
                        tempo=[np.nan, 120.0, 90.0], formats=["wav", "mp3", None])
    vectors.append_rows(["b"], block[3:], windows=[3], duration=[4.0], tempo=[100.0], formats=["wav"])
    vectors.remove("c")
    assert dict(vectors.row_of) == {"a": 0, "b": 3}
    assert vectors.format[3] == "wav" and vectors.format[2] is None
    assert np.array_equal(vectors.matrix[vectors.row_of["b"]], block[3])
    assert list(vectors.mask(Filters(formats=("wav",)))) == [True, False, False, True]
    assert list(vectors.mask(Filters(min_tempo=95))) == [False, False, False, True]


def test_loads_leave_duckdbs_memory_limit_where_it_was(tmp_path):
    store, _ = library(tmp_path, n=3)

    def limit():
        return store.db.rows("read the memory limit", "SELECT current_setting('memory_limit')")[0][0]

    load(store)  # rebuilds
    first = limit()
    for _ in range(3):
        load(store)
    assert limit() == first  # restored to the same value each time, not drifting by rounding
    assert first not in ("61.0 MiB", "953.6 MiB")  # not left at the eviction limit or the cap


def test_scores_do_not_depend_on_the_order_rows_were_loaded_in(tmp_path):
    """A process that loaded from the cache and one that replayed the same writes hold rows in
    different orders; their results must agree to the last bit (BLAS rounds a row by its place)."""
    store, truth = library(tmp_path, n=37)
    load(store)
    cached = load(store)
    replayed = _Vectors(DIM)
    ids = sorted(truth, reverse=True)
    replayed.append_rows(ids, np.stack([truth[t] for t in ids]), windows=np.ones(len(ids)),
                         duration=[1.0 + sorted(truth).index(t) for t in ids], tempo=np.full(len(ids), np.nan),
                         formats=[("wav", "mp3", "flac")[sorted(truth).index(t) % 3] for t in ids])
    other = VectorIndex(store=None, model_id=MODEL, dim=DIM)
    other._sync = lambda: replayed
    for query in unit(np.random.default_rng(11), 40):
        for limit in (3, 20, 37):
            assert cached.top(query, filters=Filters(), limit=limit, min_score=None) == \
                other.top(query, filters=Filters(), limit=limit, min_score=None)
