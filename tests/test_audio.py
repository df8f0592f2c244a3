import numpy as np
import pytest

from engine import audio, headers
from engine.errors import DecodeError, InputError
from tests.fixtures_audio import noise_burst, sine, single_cycle, write_audio, write_riff

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


@pytest.mark.parametrize(
    ("major", "subtype", "container", "codec"),
    [
        ("WAV", "PCM_16", "wav", "pcm_16"),
        ("WAVEX", "PCM_24", "wav", "pcm_24"),
        ("RF64", "FLOAT", "wav", "float"),
        ("W64", "PCM_16", "w64", "pcm_16"),
        ("AIFF", "PCM_16", "aiff", "pcm_16"),
        ("AIFF", "ULAW", "aiff", "ulaw"),
        ("FLAC", "PCM_24", "flac", "pcm_24"),
        ("MP3", "MPEG_LAYER_III", "mp3", "mpeg_layer_iii"),
        ("OGG", "VORBIS", "ogg", "vorbis"),
        ("OGG", "OPUS", "opus", "opus"),
        ("CAF", "ALAC_16", "caf", "alac_16"),
    ],
)
def test_container_and_codec_names(major, subtype, container, codec):
    assert audio.container_and_codec(major_format=major, subtype=subtype) == (container, codec)


@pytest.mark.parametrize(
    ("name", "kwargs", "rate", "container", "codec"),
    [
        ("tone.aiff", {"format": "AIFF"}, 44_100, "aiff", "pcm_16"),
        ("tone.aif", {"format": "AIFF", "subtype": "FLOAT"}, 44_100, "aiff", "float"),
        ("tone.ogg", {"format": "OGG", "subtype": "VORBIS"}, 44_100, "ogg", "vorbis"),
        ("tone.opus", {"format": "OGG", "subtype": "OPUS"}, 48_000, "opus", "opus"),
        ("tone_ex.wav", {"format": "WAVEX", "subtype": "PCM_24"}, 96_000, "wav", "pcm_24"),
        ("tone.w64", {"format": "W64"}, 44_100, "w64", "pcm_16"),
    ],
)
def test_more_formats_decode_with_their_names(tmp_path, name, kwargs, rate, container, codec):
    path = write_audio(tmp_path / name, sine(1_000, 1.5, rate), rate, **kwargs)
    decoded = audio.decode(path, max_duration_s=600)
    assert (decoded.container, decoded.codec, decoded.sample_rate, decoded.channels) == (container, codec, rate, 1)
    assert decoded.duration_s == pytest.approx(1.5, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(decoded.samples))
    assert np.fft.rfftfreq(len(decoded.samples), 1 / rate)[spectrum.argmax()] == pytest.approx(1_000, abs=2)


@pytest.mark.parametrize(("frames", "rate"), [(32, 44_100), (64, 44_100), (32, 8_000), (32, 192_000)])
def test_anything_from_32_frames_decodes(tmp_path, frames, rate):
    path = write_audio(tmp_path / f"cycle{frames}_{rate}.wav", single_cycle(frames), rate, subtype="FLOAT")
    decoded = audio.decode(path, max_duration_s=600)
    assert len(decoded.samples) == frames and decoded.duration_s == pytest.approx(frames / rate)
    np.testing.assert_allclose(decoded.samples, single_cycle(frames), atol=1e-7)


@pytest.mark.parametrize(("frames", "rate"), [(1, 44_100), (31, 44_100), (31, 8_000)])
def test_fewer_than_32_frames_is_too_short(tmp_path, frames, rate):
    path = write_audio(tmp_path / "stub.wav", single_cycle(frames), rate)
    with pytest.raises(InputError) as info:
        audio.decode(path, max_duration_s=600)
    assert info.value.title == "Audio too short"
    message = info.value.message
    assert "stub.wav" in message and f"{frames} frame" in message and "32 frames" in message
    assert f"{frames / rate * 1000:.2f} ms" in message


@pytest.mark.parametrize(("frames", "rate"), [(32, 44_100), (32, 8_000), (64, 44_100), (88, 44_100)])
def test_very_short_arrays_resample_to_both_rates(tmp_path, frames, rate):
    path = write_audio(tmp_path / "short.wav", single_cycle(frames), rate, subtype="FLOAT")
    decoded = audio.decode(path, max_duration_s=600)
    for target in (audio.CLAP_RATE, audio.FEATURE_RATE):
        resampled = decoded.at_rate(target)
        assert resampled.dtype == np.float32 and np.isfinite(resampled).all()
        assert abs(len(resampled) - frames * target / rate) <= 1


def test_vorbis_inside_a_wav_header_is_an_unsupported_codec(tmp_path):
    ogg = write_audio(tmp_path / "real.ogg", noise_burst(0.5), 44_100, format="OGG")
    path = write_riff(tmp_path / "Kick 01.wav", format_tag=0x674F, data=ogg.read_bytes())
    with pytest.raises(DecodeError) as info:
        audio.decode(path, max_duration_s=600)
    error = info.value
    assert error.title == "Unsupported codec"
    assert "Kick 01.wav" in error.message
    assert "format tag 0x674F (Ogg Vorbis inside a WAV header)" in error.message
    assert "wav or flac" in error.hint


