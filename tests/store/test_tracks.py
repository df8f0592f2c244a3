import pytest

from engine.errors import NotFoundError
from engine.store import Source, Store
from tests.store.helpers import add, managed_file, record


def test_duplicate_id_is_not_inserted_twice(tmp_path):
    store = Store(tmp_path)
    assert add(store) is True
    assert add(store, record(filename="other.wav")) is False
    assert store.tracks.stats()["tracks"] == 1
    assert store.tracks.get("ab" * 32).filename == "kick.wav"


def test_a_failure_inside_the_transaction_leaves_nothing(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def explode(conn, track_id, failure):
        raise RuntimeError("injected failure after the inserts")

    # The embedding failure is written after the track's rows, inside the same transaction.
    monkeypatch.setattr("engine.store.tracks.write_failure", explode)
    from engine.store import EmbeddingFailure

    with pytest.raises(RuntimeError):
        add(store, record(storage="managed", path=f"audio/ab/{'ab' * 32}.wav"),
            managed_file=managed_file(tmp_path, b"audio"), embedding=EmbeddingFailure(None, "no model"))
    assert store.tracks.stats()["tracks"] == 0
    assert store.db.records("count", "SELECT count(*) AS n FROM features")[0]["n"] == 0
    assert not (tmp_path / "audio" / "ab" / f"{'ab' * 32}.wav").exists()


def test_delete_removes_rows_and_managed_copy_only(tmp_path):
    store = Store(tmp_path)
    original = tmp_path / "user" / "kick.wav"
    original.parent.mkdir()
    original.write_bytes(b"user's file")
    add(store, record("aa" * 32, path=str(original)), source=Source(str(original), 11, 1.0))
    add(store, record("bb" * 32, storage="managed", path=f"audio/bb/{'bb' * 32}.wav"),
        managed_file=managed_file(tmp_path, b"copy"))
    store.tracks.delete("aa" * 32)
    store.tracks.delete("bb" * 32)
    assert original.read_bytes() == b"user's file"
    assert not (tmp_path / "audio" / "bb" / f"{'bb' * 32}.wav").exists()
    assert store.tracks.stats()["tracks"] == 0
    assert store.db.records("count", "SELECT count(*) AS n FROM sources")[0]["n"] == 0
    with pytest.raises(NotFoundError):
        store.tracks.get("aa" * 32)


def test_sweep_removes_only_orphaned_files(tmp_path):
    store = Store(tmp_path)
    add(store, record(storage="managed", path=f"audio/ab/{'ab' * 32}.wav"), managed_file=managed_file(tmp_path, b"keep"))
    orphan = tmp_path / "audio" / "cd" / "orphan.wav"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crash")
    assert store.tracks.sweep_orphans() == [orphan]
    assert (tmp_path / "audio" / "ab" / f"{'ab' * 32}.wav").exists()


def test_id_prefixes_resolve_like_git(tmp_path):
    store = Store(tmp_path)
    add(store, record("abc1230" + "0" * 57))
    add(store, record("abc1231" + "0" * 57))
    assert store.tracks.resolve_id("ABC1230") == "abc1230" + "0" * 57
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.tracks.resolve_id("abc123")
    with pytest.raises(NotFoundError, match="too short"):
        store.tracks.resolve_id("abc12")
    with pytest.raises(NotFoundError, match="no track"):
        store.tracks.resolve_id("ffffff")


def test_counts_are_kept_until_the_next_write(tmp_path, monkeypatch):
    """The library's size is asked at every /health and page view: a count is read once, and any
    write (a track added, one gone missing or deleted) is counted again."""
    store = Store(tmp_path)
    add(store, record("a" * 64))
    reads = []
    rows = store.db.rows
    monkeypatch.setattr(store.db, "rows", lambda action, *args: reads.append(action) or rows(action, *args))
    assert store.tracks.count() == 1 and store.tracks.count() == 1
    assert reads.count("count tracks") == 1
    add(store, record("b" * 64, path="/music/snare.wav"))
    assert store.tracks.count() == 2
    store.tracks.set_location("a" * 64, path="/music/kick.wav", missing=True)
    assert (store.tracks.count(), store.tracks.count(missing=True)) == (1, 1)
    store.tracks.delete("b" * 64)
    assert store.tracks.count() == 0
