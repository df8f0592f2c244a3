import numpy as np
import pytest

from engine.audio import FEATURE_RATE, decode
from engine.features import compute_features, spectral_centroid, zero_crossing_rate
from tests.fixtures_audio import click_track, sine, white_noise

RATE = FEATURE_RATE


def test_sine_centroid_is_its_frequency():
    features = compute_features(samples=sine(440, 5, RATE), sample_rate=RATE)
    assert features.spectral_centroid_hz == pytest.approx(440, rel=0.02)
    assert features.duration_s == pytest.approx(5.0)
    assert features.tempo_bpm is None  # a steady tone has no pulse


def test_sine_rms_and_zero_crossings_have_closed_forms():
    features = compute_features(samples=sine(440, 5, RATE, amplitude=0.5), sample_rate=RATE)
    assert features.rms_energy == pytest.approx(0.5 / np.sqrt(2), rel=0.03)
    # Two crossings per period.
    assert features.zero_crossing_rate == pytest.approx(2 * 440 / RATE, rel=0.05)


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_click_track_tempo_within_two_percent(bpm):
    features = compute_features(samples=click_track(bpm, 20, RATE), sample_rate=RATE)
    assert features.tempo_bpm == pytest.approx(bpm, rel=0.02)


def test_silence_has_no_tempo_and_no_centroid():
    features = compute_features(samples=np.zeros(RATE * 3, dtype=np.float32), sample_rate=RATE)
    assert features.tempo_bpm is None
    assert features.spectral_centroid_hz == 0.0
    assert features.rms_energy == 0.0


def test_white_noise_is_bright_and_pulseless():
    features = compute_features(samples=white_noise(5, RATE), sample_rate=RATE)
    assert features.tempo_bpm is None
    assert features.spectral_centroid_hz > 4_000  # flat spectrum: centroid near a quarter of the rate
    assert features.zero_crossing_rate == pytest.approx(0.5, abs=0.03)


def test_silent_tail_does_not_drag_the_centroid():
    tone = sine(1_000, 1, RATE)
    with_tail = np.concatenate([tone, np.zeros(RATE * 4, dtype=np.float32)])
    assert compute_features(samples=with_tail, sample_rate=RATE).spectral_centroid_hz == pytest.approx(
        1_000, rel=0.05
    )


def test_functions_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        zero_crossing_rate(sine(440, 1, RATE))  # type: ignore[misc]
    with pytest.raises(TypeError):
        spectral_centroid(sine(440, 1, RATE), RATE)  # type: ignore[misc]
    assert spectral_centroid(samples=sine(880, 1, RATE), sample_rate=RATE) == pytest.approx(880, rel=0.02)


def test_blockwise_framing_matches_one_big_stft(monkeypatch):
    """Working in blocks of frames is an optimisation, not an approximation."""
    import librosa

    from engine import frames

    samples = click_track(120, 8, RATE) + sine(300, 8, RATE, amplitude=0.2)
    monkeypatch.setattr(frames, "BLOCK_FRAMES", 37)  # many blocks, odd size
    pieces = []
    blocked = frames.frame_descriptors(samples=samples, sample_rate=RATE,
                                       on_magnitude=lambda block, first: pieces.append((first, block.copy())))
    magnitude = np.abs(librosa.stft(samples, n_fft=frames.N_FFT, hop_length=frames.HOP, pad_mode="constant"))
    # The hook hears every frame's magnitude once, in order, with the block's first frame index.
    assert [first for first, _ in pieces] == list(range(0, magnitude.shape[1], 37))
    np.testing.assert_allclose(np.concatenate([block for _, block in pieces], axis=1), magnitude,
                               rtol=1e-4, atol=1e-4)
    whole = librosa.feature.spectral_centroid(S=magnitude, sr=RATE)[0]
    np.testing.assert_allclose(blocked["centroid"], whole, rtol=1e-4, atol=1e-3)
    rms = librosa.feature.rms(y=samples, frame_length=frames.N_FFT, hop_length=frames.HOP, pad_mode="constant")[0]
    # librosa averages over the whole padded frame; ours over the samples each frame really holds.
    centres = np.arange(len(rms)) * frames.HOP
    support = np.minimum(centres + frames.N_FFT // 2, len(samples)) - np.maximum(centres - frames.N_FFT // 2, 0)
    np.testing.assert_array_equal(blocked["support"], support)
    assert (support < frames.N_FFT).sum() == 4  # only the two frames at either end reach past the signal
    np.testing.assert_allclose(blocked["rms"], rms * np.sqrt(frames.N_FFT / support), rtol=1e-4, atol=1e-7)


def test_features_agree_across_formats(audio_dir):
    """The same signal as wav, flac, mp3 and m4a gives the same descriptors.

    Tolerances: flac is lossless, so it matches wav to float precision. mp3
    and AAC drop content above roughly 16 kHz and smear transients, which
    moves the centroid by a few percent. The zero-crossing rate is the most
    fragile: between clicks this signal is a quiet tone, and codec noise near
    each zero crossing adds sign changes (mp3 measured +11 %), so lossy
    formats get 15 %. Tempo comes from onset timing, which lossy codecs shift
    by well under one frame.
    """
    results = {}
    for ext in ("wav", "flac", "mp3", "m4a"):
        decoded = decode(audio_dir / "formats" / f"mix.{ext}", max_duration_s=600)
        results[ext] = compute_features(samples=decoded.at_rate(RATE), sample_rate=RATE)
    reference = results["wav"]
    assert reference.tempo_bpm == pytest.approx(120, rel=0.02)
    assert results["flac"].spectral_centroid_hz == pytest.approx(reference.spectral_centroid_hz, rel=1e-3)
    for ext in ("flac", "mp3", "m4a"):
        other = results[ext]
        assert other.tempo_bpm == pytest.approx(reference.tempo_bpm, rel=0.02), ext
        assert other.spectral_centroid_hz == pytest.approx(reference.spectral_centroid_hz, rel=0.10), ext
        zcr_tolerance = 1e-3 if ext == "flac" else 0.15
        assert other.zero_crossing_rate == pytest.approx(reference.zero_crossing_rate, rel=zcr_tolerance), ext
        assert other.rms_energy == pytest.approx(reference.rms_energy, rel=0.05), ext
        assert other.duration_s == pytest.approx(reference.duration_s, abs=0.1), ext
