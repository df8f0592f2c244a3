import duckdb
import pytest

from engine import migrations
from engine.errors import LibraryLockedError, NotFoundError, StoreError
from engine.features import Features
from engine.store import Store, TrackRecord

FEATURES = Features(duration_s=1.0, tempo_bpm=None, spectral_centroid_hz=440.0, zero_crossing_rate=0.04, rms_energy=0.3)


def record(track_id="ab" * 32, **overrides):
    values = dict(
        id=track_id, filename="kick.wav", storage="referenced", path="/music/kick.wav", format="wav",
        codec="pcm_16", file_size=1000, file_mtime=1.0, sample_rate=44_100, channels=2, duration=1.0,
        analysed_duration=1.0, truncated=False,
    )
    values.update(overrides)
    return TrackRecord(**values)


def test_new_library_applies_every_migration_in_order(tmp_path):
    store = Store(tmp_path)
    assert store.applied_migrations() == [name for name, _ in migrations.MIGRATIONS]
    assert (tmp_path / "traum.duckdb").is_file()


def test_reopening_keeps_data_and_applies_only_new_migrations(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.add_track(record(), FEATURES)
    store.close()
    extra = ("9999_add_test_column", "ALTER TABLE features ADD COLUMN loudness_lufs DOUBLE")
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [extra])
    monkeypatch.setattr("engine.store.MIGRATIONS", migrations.MIGRATIONS)
    store = Store(tmp_path)
    assert store.applied_migrations()[-1] == "9999_add_test_column"
    assert store.get_track("ab" * 32)["filename"] == "kick.wav"
    store.close()
    store = Store(tmp_path)  # a third open applies nothing twice
    assert store.applied_migrations().count("9999_add_test_column") == 1


def test_window_rows_of_an_older_library_are_packed_into_window_sets(tmp_path, monkeypatch):
    """A library made before 0003 (one row per window) opens with every window intact."""
    import numpy as np

    monkeypatch.setattr("engine.store.MIGRATIONS", migrations.MIGRATIONS[:2])
    store = Store(tmp_path)
    rng = np.random.default_rng(0)
    windows = {tid: rng.standard_normal((n, 4)).astype(np.float32) for tid, n in (("a" * 64, 3), ("b" * 64, 1))}
    with store.transaction("old rows") as conn:
        for track_id, rows in windows.items():
            for model_id in ("m1", "m2"):
                for i, row in enumerate(rows):
                    conn.execute("INSERT INTO window_embeddings VALUES (?, ?, ?, ?, ?, ?)",
                                 [track_id, model_id, i, 10.0 * i, 10.0 * i + 10, (row + (model_id == "m2")).tolist()])
    store.close()
    monkeypatch.setattr("engine.store.MIGRATIONS", migrations.MIGRATIONS)
    store = Store(tmp_path)
    assert "0003_window_sets" in store.applied_migrations()
    got = store.windows("m2")
    assert sorted(got) == sorted(windows)
    for track_id, rows in windows.items():
        assert np.array_equal(got[track_id].embeddings, rows + 1)
        assert got[track_id].starts_s == [10.0 * i for i in range(len(rows))]
        assert got[track_id].ends_s == [10.0 * i + 10 for i in range(len(rows))]
    assert np.array_equal(store.windows("m1", ["a" * 64])["a" * 64].embeddings, windows["a" * 64])
    assert "window_embeddings" not in {r[0] for r in store._conn.execute("SHOW TABLES").fetchall()}


def test_track_vectors_of_an_older_library_become_bytes_intact(tmp_path, monkeypatch):
    """A library made before 0004 (vectors as FLOAT[] lists, two models of different widths) opens
    with every vector bit for bit, and the search index loads them."""
    import numpy as np

    from engine.search import embedding_matrix

    monkeypatch.setattr("engine.store.MIGRATIONS", migrations.MIGRATIONS[:3])
    store = Store(tmp_path)
    rng = np.random.default_rng(1)
    ids = [c * 64 for c in "abcdef0123"]
    vectors = {"m4": rng.standard_normal((len(ids), 4)).astype(np.float32),
               "m7": rng.standard_normal((len(ids), 7)).astype(np.float32)}
    with store.transaction("old rows") as conn:
        for i, track_id in enumerate(ids):
            conn.execute("INSERT INTO tracks (id, filename, storage, path, format, file_size, sample_rate, channels,"
                         " duration, analysed_duration, truncated) VALUES (?, 'x.wav', 'referenced', ?, 'wav', 1,"
                         " 44100, 1, 1.0, 1.0, false)", [track_id, f"/x/{i}.wav"])
            for model_id, matrix in vectors.items():
                conn.execute("INSERT INTO track_embeddings (track_id, model_id, pipeline_version, embedding,"
                             " window_count) VALUES (?, ?, 1, ?, 1)", [track_id, model_id, matrix[i].tolist()])
    store.close()
    monkeypatch.setattr("engine.store.MIGRATIONS", migrations.MIGRATIONS)
    store = Store(tmp_path)
    assert store.applied_migrations()[-1] == "0004_embedding_bytes"
    for model_id, matrix in vectors.items():
        table = store.embedding_table(model_id, 1)
        order = [ids.index(t) for t in table.column("track_id").to_pylist()]
        assert np.array_equal(embedding_matrix(table), matrix[order])
    assert "track_embeddings_lists" not in {r[0] for r in store._conn.execute("SHOW TABLES").fetchall()}


