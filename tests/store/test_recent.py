"""Tracks and window sets read lately are served from memory until the next write, and never after it."""

from dataclasses import replace

import numpy as np
import pytest

from engine.store import EmbeddingWrite, Store
from engine.store.recent import Recent
from engine.store.types import Description
from tests.store.helpers import MEASUREMENTS, add, record

A, B = "aa" * 32, "bb" * 32


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path)
    add(store, record(A, filename="kick.wav"))
    add(store, record(B, filename="snare.wav"))
    return store


def counting_reads(store, monkeypatch) -> list[str]:
    """The statements the store sends to DuckDB through ``rows`` from now on."""
    sent: list[str] = []
    rows = store.db.rows

    def counted(action, sql, params=()):
        sent.append(sql)
        return rows(action, sql, params)

    monkeypatch.setattr(store.db, "rows", counted)
    return sent


def test_a_second_read_of_the_same_tracks_is_served_from_memory(store, monkeypatch):
    first = store.tracks.get_many([A, B], located=False)
    sent = counting_reads(store, monkeypatch)
    again = store.tracks.get_many([B, A], located=False)
    assert again == first and sent == []
    store.tracks.get_many([A], located=True)  # with locations: always read
    assert sent


def reanalysed(store):
    description = Description(kind="loop", kind_confidence=0.9, tempo_source=None, bars=None, key_tonic="A",
                              key_mode="minor", key_confidence=0.8, key_source="audio", name_category=None,
                              version=1)
    store.descriptions.save(A, replace(MEASUREMENTS, spectral_centroid=999.0), description)


@pytest.mark.parametrize("change, shows", [
    (lambda store: store.curation.set_favourite(A, True), lambda track: track.favourite),
    (lambda store: store.curation.add_tags(A, ["dark"]), lambda track: track.tags == ("dark",)),
    (reanalysed, lambda track: track.spectral_centroid == 999.0 and track.kind == "loop"),
    (lambda store: store.db.execute("rename", "UPDATE tracks SET filename = 'renamed.wav' WHERE id = ?", [A]),
     lambda track: track.filename == "renamed.wav"),
])
def test_any_write_shows_in_the_next_read(store, change, shows):
    assert not shows(store.tracks.get_many([A], located=False)[A])
    change(store)
    assert shows(store.tracks.get_many([A], located=False)[A])


def test_a_renamed_track_shows_its_new_name(store):
    assert store.tracks.get_many([A], located=False)[A].filename == "kick.wav"
    store.db.execute("rename", "UPDATE tracks SET filename = 'renamed.wav' WHERE id = ?", [A])
    assert store.tracks.get_many([A], located=False)[A].filename == "renamed.wav"


def test_what_a_rolled_back_transaction_showed_is_not_kept(store):
    with pytest.raises(RuntimeError), store.db.transaction("try") as conn:
        conn.execute("UPDATE tracks SET filename = 'uncommitted.wav' WHERE id = ?", [A])
        assert store.tracks.get_many([A], located=False)[A].filename == "uncommitted.wav"
        raise RuntimeError("undo")
    assert store.tracks.get_many([A], located=False)[A].filename == "kick.wav"


def test_a_read_that_a_write_overtook_is_not_kept(store):
    recent = Recent(store.db, size=10)
    found, writes = recent.take(["x"])
    assert found == {}
    store.db.execute("touch", "UPDATE tracks SET filename = filename WHERE id = ?", [A])
    recent.keep({"x": "read before the write ended"}, writes)
    assert recent.take(["x"])[0] == {}
    found, writes = recent.take(["x"])
    recent.keep({"x": "read after"}, writes)
    assert recent.take(["x"])[0] == {"x": "read after"}


def test_the_least_recently_used_go_first(store):
    recent = Recent(store.db, size=2)
    _, writes = recent.take([])
    recent.keep({"a": 1, "b": 2}, writes)
    recent.take(["a"])  # a used again: b is now the oldest
    recent.keep({"c": 3}, writes)
    assert recent.take(["a", "b", "c"])[0] == {"a": 1, "c": 3}


def embedding(value: float, windows: int = 2) -> EmbeddingWrite:
    rows = np.full((windows, 4), value, dtype=np.float32)
    return EmbeddingWrite("m", 1, rows[0], rows, [10.0 * i for i in range(windows)],
                          [10.0 * i + 10 for i in range(windows)])


def test_window_sets_come_from_memory_until_they_are_replaced(store, monkeypatch):
    store.embeddings.save(A, embedding(0.5))
    first = store.embeddings.windows("m", [A, B])
    assert list(first) == [A]
    sent = counting_reads(store, monkeypatch)
    assert store.embeddings.windows("m", [A])[A] is first[A] and sent == []
    store.embeddings.save(A, embedding(0.25, windows=3))
    again = store.embeddings.windows("m", [A])[A]
    assert sent and again.embeddings.shape == (3, 4) and float(again.embeddings[0, 0]) == 0.25
    assert store.embeddings.windows("m", [A])[A].starts_s == [0.0, 10.0, 20.0]