def test_unknown_wav_and_aifc_codecs_are_named(tmp_path):
    unknown = write_riff(tmp_path / "odd.wav", format_tag=0x1234, data=b"\x01\x02" * 500)
    with pytest.raises(DecodeError, match="format tag 0x1234") as info:
        audio.decode(unknown, max_duration_s=600)
    assert info.value.title == "Unsupported codec"
    # WAVE_FORMAT_EXTENSIBLE: the codec is the SubFormat GUID's first two bytes (here Ogg Vorbis, 0x674F).
    guid = bytes.fromhex("4f670000" "0000" "1000" "800000aa00389b71")
    extension = (16).to_bytes(2, "little") + (4).to_bytes(4, "little") + guid
    wrapped = write_riff(tmp_path / "ext.wav", format_tag=0xFFFE, data=bytes(2000), extension=extension)
    with pytest.raises(DecodeError, match=r"sub-format 0x674F \(Ogg Vorbis inside a WAV header\)"):
        audio.decode(wrapped, max_duration_s=600)
    # An AIFF-C whose compression type no decoder knows.
    aiff_float = write_audio(tmp_path / "f.aiff", sine(300, 0.2), 44_100, format="AIFF", subtype="FLOAT")
    aifc = bytearray(aiff_float.read_bytes())
    at = aifc.index(b"FL32")
    aifc[at : at + 4] = b"QDM2"
    (tmp_path / "qdm2.aiff").write_bytes(bytes(aifc))
    with pytest.raises(DecodeError, match=r"compression type 'QDM2' \(QDesign Music 2\)") as info:
        audio.decode(tmp_path / "qdm2.aiff", max_duration_s=600)
    assert info.value.title == "Unsupported codec"


def test_a_damaged_wav_of_a_known_codec_is_not_called_unsupported(tmp_path):
    path = write_riff(tmp_path / "pcm.wav", format_tag=0x0001, data=bytes(1000))
    raw = bytearray(path.read_bytes())
    raw[22:24] = (0).to_bytes(2, "little")  # zero channels: libsndfile refuses the header
    path.write_bytes(bytes(raw))
    with pytest.raises(DecodeError) as info:
        audio.decode(path, max_duration_s=600)
    assert info.value.title == "Not a decodable audio file"
    assert headers.declared_codec(path).libsndfile_reads


def test_ffmpeg_reads_a_wav_codec_libsndfile_lacks(tmp_path):
    """MPEG Layer 2 in a WAV (format tag 0x0050): libsndfile refuses it, FFmpeg decodes it."""
    import av
    import soundfile as sf

    path = tmp_path / "mp2_in.wav"
    tone = sine(440, 1.0)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("mp2", rate=44_100, layout="mono")
        for start in range(0, len(tone), 1152):
            pcm = (tone[None, start : start + 1152] * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = 44_100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert headers.declared_codec(path) == headers.DeclaredCodec("wav", "format tag 0x0050", "MPEG Layer 1/2", False)
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path))
    decoded = audio.decode(path, max_duration_s=600)
    assert (decoded.container, decoded.codec, decoded.sample_rate, decoded.channels) == (
        "wav", "mpeg_layer_ii", 44_100, 1)
    assert decoded.analysed_s == pytest.approx(1.0, abs=0.05)  # plus the encoder's delay
    spectrum = np.abs(np.fft.rfft(decoded.samples))
    assert np.fft.rfftfreq(len(decoded.samples), 1 / 44_100)[spectrum.argmax()] == pytest.approx(440, abs=2)


def test_flac_in_ogg_is_read_by_ffmpeg(tmp_path):
    """libsndfile 1.2.2 cannot open FLAC in Ogg (python-soundfile #424); FFmpeg can."""
    import av

    path = tmp_path / "pad.ogg"
    tone = (sine(440, 0.5) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("flac", rate=44_100, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            if packet.size:  # the encoder's last packet is an empty header update the Ogg muxer refuses
                container.mux(packet)
    assert headers.declared_codec(path) == headers.DeclaredCodec("ogg", "codec 'FLAC'", "FLAC", False)
    decoded = audio.decode(path, max_duration_s=600)
    assert (decoded.container, decoded.codec, decoded.sample_rate, len(decoded.samples)) == ("ogg", "flac", 44_100,
                                                                                           len(tone))
    np.testing.assert_allclose(decoded.samples, tone / 32768, atol=1e-4)


def test_declared_codec_reads_only_wav_aiff_and_ogg_headers(tmp_path, audio_dir):
    assert headers.declared_codec(audio_dir / "sine440.wav") == headers.DeclaredCodec("wav", "format tag 0x0001",
                                                                                      "PCM", True)
    assert headers.declared_codec(audio_dir / "formats" / "mix.flac") is None
    assert headers.declared_codec(audio_dir / "bad" / "random.wav") is None
    assert headers.declared_codec(audio_dir / "bad" / "empty.wav") is None
    aiff = write_audio(tmp_path / "a.aiff", sine(300, 0.2), 44_100, format="AIFF")
    assert headers.declared_codec(aiff).libsndfile_reads
    ogg = write_audio(tmp_path / "a.ogg", sine(300, 0.2), 44_100, format="OGG")
    assert headers.declared_codec(ogg) == headers.DeclaredCodec("ogg", "codec 'vorbis'", "Vorbis", True)
    opus = write_audio(tmp_path / "a.opus", sine(300, 0.2, 48_000), 48_000)
    assert headers.declared_codec(opus).name == "Opus"
