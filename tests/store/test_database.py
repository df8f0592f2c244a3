import duckdb
import pytest

from engine.errors import LibraryLockedError, StoreError
from engine.store import Store, migrations
from tests.store.helpers import add, record


def test_new_library_applies_every_migration_in_order(tmp_path):
    store = Store(tmp_path)
    assert store.db.applied_migrations() == [name for name, _ in migrations.MIGRATIONS]
    assert (tmp_path / "traum.duckdb").is_file()


def test_reopening_keeps_data_and_applies_only_new_migrations(tmp_path, monkeypatch):
    store = Store(tmp_path)
    add(store)
    store.close()
    extra = ("9999_add_test_column", "ALTER TABLE features ADD COLUMN loudness_lufs DOUBLE")
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [extra])
    monkeypatch.setattr("engine.store.database.MIGRATIONS", migrations.MIGRATIONS)
    store = Store(tmp_path)
    assert store.db.applied_migrations()[-1] == "9999_add_test_column"
    assert store.tracks.get("ab" * 32).filename == "kick.wav"
    store.close()
    store = Store(tmp_path)  # a third open applies nothing twice
    assert store.db.applied_migrations().count("9999_add_test_column") == 1


def test_window_rows_of_an_older_library_are_packed_into_window_sets(tmp_path, monkeypatch):
    """A library made before 0003 (one row per window) opens with every window intact."""
    import numpy as np

    monkeypatch.setattr("engine.store.database.MIGRATIONS", migrations.MIGRATIONS[:2])
    store = Store(tmp_path)
    rng = np.random.default_rng(0)
    windows = {tid: rng.standard_normal((n, 4)).astype(np.float32) for tid, n in (("a" * 64, 3), ("b" * 64, 1))}
    with store.db.transaction("old rows") as conn:
        for track_id, rows in windows.items():
            for model_id in ("m1", "m2"):
                for i, row in enumerate(rows):
                    conn.execute("INSERT INTO window_embeddings VALUES (?, ?, ?, ?, ?, ?)",
                                 [track_id, model_id, i, 10.0 * i, 10.0 * i + 10, (row + (model_id == "m2")).tolist()])
    store.close()
    monkeypatch.setattr("engine.store.database.MIGRATIONS", migrations.MIGRATIONS)
    store = Store(tmp_path)
    assert "0003_window_sets" in store.db.applied_migrations()
    got = store.embeddings.windows("m2")
    assert sorted(got) == sorted(windows)
    for track_id, rows in windows.items():
        assert np.array_equal(got[track_id].embeddings, rows + 1)
        assert got[track_id].starts_s == [10.0 * i for i in range(len(rows))]
        assert got[track_id].ends_s == [10.0 * i + 10 for i in range(len(rows))]
    assert np.array_equal(store.embeddings.windows("m1", ["a" * 64])["a" * 64].embeddings, windows["a" * 64])
    assert "window_embeddings" not in {r[0] for r in store.db.rows("tables", "SHOW TABLES")}


