"""Real sample libraries: very short one-shots and the formats users have, added end to end."""

import warnings

import numpy as np
import pytest
import soundfile as sf

from engine.audio import CLAP_RATE, FEATURE_RATE, MIN_FRAMES
from engine.features import compute_features
from engine.vectors import embed_track
from engine.windows import WINDOW_SAMPLES, make_windows
from tests.fixtures_audio import click, noise_burst, sine, single_cycle, write_audio, write_riff
from tests.fixtures_fake import FakeEmbedder

RATE = 44_100

# name -> (samples, rate): the shortest sounds real libraries hold.
ONE_SHOTS = {
    "single_cycle_64.wav": (single_cycle(64), RATE),  # 1.45 ms
    "shaker_30ms.wav": (noise_burst(0.030, RATE, seed=1), RATE),
    "hihat_90ms.wav": (noise_burst(0.090, RATE, decay_per_s=40, seed=2), RATE),
    "click_2ms.wav": (click(0.002, RATE), RATE),
    "min_frames_8k.wav": (single_cycle(MIN_FRAMES), 8_000),  # 4 ms; 88 samples at 22,050 Hz
    "min_frames_192k.wav": (single_cycle(MIN_FRAMES), 192_000),  # 0.17 ms; 4 samples at 22,050 Hz
}


def test_short_one_shots_are_added_measured_and_embedded(fake_library, fake_embedder, tmp_path):
    paths = [write_audio(tmp_path / name, samples, rate) for name, (samples, rate) in ONE_SHOTS.items()]
    results = fake_library.ingest(paths)
    by_name = {r.source.rsplit("/", 1)[-1]: r for r in results}
    for name, (samples, rate) in ONE_SHOTS.items():
        result = by_name[name]
        assert result.status == "added", (name, result.error)
        assert result.note is None, (name, result.note)  # embedded, not pending
        track = fake_library.track(result.track_id)
        assert abs(track.duration - len(samples) / rate) <= 1 / rate, name
        assert (track.sample_rate, track.format, track.codec) == (rate, "wav", "pcm_16"), name
        assert track.tempo is None, name
        for value in (track.spectral_centroid, track.zero_crossing_rate, track.rms_energy):
            assert value is not None and np.isfinite(value), name
        assert track.rms_energy > 0, name
        fake_library.search_like(track.id, limit=3)  # raises while a track has no embedding
    assert fake_embedder.audio_calls >= 1


def test_short_one_shots_measure_what_they_hold():
    """RMS and zero crossings of a clip shorter than one frame are its own, not diluted by padding."""
    cycle = single_cycle(32, amplitude=0.8)  # what 64 samples at 44.1 kHz become at 22,050 Hz
    features = compute_features(samples=cycle, sample_rate=FEATURE_RATE)
    assert features.rms_energy == pytest.approx(0.8 / np.sqrt(2), rel=1e-3)
    assert features.duration_s == pytest.approx(32 / FEATURE_RATE)
    noise = noise_burst(0.030, FEATURE_RATE, seed=3)
    features = compute_features(samples=noise, sample_rate=FEATURE_RATE)
    assert features.rms_energy == pytest.approx(0.3, rel=0.1)
    assert features.zero_crossing_rate == pytest.approx(0.5, abs=0.05)  # white noise: every other pair
    assert features.spectral_centroid_hz > 3_000  # flat spectrum


@pytest.mark.parametrize("frames", [32, 33, 64, 88, 511, 512, 513, 2047, 2048, 2205])
def test_features_are_defined_from_32_samples(frames):
    samples = noise_burst(frames / FEATURE_RATE, FEATURE_RATE, decay_per_s=30, seed=frames)
    assert len(samples) == frames
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # librosa's "n_fft too large" and numpy's empty-mean warnings included
        features = compute_features(samples=samples, sample_rate=FEATURE_RATE)
    assert features.tempo_bpm is None
    values = (features.duration_s, features.spectral_centroid_hz, features.zero_crossing_rate, features.rms_energy)
    assert all(np.isfinite(v) for v in values)
    assert features.rms_energy > 0 and features.spectral_centroid_hz > 0


@pytest.mark.parametrize(("frames", "rate"), [(32, 44_100), (32, 48_000), (64, 44_100), (32, 8_000)])
def test_very_short_clips_window_and_embed(frames, rate):
    import soxr

    clip = single_cycle(frames)
    at48 = soxr.resample(clip, rate, CLAP_RATE).astype(np.float32) if rate != CLAP_RATE else clip
    windows = make_windows(at48)
    assert windows.audio.shape == (1, WINDOW_SAMPLES)
    assert windows.ends_s == [pytest.approx(len(at48) / CLAP_RATE)]
    assert np.isfinite(windows.audio).all() and np.abs(windows.audio).max() > 0.5  # tiled, not silence
    vectors = embed_track(at48, FakeEmbedder().embed_audio)
    assert vectors.track.shape == (16,) and np.isfinite(vectors.track).all()
    assert np.linalg.norm(vectors.track) == pytest.approx(1.0, abs=1e-5)


