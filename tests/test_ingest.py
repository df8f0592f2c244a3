import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import stages as stage_module
from engine.library import Library
from tests.fixtures_audio import click_track, sine, write_audio

REPO = Path(__file__).resolve().parents[1]


def statuses(results):
    return {Path(r.source).name: r.status for r in results}


def test_folder_import_adds_good_files_and_reports_bad_ones(library, audio_dir):
    results = library.ingest([audio_dir])
    by_name = statuses(results)
    for good in ("sine440.wav", "click120.wav", "silence.wav", "noise.wav", "stereo44k.wav", "hires96k24.wav",
                 "mix.wav", "mix.flac", "mix.mp3", "mix.m4a"):
        assert by_name[good] == "added", good
    assert by_name["random.wav"] == by_name["empty.wav"] == by_name["truncated.mp3"] == "failed"
    assert "notes.txt" not in by_name  # other types inside folders are skipped quietly
    failed = {Path(r.source).name: r.error for r in results if r.status == "failed"}
    assert "Not a decodable audio file" in failed["random.wav"] and "random.wav" in failed["random.wav"]
    assert "Empty file" in failed["empty.wav"]
    assert library.stats()["tracks"] == 10


def test_stored_metadata_and_features(library, audio_dir):
    [result] = library.ingest([audio_dir / "stereo44k.wav"])
    track = library.track(result.track_id)
    assert track.filename == "stereo44k.wav"
    assert (track.sample_rate, track.channels, track.format) == (44_100, 2, "wav")
    assert track.duration == pytest.approx(4.0)
    assert track.file_size == (audio_dir / "stereo44k.wav").stat().st_size
    assert track.storage == "referenced" and track.path == str((audio_dir / "stereo44k.wav").resolve())
    [click] = library.ingest([audio_dir / "click120.wav"])
    assert library.track(click.track_id).tempo == pytest.approx(120, rel=0.02)
    [silence] = library.ingest([audio_dir / "silence.wav"])
    assert library.track(silence.track_id).tempo is None


def test_same_content_under_another_name_is_a_duplicate(library, audio_dir, tmp_path):
    copy = tmp_path / "renamed" / "another name.wav"
    copy.parent.mkdir()
    shutil.copy(audio_dir / "sine440.wav", copy)
    first, second = library.ingest([audio_dir / "sine440.wav", copy])
    # Both run at once on two workers, so either may win the insert.
    assert sorted([first.status, second.status]) == ["added", "duplicate"]
    assert second.track_id == first.track_id
    assert library.stats()["tracks"] == 1


def test_explicit_bad_paths_are_reported(library, audio_dir, tmp_path):
    results = library.ingest([audio_dir / "bad" / "notes.txt", tmp_path / "missing.wav"])
    assert [r.status for r in results] == ["failed", "failed"]
    assert "Unsupported file type" in results[0].error
    assert "does not exist" in results[1].error


def test_size_limit_is_checked_before_reading(tmp_path, audio_dir, monkeypatch):
    from engine.config import Settings

    settings = Settings(data_dir=tmp_path / "data", max_file_size_mb=0.01)
    reads = []
    monkeypatch.setattr(stage_module.audio, "hash_file", lambda path: reads.append(path))
    with Library(settings) as library:
        [result] = library.ingest([audio_dir / "click120.wav"])
    assert result.status == "failed" and "File too large" in result.error
    assert reads == []


def test_rerun_skips_unchanged_files_without_reading_them(library, audio_dir, monkeypatch):
    library.ingest([audio_dir / "formats"])

    def must_not_decode(*args, **kwargs):
        raise AssertionError("an unchanged file was decoded again")

    monkeypatch.setattr(stage_module.audio, "decode", must_not_decode)
    monkeypatch.setattr(stage_module.audio, "hash_file", must_not_decode)
    results = library.ingest([audio_dir / "formats"])
    assert {r.status for r in results} == {"duplicate"}


def test_a_changed_file_is_imported_again(library, tmp_path):
    path = write_audio(tmp_path / "loop.wav", sine(300, 2), 44_100)
    [first] = library.ingest([path])
    write_audio(path, sine(600, 2), 44_100)
    os.utime(path, (time.time() + 5, time.time() + 5))
    [second] = library.ingest([path])
    assert second.status == "added" and second.track_id != first.track_id


