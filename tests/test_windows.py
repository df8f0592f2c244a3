import numpy as np
import pytest

from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES, WINDOW_SECONDS, make_windows

SR = CLAP_SAMPLE_RATE


def ramp(seconds: float) -> np.ndarray:
    """Samples whose value encodes their index, so we can check where windows come from."""
    n = int(round(seconds * SR))
    return np.arange(n, dtype=np.float64) / 1e7


def test_constants():
    assert (CLAP_SAMPLE_RATE, WINDOW_SECONDS, WINDOW_SAMPLES) == (48_000, 10, 480_000)


def test_short_clip_is_tiled_to_one_window():
    x = ramp(3.0)
    w = make_windows(x)
    assert w.audio.shape == (1, WINDOW_SAMPLES) and w.audio.dtype == np.float32
    assert w.starts_s == [0.0] and w.ends_s == pytest.approx([3.0])
    # tiled: the clip repeats end to end, no silence
    assert np.array_equal(w.audio[0, : len(x)], x.astype(np.float32))
    assert np.array_equal(w.audio[0, len(x) : 2 * len(x)], x.astype(np.float32))
    assert np.array_equal(w.audio[0, 3 * len(x) :], x[: WINDOW_SAMPLES - 3 * len(x)].astype(np.float32))


def test_very_short_clip():
    w = make_windows(np.array([0.5, -0.5], dtype=np.float32))
    assert w.audio.shape == (1, WINDOW_SAMPLES)
    assert w.ends_s[0] == pytest.approx(2 / SR)
    assert set(np.unique(w.audio)) == {-0.5, 0.5}


def test_exactly_ten_seconds_is_one_window():
    x = ramp(10.0)
    w = make_windows(x)
    assert len(w) == 1 and w.starts_s == [0.0] and w.ends_s == [10.0]
    assert np.array_equal(w.audio[0], x.astype(np.float32))


def test_long_track_has_end_aligned_last_window():
    x = ramp(25.0)
    w = make_windows(x)
    assert w.audio.shape == (3, WINDOW_SAMPLES)
    assert w.starts_s == [0.0, 10.0, 15.0]
    assert w.ends_s == [10.0, 20.0, 25.0]
    x32 = x.astype(np.float32)
    assert np.array_equal(w.audio[1], x32[10 * SR : 20 * SR])
    assert np.array_equal(w.audio[2], x32[-WINDOW_SAMPLES:])


def test_tail_shorter_than_one_second_is_dropped():
    w = make_windows(ramp(20.5))
    assert w.starts_s == [0.0, 10.0] and w.ends_s == [10.0, 20.0]


def test_tail_of_exactly_one_second_is_kept():
    w = make_windows(ramp(21.0))
    assert w.starts_s == [0.0, 10.0, 11.0] and w.ends_s == [10.0, 20.0, 21.0]


def test_multiple_of_ten_has_no_extra_window():
    w = make_windows(ramp(30.0))
    assert w.starts_s == [0.0, 10.0, 20.0]


def test_deterministic():
    x = np.random.default_rng(1).standard_normal(int(17.3 * SR)).astype(np.float32)
    a, b = make_windows(x), make_windows(x)
    assert np.array_equal(a.audio, b.audio) and a.starts_s == b.starts_s and a.ends_s == b.ends_s


def test_empty_and_multichannel_rejected():
    with pytest.raises(ValueError):
        make_windows(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError):
        make_windows(np.zeros((2, SR), dtype=np.float32))