# name -> (write keyword arguments, rate, channels, expected format, expected codec)
FORMATS = {
    "pad.aiff": ({"format": "AIFF"}, 44_100, 2, "aiff", "pcm_16"),
    "pad.aif": ({"format": "AIFF", "subtype": "PCM_24"}, 48_000, 1, "aiff", "pcm_24"),
    "loop.ogg": ({"format": "OGG", "subtype": "VORBIS"}, 44_100, 2, "ogg", "vorbis"),
    "vox.opus": ({"format": "OGG", "subtype": "OPUS"}, 48_000, 1, "opus", "opus"),
    "surround.wav": ({"format": "WAVEX", "subtype": "PCM_24"}, 48_000, 3, "wav", "pcm_24"),
    "long.wav": ({"format": "RF64", "subtype": "FLOAT"}, 44_100, 1, "wav", "float"),
}


def test_aiff_ogg_opus_and_extensible_wav_are_added(library, tmp_path):
    seconds = 1.5
    for name, (kwargs, rate, channels, _, _) in FORMATS.items():
        tone = np.stack([sine(300 + 100 * c, seconds, rate) for c in range(channels)], axis=1)
        write_audio(tmp_path / "packs" / name, tone if channels > 1 else tone[:, 0], rate, **kwargs)
    # WAVEX is what libsndfile writes for WAVE_FORMAT_EXTENSIBLE; check the header says so.
    assert (tmp_path / "packs" / "surround.wav").read_bytes()[20:22] == b"\xfe\xff"
    results = library.ingest([tmp_path / "packs"])
    assert len(results) == len(FORMATS)
    for result in results:
        name = result.source.rsplit("/", 1)[-1]
        _, rate, channels, container, codec = FORMATS[name]
        assert result.status == "added", (name, result.error)
        track = library.track(result.track_id)
        assert (track.format, track.codec) == (container, codec), name
        assert (track.sample_rate, track.channels) == (rate, channels), name
        # Vorbis and Opus streams carry exact lengths (granule positions), so even lossy files are exact here.
        assert track.duration == pytest.approx(seconds, abs=1e-3), name
        assert track.spectral_centroid == pytest.approx(300 + 50 * (channels - 1), rel=0.35), name


def test_short_lossy_one_shots_are_added(library, tmp_path):
    """A 30 ms shaker as Ogg Vorbis and Opus, a 90 ms hat as AIFF: added with their true length."""
    paths = [
        write_audio(tmp_path / "shaker.ogg", noise_burst(0.030, RATE), RATE, format="OGG"),
        write_audio(tmp_path / "shaker.opus", noise_burst(0.030, 48_000), 48_000),
        write_audio(tmp_path / "hat.aif", noise_burst(0.090, RATE, decay_per_s=40), RATE),
        write_audio(tmp_path / "cycle.flac", single_cycle(64), RATE),
    ]
    for result, seconds in zip(library.ingest(paths), (0.030, 0.030, 0.090, 64 / RATE)):
        assert result.status == "added", (result.source, result.error)
        track = library.track(result.track_id)
        assert track.duration == pytest.approx(seconds, abs=1 / track.sample_rate), result.source
        assert track.tempo is None


def test_vorbis_in_a_wav_header_fails_naming_the_codec(library, tmp_path):
    ogg = write_audio(tmp_path / "src" / "real.ogg", noise_burst(0.4), RATE, format="OGG")
    wrapped = write_riff(tmp_path / "Snare 03.wav", format_tag=0x674F, data=ogg.read_bytes())
    [result] = library.ingest([wrapped])
    assert result.status == "failed"
    assert "Unsupported codec" in result.error
    assert "Snare 03.wav" in result.error and "format tag 0x674F (Ogg Vorbis inside a WAV header)" in result.error
    assert "Convert it to wav or flac" in result.error
    assert "could not be read as audio" not in result.error


def test_default_extensions_cover_the_formats_users_have():
    from engine.config import Settings

    default = Settings.model_fields["allowed_extensions"].default
    assert default == (".wav", ".aif", ".aiff", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
    assert sf.check_format("OGG", "OPUS") and sf.check_format("AIFF", "PCM_24")
