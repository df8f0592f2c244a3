"""The sound map through the Library (Library.sound_map, engine/maplayout.py): made once per revision,
deterministic, kept in place as tracks come and go, made in the background for the dashboard."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import maplayout
from engine.library import Filters, Library
from tests.fixtures_audio import noise_burst, sine, write_audio

RATE = 44_100
COLUMNS = ["id", "x", "y", "filename", "kind", "category", "key", "duration", "tempo"]


def add_tones(library: Library, folder, freqs, *, seconds: float = 0.6) -> list[str]:
    """One sine per frequency (distinct bytes, so distinct tracks); their ids."""
    paths = [write_audio(folder / f"tone_{freq:g}.wav", sine(freq, seconds, RATE), RATE) for freq in freqs]
    results = library.ingest(paths)
    assert [r.status for r in results] == ["added"] * len(paths)
    return [r.track_id for r in results]


def positions(frame) -> dict[str, tuple[float, float]]:
    return {track_id: (x, y) for track_id, x, y in zip(frame["id"], frame["x"], frame["y"])}


def wait_for_map(library: Library, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while library.sound_map_state()["status"] == "running":
        assert time.monotonic() < deadline, "the sound map took too long"
        time.sleep(0.05)
    return library.sound_map_state()


# 12 tones an octave apart and more: the fake embedder puts each in its own band, so their vectors differ.
FREQS = (55, 90, 140, 220, 330, 500, 800, 1200, 1900, 3000, 4700, 7500)


def test_empty_library_has_no_map(fake_library):
    assert fake_library.sound_map() is None
    assert fake_library.sound_map_state() == {"status": "ready", "tracks": 0, "current": True, "error": None}


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_two_and_three_tracks(fake_library, tmp_path, count):
    ids = add_tones(fake_library, tmp_path, FREQS[:count])
    frame = fake_library.sound_map()
    assert list(frame.columns) == COLUMNS and sorted(frame["id"]) == sorted(ids)
    xy = frame[["x", "y"]].to_numpy()
    assert np.isfinite(xy).all() and (np.abs(xy) <= 1).all()
    if count == 1:
        assert xy.tolist() == [[0.0, 0.0]]  # a single point sits at the centre
    elif count == 2:
        assert xy[0, 1] == xy[1, 1] and sorted(xy[:, 0].tolist()) == [-1.0, 1.0]  # a horizontal segment
    else:
        assert len({tuple(p) for p in xy.tolist()}) == 3  # three distinct points
    assert set(frame["filename"]) == {f"tone_{freq:g}.wav" for freq in FREQS[:count]}
    assert (frame["duration"] > 0.5).all()


def test_same_library_same_map(fake_library, settings, fake_embedder, tmp_path):
    add_tones(fake_library, tmp_path, FREQS[:6])
    first = fake_library.sound_map()
    assert fake_library.sound_map() is first  # kept for the revision, not made again
    fake_library.close()
    with Library(settings, embedder_provider=lambda: fake_embedder) as reopened:
        again = reopened.sound_map()
    assert again.equals(first)


def test_a_new_track_is_placed_and_old_points_stay(fake_library, tmp_path):
    add_tones(fake_library, tmp_path, FREQS)
    before = positions(fake_library.sound_map())
    [new] = add_tones(fake_library, tmp_path, [2400])  # 1 of 12: below the share that lays the map out again
    after = positions(fake_library.sound_map())
    assert set(after) == set(before) | {new}
    assert all(after[track_id] == xy for track_id, xy in before.items())  # exactly where they were
    assert all(-1 <= v <= 1 for v in after[new])


def test_a_deleted_track_disappears_and_the_rest_stay(fake_library, tmp_path):
    add_tones(fake_library, tmp_path, FREQS)
    before = positions(fake_library.sound_map())
    gone = sorted(before)[5]
    fake_library.delete(gone)
    left = positions(fake_library.sound_map())
    assert set(left) == set(before) - {gone}
    assert all(left[track_id] == before[track_id] for track_id in left)


def test_many_new_tracks_lay_the_map_out_again(fake_library, tmp_path):
    add_tones(fake_library, tmp_path, FREQS[:4])
    fake_library.sound_map()
    added = add_tones(fake_library, tmp_path, [2400])  # 1 of 4: a quarter, past the share
    frame = fake_library.sound_map()
    _, layout, _ = fake_library._map
    assert layout.placed == 0 and layout.laid_out == set(frame["id"]) and added[0] in layout.laid_out


def test_filters_pick_points_of_the_same_map(fake_library, tmp_path):
    add_tones(fake_library, tmp_path, FREQS[:5])
    write_audio(tmp_path / "noise.wav", noise_burst(0.6, RATE), RATE)
    fake_library.ingest([tmp_path / "noise.wav"])
    everything = positions(fake_library.sound_map())
    kinds = set(fake_library.sound_map()["kind"].dropna())
    assert kinds  # analysed at import
    kind = sorted(kinds)[0]
    some = fake_library.sound_map(Filters(kinds=(kind,)))
    assert len(some) and (some["kind"] == kind).all()
    assert all(everything[track_id] == xy for track_id, xy in positions(some).items())
    fake_library.set_favourite(some["id"][0])
    [favourite] = fake_library.sound_map(Filters(favourite=True))["id"]
    assert favourite == some["id"][0]
    assert fake_library.sound_map(Filters(tags=("nothing-has-this",))).empty


def test_made_in_the_background(fake_library, tmp_path):
    assert fake_library.sound_map_state()["status"] == "idle"
    assert fake_library.sound_map(wait=False) is None  # nothing made yet, and nothing made by asking
    add_tones(fake_library, tmp_path, FREQS[:3])
    assert fake_library.start_sound_map()
    state = wait_for_map(fake_library)
    assert state == {"status": "ready", "tracks": 3, "current": True, "error": None}
    assert not fake_library.start_sound_map()  # up to date: nothing to do
    assert len(fake_library.sound_map(wait=False)) == 3
    add_tones(fake_library, tmp_path, FREQS[3:4])
    assert fake_library.sound_map_state()["current"] is False
    assert len(fake_library.sound_map(wait=False)) == 3  # the older map, until the new one is made
    assert fake_library.start_sound_map()
    assert wait_for_map(fake_library) == {"status": "ready", "tracks": 4, "current": True, "error": None}


def test_background_failure_is_reported(library, tmp_path):
    """The library fixture's model does not exist: the map says why instead of raising in a thread."""
    assert library.start_sound_map()
    state = wait_for_map(library)
    assert state["status"] == "error" and state["error"] and state["tracks"] is None