def test_failure_between_stages_leaves_no_row_and_no_file(library, audio_dir, monkeypatch):
    def broken_features(**kwargs):
        raise RuntimeError("injected between decode and persist")

    monkeypatch.setattr(stage_module, "analyse", broken_features)
    [result] = library.ingest([audio_dir / "sine440.wav"], copy=True)
    assert result.status == "failed" and "injected" in result.error
    assert library.stats()["tracks"] == 0
    assert not [p for p in library.settings.audio_dir.rglob("*") if p.is_file()]
    job = library.jobs()[0]
    assert job.status == "failed" and job.progress == 1.0


def test_failure_inside_the_save_transaction_leaves_nothing(fake_library, audio_dir, monkeypatch):
    library = fake_library

    def explode(conn, track_id, embedding):
        raise RuntimeError("injected after the track rows, before the commit")

    monkeypatch.setattr("engine.store.tracks.write_embedding", explode)
    [result] = library.ingest([audio_dir / "sine440.wav"], copy=True)
    assert result.status == "failed" and "injected" in result.error
    assert library.stats()["tracks"] == 0
    assert not [p for p in library.settings.audio_dir.rglob("*") if p.is_file()]
    assert library._store.db.records("n", "SELECT count(*) AS n FROM features")[0]["n"] == 0


def test_copy_keeps_a_content_addressed_copy(library, audio_dir):
    [result] = library.ingest([audio_dir / "formats" / "mix.flac"], copy=True)
    track = library.track(result.track_id)
    assert track.storage == "managed"
    assert track.path == f"audio/{result.track_id[:2]}/{result.track_id}.flac"
    stored = library.audio_path(track)
    assert stored.read_bytes() == (audio_dir / "formats" / "mix.flac").read_bytes()
    library.delete(result.track_id)
    assert not stored.exists()
    assert (audio_dir / "formats" / "mix.flac").exists()


def test_upload_name_is_never_used_as_a_path(library, audio_dir, tmp_path):
    data = (audio_dir / "sine440.wav").read_bytes()
    result = library.ingest_upload("../../x.wav", data)
    assert result.status == "added"
    track = library.track(result.track_id)
    assert track.filename == "x.wav"
    assert library.audio_path(track).resolve().is_relative_to(library.settings.audio_dir.resolve())
    assert not list(tmp_path.rglob("x.wav"))  # nothing anywhere was named after the upload
    assert not list(library.settings.tmp_dir.glob("*"))  # the spooled upload was moved, not left behind
    again = library.ingest_upload("copy of x.wav", data)
    assert again.status == "duplicate" and again.track_id == result.track_id


def test_bad_upload_is_reported_and_cleaned_up(library):
    result = library.ingest_upload("song.wav", b"definitely not audio")
    assert result.status == "failed" and "Not a decodable audio file" in result.error
    assert "song.wav" in result.error
    assert not list(library.settings.tmp_dir.glob("*"))
    oversized = library.ingest_upload("big.wav", b"0" * (library.settings.max_file_size_bytes + 1))
    assert oversized.status == "failed" and "File too large" in oversized.error


def test_progress_is_reported_per_stage_and_jobs_persist(library, audio_dir):
    events = []
    results = library.ingest([audio_dir / "sine440.wav", audio_dir / "bad" / "random.wav"], progress=events.append)
    stages = [e.stage for e in events if e.source.endswith("sine440.wav")]
    assert stages[:4] == ["validate", "hash", "decode", "features"] and stages[-1] == "done"
    finished = [e.result for e in events if e.result is not None]
    assert sorted(r.status for r in finished) == ["added", "failed"]
    jobs = {Path(j.source).name: j for j in library.jobs()}
    assert jobs["sine440.wav"].status == "added" and jobs["sine440.wav"].track_id == results[0].track_id
    assert jobs["random.wav"].status == "failed" and "decodable" in jobs["random.wav"].message


