"""Broken, odd and hostile files: each ends as added or failed with a specific reason."""

import numpy as np
import pytest
import soundfile as sf

from engine.config import Settings
from engine.library import Library
from tests.fixtures_audio import encode_m4a, sine, single_cycle, white_noise, write_audio, write_riff

RATE = 44_100


def _corrupt_corpus(root):
    """name -> (path, expected status, a phrase the reason must contain or None)."""
    cases = {}
    root.mkdir(parents=True)

    def case(name, expected, phrase=None):
        cases[name] = (root / name, expected, phrase)
        return root / name

    rng = np.random.default_rng(5)
    for ext in ("wav", "mp3", "flac", "m4a", "aiff", "ogg", "opus"):
        case(f"random.{ext}", "failed", "Not a decodable audio file").write_bytes(rng.bytes(40_000))
    case("zero.wav", "failed", "Empty file").write_bytes(b"")
    sf.write(str(case("header_only.wav", "failed", "no audio samples")), np.zeros(0, np.float32), RATE)
    # A wav whose data chunk claims ten times the bytes that follow.
    liar = case("lying_header.wav", "added")
    sf.write(str(liar), sine(300, 1), RATE, subtype="PCM_16")
    raw = bytearray(liar.read_bytes())
    data_at = raw.index(b"data")
    size = int.from_bytes(raw[data_at + 4 : data_at + 8], "little")
    raw[data_at + 4 : data_at + 8] = (size * 10).to_bytes(4, "little")
    liar.write_bytes(bytes(raw))
    # Truncated downloads: the first 30 % of a longer file.
    # mpg123 resyncs and keeps what it can; libsndfile's FLAC decoder and
    # FFmpeg's MP4 demuxer (whose index sits at the end) refuse the file.
    for ext, expected, phrase in (("mp3", "added", None), ("flac", "failed", "Not a decodable audio file"),
                                  ("m4a", "failed", "Not a decodable audio file")):
        full = write_audio(root / "full" / f"song.{ext}", sine(220, 6) + white_noise(6) * 0.1, RATE)
        data = full.read_bytes()
        case(f"truncated.{ext}", expected, phrase).write_bytes(data[: len(data) * 3 // 10])
    # Mislabelled containers are read by what they are, and recorded as such.
    sf.write(str(root / "full" / "real.ogg"), sine(300, 2), RATE, format="OGG")
    case("ogg_named.mp3", "added").write_bytes((root / "full" / "real.ogg").read_bytes())
    encode_m4a(root / "full" / "real.m4a", sine(300, 2), RATE)
    case("mp4_named.mp3", "added").write_bytes((root / "full" / "real.m4a").read_bytes())
    bad = sine(440, 1)
    bad[10] = np.nan
    sf.write(str(case("nan.wav", "failed", "NaN or infinite")), bad, RATE, subtype="FLOAT")
    bad[10] = np.inf
    sf.write(str(case("inf.wav", "failed", "NaN or infinite")), bad, RATE, subtype="FLOAT")
    sf.write(str(case("one_sample.wav", "failed", "too short")), np.array([0.5], np.float32), RATE)
    # The floor is 32 frames at the file's own rate (a single-cycle waveform is 64).
    sf.write(str(case("frames31.wav", "failed", "31 frames of audio")), single_cycle(31), RATE)
    sf.write(str(case("frames32.wav", "added")), single_cycle(32), RATE)
    # A known container holding a codec nothing here decodes: Ogg Vorbis in a WAV header.
    sf.write(str(root / "full" / "vorbis.ogg"), sine(300, 1), RATE, format="OGG")
    write_riff(case("vorbis_in_riff.wav", "failed", "format tag 0x674F"), format_tag=0x674F,
               data=(root / "full" / "vorbis.ogg").read_bytes())
    return cases


def _odd_but_valid(root):
    cases = {}
    root.mkdir(parents=True)
    for rate in (8_000, 192_000):
        path = root / f"rate{rate}.wav"
        sf.write(str(path), sine(1_000, 1, rate), rate)
        cases[path.name] = (path, {"sample_rate": rate, "channels": 1})
    for channels in (1, 2, 6, 8):
        path = root / f"ch{channels}.wav"
        sf.write(str(path), np.stack([sine(200 + 50 * c, 1) for c in range(channels)], axis=1), RATE)
        cases[path.name] = (path, {"channels": channels})
    for subtype, codec in (("PCM_U8", "pcm_u8"), ("PCM_16", "pcm_16"), ("PCM_24", "pcm_24"), ("PCM_32", "pcm_32"),
                           ("FLOAT", "float"), ("DOUBLE", "double")):
        path = root / f"depth_{subtype.lower()}.wav"
        sf.write(str(path), sine(500, 1) * (0.9 if subtype != "PCM_U8" else 0.5), RATE, subtype=subtype)
        cases[path.name] = (path, {"codec": codec})
    names = ["ünïcödé sämplé 🎹.wav", "with spaces .wav", "..wav", "-leading-dash.wav",
             ("x" * 251) + ".wav"]  # 255 bytes, the file-system maximum
    for i, name in enumerate(names):
        path = root / name
        sf.write(str(path), sine(300 + 10 * i, 1), RATE, format="WAV")
        cases[name] = (path, {"filename": name})
    return cases


def test_every_broken_file_fails_with_a_specific_reason(library, tmp_path):
    cases = _corrupt_corpus(tmp_path / "corpus")
    results = library.ingest([path for path, _, _ in cases.values()])
    by_name = {r.source.rsplit("/", 1)[-1]: r for r in results}
    for name, (_, expected, phrase) in cases.items():
        result = by_name[name]
        assert result.status == expected, (name, result.error)
        if phrase:
            assert phrase in result.error and name in result.error, (name, result.error)
    assert library.track(by_name["lying_header.wav"].track_id).duration == pytest.approx(1.0, abs=0.01)
    assert library.track(by_name["ogg_named.mp3"].track_id).format == "ogg"
    assert library.track(by_name["mp4_named.mp3"].track_id).format == "m4a"
    assert library.track(by_name["frames32.wav"].track_id).duration == pytest.approx(32 / RATE)
    assert "Audio too short" in by_name["frames31.wav"].error and "32 frames" in by_name["frames31.wav"].error
    assert "Unsupported codec" in by_name["vorbis_in_riff.wav"].error


def test_odd_rates_channels_depths_and_names_are_added(library, tmp_path):
    cases = _odd_but_valid(tmp_path / "odd")
    # Folder scans skip hidden files, so the dot-named file is given by name.
    results = library.ingest([tmp_path / "odd", tmp_path / "odd" / "..wav"])
    assert len(results) == len(cases)
    for result in results:
        name = result.source.rsplit("/", 1)[-1]
        assert result.status == "added", (name, result.error)
        track = library.track(result.track_id)
        for key, value in cases[name][1].items():
            assert getattr(track, key) == value, (name, key)


def test_size_and_duration_limits(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_file_size_mb=1.0, max_duration_s=5.0)
    just_over = tmp_path / "just_over.wav"
    frames = (1024 * 1024 - 44) // 2 + 1  # 16-bit mono: one frame past 1 MB with the header
    sf.write(str(just_over), np.zeros(frames, np.float32) + 0.1, RATE, subtype="PCM_16")
    assert just_over.stat().st_size > 1024 * 1024
    long = write_audio(tmp_path / "long.flac", sine(300, 12, 8_000), 8_000)
    with Library(settings) as library:
        over, truncated = library.ingest([just_over, long])
        assert over.status == "failed" and "over the 1 MB limit" in over.error
        track = library.track(truncated.track_id)
        assert track.truncated and track.analysed_duration == pytest.approx(5.0)
        assert track.duration == pytest.approx(12.0)


def test_uploaded_names_are_metadata_only(library, audio_dir):
    data = (audio_dir / "sine440.wav").read_bytes()
    names = ["../../etc/passwd.wav", "..\\..\\windows.wav", "-rf.wav", "ünï 🎹.wav", "a" * 300 + ".wav", "/abs.wav"]
    for i, name in enumerate(names):
        # Vary the content so each upload is a new track.
        result = library.ingest_upload(name, data[:-2] + bytes([i, i]))
        assert result.status == "added", (name, result.error)
        track = library.track(result.track_id)
        assert "/" not in track.filename and "\\" not in track.filename
        assert library.audio_path(track).resolve().is_relative_to(library.settings.audio_dir.resolve())
    assert not any(p.name == "passwd.wav" for p in library.settings.data_dir.parent.rglob("passwd.wav"))


def test_fifty_good_files_with_ten_bad_ones_add_exactly_fifty(library, tmp_path):
    folder = tmp_path / "mixed"
    for i in range(50):
        write_audio(folder / f"good{i:02d}.wav", sine(100 + 15 * i, 0.5), 22_050)
    rng = np.random.default_rng(9)
    for i in range(10):
        (folder / f"bad{i:02d}.{['wav', 'mp3', 'flac', 'm4a'][i % 4]}").write_bytes(rng.bytes(5_000) if i else b"")
    results = library.ingest([folder])
    assert sum(r.status == "added" for r in results) == 50
    assert sum(r.status == "failed" for r in results) == 10
    assert library.stats()["tracks"] == 50


def test_cli_accepts_a_file_named_with_a_leading_dash(tmp_path, monkeypatch, capsys):
    import json

    from engine.cli import main

    monkeypatch.setenv("TRAUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    write_audio(tmp_path / "-dash.wav", sine(300, 1), RATE)
    assert main(["ingest", "--json", "--", "-dash.wav"]) == 0
    assert json.loads(capsys.readouterr().out)["added"][0]["path"] == "-dash.wav"


def test_many_uploads_queue_instead_of_decoding_at_once(library, monkeypatch, audio_dir):
    """Twelve uploads at once: all wait on disk, at most max_concurrent_jobs are decoded together."""
    import threading

    from engine import ingest as ingest_module
    from engine.worker import IngestWorker

    active, peak, lock = 0, 0, threading.Lock()
    real_decode = ingest_module.audio.decode

    def counting_decode(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return real_decode(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(ingest_module.audio, "decode", counting_decode)
    data = (audio_dir / "sine440.wav").read_bytes()
    uploads = [(f"take{i}.wav", data[:-4] + i.to_bytes(4, "little")) for i in range(12)]
    worker = IngestWorker(library._ingestor)
    refused = worker.submit_uploads(uploads, batch_id="many")
    assert refused == []
    assert worker.wait_idle(timeout=300)
    jobs = library.jobs(batch_id="many")
    assert [job.status for job in jobs] == ["added"] * 12
    assert 1 <= peak <= library.settings.max_concurrent_jobs
    assert not list(library.settings.tmp_dir.glob("*"))  # every spooled upload was moved into the library


def test_a_batch_that_crashes_leaves_no_job_queued_forever(library, monkeypatch, audio_dir):
    from engine.worker import IngestWorker

    def explode(items, progress=None):
        raise RuntimeError("simulated crash outside any file's stages")

    monkeypatch.setattr(library._ingestor, "run_items", explode)
    worker = IngestWorker(library._ingestor)
    worker.submit_uploads([("a.wav", (audio_dir / "sine440.wav").read_bytes())], batch_id="crash")
    assert worker.wait_idle(timeout=60)
    [job] = library.jobs(batch_id="crash")
    assert job.status == "failed" and "simulated crash" in job.message
    assert not list(library.settings.tmp_dir.glob("*"))