# -- engine/maplayout.py on synthetic vectors ----------------------------------------------------------------------

def unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_layout_rule_share_and_model():
    vectors = unit_rows(30)
    ids = [f"t{i:02d}" for i in range(30)]
    full = maplayout.update(None, model_id="m", ids=ids[:25], vectors=vectors[:25])
    assert full.placed == 0 and full.laid_out == set(ids[:25])
    # One new track and one deleted (8 % of 25): kept in place, the new one placed.
    kept = maplayout.update(full, model_id="m", ids=ids[1:26], vectors=vectors[1:26])
    assert kept.placed == 1 and kept.laid_out == full.laid_out
    assert np.array_equal(kept.coords[:24], full.coords[1:25])
    # Three new and one deleted since the full layout (16 %): laid out again.
    again = maplayout.update(kept, model_id="m", ids=ids[1:28], vectors=vectors[1:28])
    assert again.placed == 0 and again.laid_out == set(ids[1:28])
    # Another model's layout says nothing about this one's.
    other = maplayout.update(full, model_id="other", ids=ids[:25], vectors=vectors[:25])
    assert other.placed == 0 and other.model_id == "other"
    # Row order of the input does not matter to a kept layout.
    shuffled = maplayout.update(full, model_id="m", ids=ids[:25][::-1], vectors=vectors[:25][::-1])
    assert np.array_equal(shuffled.coords, full.coords[::-1])
    empty = maplayout.update(full, model_id="m", ids=[], vectors=np.zeros((0, 8), np.float32))
    assert empty.coords.shape == (0, 2)