def test_track_vectors_of_an_older_library_become_bytes_intact(tmp_path, monkeypatch):
    """A library made before 0004 (vectors as FLOAT[] lists, two models of different widths) opens
    with every vector bit for bit, and the search index loads them."""
    import numpy as np

    from engine.search import embedding_matrix

    monkeypatch.setattr("engine.store.database.MIGRATIONS", migrations.MIGRATIONS[:3])
    store = Store(tmp_path)
    rng = np.random.default_rng(1)
    ids = [c * 64 for c in "abcdef0123"]
    vectors = {"m4": rng.standard_normal((len(ids), 4)).astype(np.float32),
               "m7": rng.standard_normal((len(ids), 7)).astype(np.float32)}
    with store.db.transaction("old rows") as conn:
        for i, track_id in enumerate(ids):
            conn.execute("INSERT INTO tracks (id, filename, storage, path, format, file_size, sample_rate, channels,"
                         " duration, analysed_duration, truncated) VALUES (?, 'x.wav', 'referenced', ?, 'wav', 1,"
                         " 44100, 1, 1.0, 1.0, false)", [track_id, f"/x/{i}.wav"])
            for model_id, matrix in vectors.items():
                conn.execute("INSERT INTO track_embeddings (track_id, model_id, pipeline_version, embedding,"
                             " window_count) VALUES (?, ?, 1, ?, 1)", [track_id, model_id, matrix[i].tolist()])
    store.close()
    monkeypatch.setattr("engine.store.database.MIGRATIONS", migrations.MIGRATIONS)
    store = Store(tmp_path)
    assert "0004_embedding_bytes" in store.db.applied_migrations()
    for model_id, matrix in vectors.items():
        table = store.embeddings.table(model_id, 1)
        order = [ids.index(t) for t in table.column("track_id").to_pylist()]
        assert np.array_equal(embedding_matrix(table), matrix[order])
    assert "track_embeddings_lists" not in {r[0] for r in store.db.rows("tables", "SHOW TABLES")}


def test_sql_values_are_bound_not_formatted(tmp_path):
    store = Store(tmp_path)
    nasty = "x'); DROP TABLE tracks; --"
    add(store, record(filename=nasty))
    assert store.tracks.get("ab" * 32).filename == nasty


def test_second_process_gets_a_clear_lock_error(tmp_path):
    import subprocess
    import sys

    store = Store(tmp_path)
    code = (
        "import sys; from engine.store import Store\n"
        "from engine.errors import LibraryLockedError\n"
        f"try:\n    Store({str(tmp_path)!r})\nexcept LibraryLockedError as e:\n    print(e); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "open in another Traum-Engine process" in result.stdout
    store.close()


def test_a_damaged_database_file_is_a_titled_error(tmp_path):
    (tmp_path / "traum.duckdb").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        Store(tmp_path)
    assert "cannot open the library" in info.value.message
    assert not isinstance(info.value, LibraryLockedError)


def test_duckdb_errors_are_wrapped(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(StoreError) as info:
        store.db.records("run a broken query", "SELECT * FROM no_such_table")
    assert isinstance(info.value.__cause__, duckdb.Error)
    assert info.value.message.startswith("could not run a broken query")


def test_bulk_writes_put_checkpoints_off_and_checkpoint_once_at_the_end(tmp_path):
    """A shard merge's transactions (7 MB of log each here) stay in the write-ahead log past
    DuckDB's 16 MB threshold, are checkpointed when the bulk writes end, and the threshold is put
    back; with it back, the log is checkpointed past 16 MB again."""
    store = Store(tmp_path)
    log = tmp_path / "traum.duckdb.wal"

    def threshold() -> str:
        return store.db.rows("read the setting", "SELECT current_setting('checkpoint_threshold')")[0][0]

    def write(batch: int) -> int:
        with store.db.transaction("write a batch") as conn:  # under a row group: it goes through the log
            conn.execute("INSERT INTO bulk SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) FROM range(?, ?) r(i)",
                         [batch * 100_000, (batch + 1) * 100_000])
        return log.stat().st_size if log.exists() else 0

    with store.db.transaction("make a table") as conn:
        conn.execute("CREATE TABLE bulk (i BIGINT, s VARCHAR)")
    before = threshold()
    with store.db.checkpoints_deferred("1GB"):
        sizes = [write(batch) for batch in range(4)]
        assert sizes == sorted(sizes) and sizes[-1] > 20 * 2**20  # no checkpoint in between
    assert not log.exists() or log.stat().st_size < 2**20
    assert threshold() == before
    assert min(write(batch) for batch in range(4, 8)) < 2**20  # checkpointed past 16 MB as before
    assert store.db.rows("count", "SELECT count(*) FROM bulk")[0][0] == 800_000
