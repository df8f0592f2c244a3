"""Analytics on what the samples are: kinds, keys and categories, counted in DuckDB on a real library
and checked against what each track says it is."""

from collections import Counter

import numpy as np
import pytest

from engine import categories
from engine.analytics import NOT_ANALYSED, camelot_order
from engine.keys import MODES, TONICS, camelot
from engine.library import KINDS, Filters
from tests import fixtures_music as music
from tests.fixtures_audio import write_audio

RATE = music.RATE


def thump(seconds=0.4):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.9 * np.sin(2 * np.pi * 50 * t) * np.exp(-t / 0.08)).astype(np.float32)


@pytest.fixture
def described(fake_library, tmp_path):
    """A library of one-shots, loops and keyed progressions (no long recording), every track described."""
    root = tmp_path / "pack"
    write_audio(root / "One Shots" / "thump.wav", thump(), RATE)
    write_audio(root / "One Shots" / "Kick_01.wav", music.kick(), RATE)
    write_audio(root / "One Shots" / "Snare_01.wav", music.snare(), RATE)
    write_audio(root / "Loops" / "groove_120.wav", music.render_loop("backbeat", 120, 2), RATE)
    write_audio(root / "Loops" / "groove_90.wav", music.render_loop("backbeat", 90, 1), RATE)
    write_audio(root / "Keys" / "Progression_Fm.wav", music.render_progression("F", "i-iv-v-i", "piano"), RATE)
    write_audio(root / "Keys" / "Progression_C.wav", music.render_progression("C", "I-vi-IV-V-I", "organ"), RATE)
    write_audio(root / "Keys" / "Strings_Fm.wav", music.render_progression("F", "i-VI-III-VII-i", "strings"), RATE)
    results = fake_library.ingest([root])
    assert [r.status for r in results] == ["added"] * 8
    return fake_library


def stored(library):
    return library.tracks(limit=1000)


def test_kinds_count_every_track_and_every_kind(described):
    tracks = stored(described)
    kinds = described.distributions()["kinds"]
    # Every kind in vocabulary order, an absent one (no long recording was ingested) as 0.
    assert list(kinds["kind"]) == list(KINDS)
    counts = dict(zip(kinds["kind"], kinds["count"]))
    assert counts == {kind: Counter(t.kind for t in tracks)[kind] for kind in KINDS}
    assert counts["long"] == 0 and counts["one-shot"] >= 3 and counts["loop"] >= 2
    assert sum(counts.values()) == len(tracks) == 8


def test_tracks_without_a_description_are_counted_as_not_analysed(described):
    before = dict(described.distributions()["kinds"].values.tolist())
    forgotten = next(t for t in stored(described) if t.kind == "loop")
    described._store.db.execute("forget a description", "DELETE FROM descriptions WHERE track_id = ?", [forgotten.id])
    kinds = described.distributions()["kinds"]
    assert list(kinds["kind"]) == [*KINDS, NOT_ANALYSED]
    after = dict(kinds.values.tolist())
    assert after == {**before, "loop": before["loop"] - 1, NOT_ANALYSED: 1}


def test_keys_are_the_whole_camelot_wheel(described):
    tracks = stored(described)
    keys = described.distributions()["keys"]
    assert len(keys) == 24
    codes = [f"{n}{letter}" for n in range(1, 13) for letter in "AB"]
    assert list(keys["camelot"]) == codes  # round the wheel, each minor beside its relative major
    assert list(zip(keys["tonic"], keys["mode"])) == camelot_order()
    assert set(zip(keys["tonic"], keys["mode"])) == {(tonic, mode) for tonic in TONICS for mode in MODES}
    for tonic, mode, label, code in zip(keys["tonic"], keys["mode"], keys["key"], keys["camelot"]):
        assert label == f"{tonic} {mode}" and code == camelot(tonic, mode)
    expected = Counter(t.key for t in tracks if t.key_tonic and t.key_mode)
    counted = {label: n for label, n in zip(keys["key"], keys["count"]) if n}
    assert counted == dict(expected)
    # The two F minor progressions and the C major one were heard (or named) as such.
    assert counted.get("F minor", 0) >= 2 and counted.get("C major", 0) >= 1


def test_keys_leave_out_a_bare_note(described):
    before = described.distributions()["keys"]["count"].sum()
    keyed = next(t for t in stored(described) if t.key_mode)
    described._store.db.execute("forget a mode", "UPDATE descriptions SET key_mode = NULL WHERE track_id = ?",
                                [keyed.id])
    assert described.track(keyed.id).key == keyed.key_tonic  # a bare note now
    assert described.distributions()["keys"]["count"].sum() == before - 1


def test_categories_count_each_tracks_best_category(described):
    tracks = stored(described)
    frame = described.distributions()["categories"]
    expected = Counter(t.category for t in tracks if t.category)
    assert sum(expected.values()) == len(tracks)  # the fake model scored every track
    assert dict(zip(frame["category"], frame["count"])) == dict(expected)
    assert list(frame["count"]) == sorted(frame["count"], reverse=True) and (frame["count"] > 0).all()
    # Ties in vocabulary order.
    for (a, n), (b, m) in zip(frame.values.tolist(), frame.values.tolist()[1:]):
        assert n > m or categories.NAMES.index(a) < categories.NAMES.index(b)


def test_categories_leave_out_uncategorised_tracks_and_other_models(described):
    tracks = stored(described)
    dropped = tracks[0]
    db = described._store.db
    db.execute("forget categories", "DELETE FROM track_categories WHERE track_id = ?", [dropped.id])
    frame = described.distributions()["categories"]
    expected = Counter(t.category for t in tracks[1:])
    assert dict(zip(frame["category"], frame["count"])) == dict(expected)
    assert frame["count"].sum() == len(tracks) - 1
    # Reads show one model's categories: another model's rows are not counted.
    db.execute("choose another model", "UPDATE library_state SET value = 'another-model' WHERE key = 'category_model'")
    assert described.distributions()["categories"].empty
    assert described.distributions()["kinds"]["count"].sum() == len(tracks)  # the rest is unaffected


def test_distributions_of_a_selection_count_only_its_tracks(described):
    """Analytics shows only the chosen kinds, keys or categories: every chart counts the same tracks."""
    library = described
    everything = library.distributions()
    loops = library.distributions(Filters(kinds=("loop",)))
    expected = library.count(Filters(kinds=("loop",)))
    assert 0 < expected < library.count()
    assert int(loops["duration"]["count"].sum()) == expected
    assert dict(zip(loops["kinds"]["kind"], loops["kinds"]["count"]))["loop"] == expected
    assert int(loops["kinds"]["count"].sum()) == expected
    assert int(loops["centroid"]["count"].sum()) <= expected < int(everything["centroid"]["count"].sum())
    keyed = library.distributions(Filters(key="F minor"))
    assert int(keyed["keys"]["count"].sum()) == library.count(Filters(key="F minor"))
    assert library.distributions(Filters(kinds=("long",))) is None