def test_window_lookups_by_key_and_by_scan_agree(tmp_path, monkeypatch):
    import numpy as np

    from engine.vectors import TrackVectors

    store = Store(tmp_path)
    rng = np.random.default_rng(1)
    ids = [f"{i:064x}" for i in range(5)]
    for n, track_id in enumerate(ids, start=1):
        store.add_track(record(track_id), FEATURES)
        rows = rng.standard_normal((n, 8)).astype(np.float32)
        store.save_embeddings(track_id, TrackVectors(rows[0], rows, [float(i) for i in range(n)],
                                                     [i + 10.0 for i in range(n)]), "m", 1)
    by_key = store.windows("m", ids[1:4])
    monkeypatch.setattr("engine.store.WINDOW_KEY_LOOKUP_LIMIT", 2)
    by_scan = store.windows("m", ids[1:4])
    assert sorted(by_key) == sorted(by_scan) == sorted(ids[1:4])
    for track_id in ids[1:4]:
        assert np.array_equal(by_key[track_id].embeddings, by_scan[track_id].embeddings)
    assert store.windows("other model", ids) == {}


def test_duplicate_id_is_not_inserted_twice(tmp_path):
    store = Store(tmp_path)
    assert store.add_track(record(), FEATURES) is True
    assert store.add_track(record(filename="other.wav"), FEATURES) is False
    assert store.stats()["tracks"] == 1
    assert store.get_track("ab" * 32)["filename"] == "kick.wav"


def test_a_failure_inside_the_transaction_leaves_nothing(tmp_path):
    store = Store(tmp_path)

    def place(target):
        target.write_bytes(b"audio")

    def explode(conn):
        raise RuntimeError("injected failure after the inserts")

    with pytest.raises(RuntimeError):
        store.add_track(record(storage="managed", path=f"audio/ab/{'ab' * 32}.wav"), FEATURES, place_file=place,
                        extra_writes=explode)
    assert store.stats()["tracks"] == 0
    assert store._query("count", "SELECT count(*) AS n FROM features")[0]["n"] == 0
    assert not (tmp_path / "audio" / "ab" / f"{'ab' * 32}.wav").exists()


def test_delete_removes_rows_and_managed_copy_only(tmp_path):
    store = Store(tmp_path)
    original = tmp_path / "user" / "kick.wav"
    original.parent.mkdir()
    original.write_bytes(b"user's file")
    store.add_track(record("aa" * 32, path=str(original)), FEATURES, source=(str(original), 11, 1.0))
    store.add_track(record("bb" * 32, storage="managed", path=f"audio/bb/{'bb' * 32}.wav"), FEATURES,
                    place_file=lambda target: target.write_bytes(b"copy"))
    store.delete_track("aa" * 32)
    store.delete_track("bb" * 32)
    assert original.read_bytes() == b"user's file"
    assert not (tmp_path / "audio" / "bb" / f"{'bb' * 32}.wav").exists()
    assert store.stats()["tracks"] == 0
    assert store._query("count", "SELECT count(*) AS n FROM sources")[0]["n"] == 0
    with pytest.raises(NotFoundError):
        store.get_track("aa" * 32)


def test_sweep_removes_only_orphaned_files(tmp_path):
    store = Store(tmp_path)
    store.add_track(record(storage="managed", path=f"audio/ab/{'ab' * 32}.wav"), FEATURES,
                    place_file=lambda target: target.write_bytes(b"keep"))
    orphan = tmp_path / "audio" / "cd" / "orphan.wav"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crash")
    assert store.sweep_orphans() == [orphan]
    assert (tmp_path / "audio" / "ab" / f"{'ab' * 32}.wav").exists()


def test_id_prefixes_resolve_like_git(tmp_path):
    store = Store(tmp_path)
    store.add_track(record("abc1230" + "0" * 57), FEATURES)
    store.add_track(record("abc1231" + "0" * 57), FEATURES)
    assert store.resolve_id("ABC1230") == "abc1230" + "0" * 57
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.resolve_id("abc123")
    with pytest.raises(NotFoundError, match="too short"):
        store.resolve_id("abc12")
    with pytest.raises(NotFoundError, match="no track"):
        store.resolve_id("ffffff")


def test_stale_jobs_become_interrupted(tmp_path):
    store = Store(tmp_path)
    [job] = store.create_jobs("batch", ["a.wav"])
    store.update_job(job, status="running", stage="decode", progress=0.3)
    store.close()
    store = Store(tmp_path)
    assert store.interrupt_stale_jobs() == 1
    assert store.jobs()[0]["status"] == "interrupted"


def test_sql_values_are_bound_not_formatted(tmp_path):
    store = Store(tmp_path)
    nasty = "x'); DROP TABLE tracks; --"
    store.add_track(record(filename=nasty), FEATURES)
    assert store.get_track("ab" * 32)["filename"] == nasty


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
        store._query("run a broken query", "SELECT * FROM no_such_table")
    assert isinstance(info.value.__cause__, duckdb.Error)
    assert info.value.message.startswith("could not run a broken query")