def test_one_bad_file_never_stops_the_batch(library, tmp_path, monkeypatch):
    for i in range(6):
        write_audio(tmp_path / "in" / f"tone{i}.wav", sine(200 + 50 * i, 1), 44_100)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    real = stage_module.analyse

    def flaky(*, samples, sample_rate, name):
        if abs(len(samples) - sample_rate) < 2 and flaky.calls == 2:
            flaky.calls += 1
            raise MemoryError("simulated")
        flaky.calls += 1
        return real(samples=samples, sample_rate=sample_rate, name=name)

    flaky.calls = 0
    monkeypatch.setattr(stage_module, "analyse", flaky)
    results = library.ingest([tmp_path / "in"])
    assert sorted(r.status for r in results).count("added") == 5
    assert sum(r.status == "failed" for r in results) == 2


def _slow_library_folder(root: Path, count: int) -> Path:
    folder = root / "many"
    for i in range(count):
        write_audio(folder / f"loop{i:02d}.wav", click_track(100 + i, 40) + sine(100 + 20 * i, 40, amplitude=0.1), 44_100)
    return folder


def test_kill_9_mid_run_then_rerun_completes_exactly_once(tmp_path, tiny_clap_dir):
    folder = _slow_library_folder(tmp_path, 10)
    data = tmp_path / "data"
    env = dict(os.environ, TRAUM_DATA_DIR=str(data), TRAUM_MAX_CONCURRENT_JOBS="1", PYTHONPATH=str(REPO),
               TRAUM_CLAP_MODEL=str(tiny_clap_dir), TRAUM_CLAP_DEVICE="cpu", HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "engine", "ingest", str(folder), "--copy", "--json"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    audio_store = data / "audio"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = [p for p in audio_store.rglob("*.wav")] if audio_store.exists() else []
        if len(stored) >= 2 or process.poll() is not None:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be interrupted"

    from engine.config import Settings

    with Library(Settings(data_dir=data)) as library:
        tracks = library.stats()["tracks"]
        # One worker: the second file is only placed after the first commit.
        # It may itself have been killed before its commit; its copy is then
        # an orphan that opening the library sweeps away.
        assert 1 <= tracks < 10
        assert library.interrupted_jobs >= 1
        stored = sorted(p.relative_to(data).as_posix() for p in audio_store.rglob("*") if p.is_file())
        assert stored == sorted(t.path for t in library.tracks(limit=100))  # no orphan, no missing file
        count = lambda sql: library._store.db.records("n", sql)[0]["n"]  # noqa: E731
        assert count("SELECT count(*) AS n FROM features") == tracks
        # Every track is whole: embedded with its windows; no window or vector without its track.
        assert count("SELECT count(*) AS n FROM track_embeddings") == tracks
        assert count("SELECT count(DISTINCT track_id) AS n FROM window_sets") == tracks
        assert count("SELECT count(*) AS n FROM window_sets w"
                     " WHERE NOT EXISTS (SELECT 1 FROM tracks t WHERE t.id = w.track_id)") == 0
        assert count("SELECT count(*) AS n FROM features f"
                     " WHERE NOT EXISTS (SELECT 1 FROM tracks t WHERE t.id = f.track_id)") == 0
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with Library(Settings(data_dir=data)) as library:
        assert library.stats()["tracks"] == 10
        assert len({t.filename for t in library.tracks(limit=100)}) == 10
        assert library._store.db.records("n", "SELECT count(*) AS n FROM track_embeddings")[0]["n"] == 10


def test_uploads_stream_from_file_objects(library, audio_dir):
    import io

    data = (audio_dir / "sine440.wav").read_bytes()
    items, [result] = library._ingestor.queue_uploads([("a.wav", io.BytesIO(data))])
    assert result.status == "queued" and result.job_id == items[0].job_id and items[0].path.read_bytes() == data
    [result] = library._ingestor.run_items(items)
    assert result.status == "added"
    big = io.BytesIO(b"0" * (library.settings.max_file_size_bytes + 1))
    items, [refused] = library._ingestor.queue_uploads([("big.wav", big)])
    assert items == [] and refused.status == "failed" and "File too large" in refused.error
