import numpy as np
import pytest

from engine import audio
from engine.errors import DecodeError, InputError
from tests.fixtures_audio import sine, write_audio

ALLOWED = (".wav", ".mp3", ".flac", ".m4a")


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a"])
def test_every_format_decodes_to_mono_float32(audio_dir, ext):
    decoded = audio.decode(audio_dir / "formats" / f"mix.{ext}", max_duration_s=600)
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.sample_rate == 44_100 and decoded.channels == 1
    assert decoded.container == ext
    # Lossy codecs add encoder delay/padding; 12 s within 100 ms.
    assert decoded.duration_s == pytest.approx(12.0, abs=0.1)
    assert not decoded.truncated


def test_codec_is_recorded(audio_dir):
    assert audio.decode(audio_dir / "formats" / "mix.m4a", max_duration_s=600).codec == "aac"
    assert audio.decode(audio_dir / "formats" / "mix.wav", max_duration_s=600).codec == "pcm_16"


def test_original_rate_and_channels_are_kept(audio_dir):
    stereo = audio.decode(audio_dir / "stereo44k.wav", max_duration_s=600)
    assert (stereo.sample_rate, stereo.channels) == (44_100, 2)
    hires = audio.decode(audio_dir / "hires96k24.wav", max_duration_s=600)
    assert (hires.sample_rate, hires.channels, hires.codec) == (96_000, 1, "pcm_24")


def test_stereo_is_downmixed_by_averaging(tmp_path):
    left, right = sine(300, 1), -sine(300, 1)
    path = write_audio(tmp_path / "cancel.wav", np.stack([left, right], axis=1), 44_100, subtype="FLOAT")
    decoded = audio.decode(path, max_duration_s=600)
    assert np.abs(decoded.samples).max() < 1e-6


def test_resampling_from_one_decode(audio_dir):
    decoded = audio.decode(audio_dir / "hires96k24.wav", max_duration_s=600)
    at48 = decoded.at_rate(audio.CLAP_RATE)
    at22 = decoded.at_rate(audio.FEATURE_RATE)
    assert len(at48) == pytest.approx(3 * 48_000, abs=2)
    assert len(at22) == pytest.approx(3 * 22_050, abs=2)
    assert at48.dtype == np.float32 and at22.dtype == np.float32
    assert decoded.at_rate(audio.CLAP_RATE) is at48  # computed once
    # The 1 kHz tone survives resampling: its spectrum peaks at 1 kHz.
    spectrum = np.abs(np.fft.rfft(at48))
    assert np.fft.rfftfreq(len(at48), 1 / 48_000)[spectrum.argmax()] == pytest.approx(1_000, abs=2)


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_long_files_are_truncated_to_max_duration(tmp_path, ext):
    path = write_audio(tmp_path / f"long.{ext}", sine(200, 8, 22_050), 22_050)
    decoded = audio.decode(path, max_duration_s=3)
    assert decoded.truncated
    assert decoded.analysed_s == pytest.approx(3.0, abs=1e-3)
    # An AAC container's duration includes the encoder's 1024-sample priming (46 ms here).
    assert decoded.duration_s == pytest.approx(8.0, abs=0.06)


def test_random_bytes_are_not_decodable(audio_dir):
    with pytest.raises(DecodeError) as info:
        audio.decode(audio_dir / "bad" / "random.wav", max_duration_s=600)
    assert info.value.title == "Not a decodable audio file"
    assert "random.wav" in info.value.message


def test_non_finite_samples_are_rejected(tmp_path):
    samples = sine(440, 1)
    samples[100] = np.nan
    path = write_audio(tmp_path / "nan.wav", samples, 44_100, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        audio.decode(path, max_duration_s=600)


def test_zero_length_audio_is_rejected(tmp_path):
    path = write_audio(tmp_path / "header_only.wav", np.zeros(0, dtype=np.float32), 44_100)
    with pytest.raises(InputError) as info:
        audio.decode(path, max_duration_s=600)
    assert "no audio samples" in info.value.message


def test_check_file_rejects_type_size_and_empty(audio_dir, tmp_path):
    with pytest.raises(InputError, match="not accepted"):
        audio.check_file(audio_dir / "bad" / "notes.txt", allowed_extensions=ALLOWED, max_size_bytes=10**8)
    with pytest.raises(InputError, match="empty"):
        audio.check_file(audio_dir / "bad" / "empty.wav", allowed_extensions=ALLOWED, max_size_bytes=10**8)
    with pytest.raises(InputError, match="over the") as info:
        audio.check_file(audio_dir / "sine440.wav", allowed_extensions=ALLOWED, max_size_bytes=1024)
    assert info.value.title == "File too large"
    with pytest.raises(InputError, match="no such file"):
        audio.check_file(tmp_path / "missing.wav", allowed_extensions=ALLOWED, max_size_bytes=10**8)


def test_hash_is_sha256_of_bytes(audio_dir):
    import hashlib

    path = audio_dir / "sine440.wav"
    assert audio.hash_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
