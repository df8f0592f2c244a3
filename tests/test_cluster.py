"""Ingest on a real Ray (local mode, 2 CPUs) with the tiny offline CLAP: the merged library equals a
local import of the same files, a stopped job finishes on a rerun, and a merge killed with SIGKILL
leaves whole tracks or none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from engine.config import Settings
from engine.errors import EngineError
from engine.library import Library
from engine.search import embedding_matrix
from engine.vectors import PIPELINE_VERSION

ray = pytest.importorskip("ray", reason="the cluster ingest's tests need requirements-ray.txt")

from engine.cluster import ClusterOptions  # noqa: E402
from engine.cluster import job as cluster_job  # noqa: E402
from engine.cluster.shards import PLAN, shard_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ClusterOptions(cpus=2, actors=1, batch_files=3, shard_files=4)
# Every table a track writes, for "whole tracks or none".
PER_TRACK = ("features", "descriptions", "waveforms", "track_embeddings", "window_sets")


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def clap_settings(tiny_clap_dir, tmp_path, fresh_embedders):
    def make(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, clap_model=str(tiny_clap_dir), clap_device="cpu")
    return make


def track_state(library: Library) -> dict:
    """Everything stored per track that an ingest computes, by id (vectors separately)."""
    state = {}
    for track in library.tracks(limit=1000):
        fields = asdict(track)
        for moment in ("created_at",):
            fields.pop(moment)
        fields["waveform"] = library.waveform(track.id).peaks.tobytes()
        state[track.id] = fields
    return state


def vectors(library: Library) -> dict:
    store = library._store
    model_id = library._embedder().model_id
    table = store.embeddings.table(model_id, PIPELINE_VERSION)
    pooled = dict(zip(table.column("track_id").to_pylist(), embedding_matrix(table)))
    windows = store.embeddings.windows(model_id)
    return {track_id: (pooled[track_id], windows[track_id]) for track_id in pooled}


def assert_same_vectors(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    for track_id, (track, windows) in expected.items():
        other_track, other_windows = got[track_id]
        assert float(track @ other_track) >= 1 - 1e-6
        assert other_windows.starts_s == windows.starts_s and other_windows.ends_s == windows.ends_s
        cosines = np.sum(windows.embeddings * other_windows.embeddings, axis=1)
        assert cosines.min() >= 1 - 1e-6, (track_id, cosines)


def consistent(data_dir: Path) -> dict:
    """Row counts per table, checking every track has its rows in each table a track writes."""
    import duckdb

    with duckdb.connect(str(data_dir / "traum.duckdb"), read_only=True) as conn:
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                  for table in ("tracks", "sources", "merged_shards", *PER_TRACK)}
    assert all(counts[table] == counts["tracks"] for table in PER_TRACK), counts
    return counts


def test_a_cluster_ingest_gives_the_library_a_local_import_gives(local_ray, clap_settings, audio_dir):
    with Library(clap_settings("local")) as local:
        results = local.ingest([audio_dir])
        expected, expected_vectors = track_state(local), vectors(local)
        expected_failed = {r.source: r.error for r in results if r.status == "failed"}
    assert len(expected) >= 8 and expected_failed  # the fixture's broken files fail; clutter is skipped

    with Library(clap_settings("ray")) as clustered:
        summary, merged = clustered.ingest_on_ray([audio_dir], options=OPTIONS)
        assert merged.added == len(expected) and summary.tracks == len(expected)
        assert dict(summary.failed) == expected_failed  # the same files, with the same reasons
        assert track_state(clustered) == expected  # ids, metadata, features, description, categories, waveform
        assert_same_vectors(expected_vectors, vectors(clustered))
        # Indexed in place, as a local import: a rerun reads nothing it has.
        again, merged_again = clustered.ingest_on_ray([audio_dir], options=OPTIONS)
        assert again.files == len(expected_failed) and again.skipped_known == len(expected)
        assert merged_again.added == 0
        hits = clustered.search_audio(audio_dir / "sine440.wav", limit=1)
        assert hits[0].filename == "sine440.wav"
    consistent(clap_settings("ray").data_dir)


def test_a_rerun_redoes_only_unfinished_shards(local_ray, clap_settings, audio_dir, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for path in [*sorted((audio_dir / "formats").iterdir()), audio_dir / "sine440.wav"]:
        (source / path.name).write_bytes(path.read_bytes())
    folder = tmp_path / "shards"
    options = ClusterOptions(cpus=2, batch_files=2, shard_files=2)
    with Library(clap_settings("first")) as library:
        first, _ = library.ingest_on_ray([source], options=options, folder=folder)
    assert first.shards_written == 3 and first.tracks == 5
    # As a job killed after its first shard leaves it: the others never written, one half-written.
    kept = shard_files(folder)[0]
    kept_mtime = kept.stat().st_mtime_ns
    for path in shard_files(folder)[1:]:
        path.unlink()
    (folder / ".shard-00001.parquet.0123").write_bytes(b"PAR1 half a file")
    with Library(clap_settings("second")) as library:
        second, merged = library.ingest_on_ray([source], options=options, folder=folder)
        assert (second.shards_done_before, second.shards_written, second.files) == (1, 2, 3)
        assert kept.stat().st_mtime_ns == kept_mtime  # taken in, not redone
        assert merged.added == 5 and library.stats()["tracks"] == 5
        assert json.loads((folder / PLAN).read_text())["shards"][0] == [str(source / name) for name in
                                                                        sorted(p.name for p in source.iterdir())[:2]]
        assert library.import_shards(folder).to_dict()["merged_before"] == 3  # idempotent


def test_shards_merge_into_a_library_that_has_some_of_the_tracks(local_ray, clap_settings, audio_dir, tmp_path):
    folder = tmp_path / "shards"
    files = [str(audio_dir / name) for name in ("sine440.wav", "noise.wav", "click120.wav")]
    cluster_job.run(files, folder=folder, settings=clap_settings("elsewhere"), options=OPTIONS)
    with Library(clap_settings("here")) as library:
        library.ingest([audio_dir / "noise.wav"])
        copy = tmp_path / "copy"
        copy.mkdir()
        (copy / "sine-again.wav").write_bytes((audio_dir / "sine440.wav").read_bytes())
        library.ingest([copy])
        merged = library.import_shards(folder)
        assert (merged.added, merged.to_dict()["known"]) == (1, 2)
        assert library.stats()["tracks"] == 3
        sine = next(t for t in library.tracks() if t.filename == "sine-again.wav")
        assert set(library.track(sine.id).locations) == {str(copy / "sine-again.wav"),
                                                         str((audio_dir / "sine440.wav").resolve())}
    consistent(clap_settings("here").data_dir)


def test_a_merge_killed_mid_shard_leaves_whole_tracks_or_none(local_ray, clap_settings, audio_dir, tmp_path):
    folder = tmp_path / "shards"
    files = sorted(str(p) for p in audio_dir.glob("*.wav"))
    cluster_job.run(files, folder=folder, settings=clap_settings("elsewhere"), options=ClusterOptions(
        cpus=2, batch_files=3, shard_files=3))
    assert len(shard_files(folder)) == 2
    target = clap_settings("target")
    script = tmp_path / "kill_merge.py"
    script.write_text(KILL_DURING_SECOND_SHARD)
    done = subprocess.run([sys.executable, str(script), str(target.data_dir), str(folder)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    counts = consistent(target.data_dir)  # the first shard whole, nothing of the second
    assert counts["merged_shards"] == 1 and counts["tracks"] == 3
    with Library(target) as library:
        merged = library.import_shards(folder)
        assert merged.to_dict()["merged_before"] == 1 and merged.added == len(files) - 3
    assert consistent(target.data_dir)["tracks"] == len(files)


# Merges the folder's shards in order and dies with SIGKILL inside the second shard's transaction,
# right after its tracks were inserted and before the rest of its rows.
KILL_DURING_SECOND_SHARD = """
import os, signal, sys
from pathlib import Path

import engine.store.shards as shards
from engine.cluster import merge_folder
from engine.config import Settings
from engine.store import Store


class DiesInSecondShard(tuple):
    merges = 0

    def __getitem__(self, index):
        statements = tuple.__getitem__(self, index)
        if isinstance(index, slice) and index.start == 2:
            DiesInSecondShard.merges += 1
            if DiesInSecondShard.merges == 2:
                return _dying(statements)
        return statements


def _dying(statements):
    yield statements[0]  # INSERT INTO tracks
    os.kill(os.getpid(), signal.SIGKILL)


shards._MERGE = DiesInSecondShard(shards._MERGE)
store = Store(Path(sys.argv[1]))
merge_folder(store, Path(sys.argv[2]))
"""


def test_a_job_killed_with_sigkill_finishes_on_a_rerun(clap_settings, audio_dir, tmp_path):
    """The real command, killed once its first shard is written, then run again."""
    settings = clap_settings("killed")
    source = tmp_path / "source"
    source.mkdir()
    for path in sorted(audio_dir.glob("*.wav")):
        (source / path.name).write_bytes(path.read_bytes())
    env = {**os.environ, "TRAUM_DATA_DIR": str(settings.data_dir), "TRAUM_CLAP_MODEL": settings.clap_model,
           "TRAUM_CLAP_DEVICE": "cpu", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "engine", "ingest", str(source), "--ray", "--cpus", "2", "--shard-files", "1",
               "--batch-files", "1", "--batch-windows", "2", "--json"]
    job = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    shards = settings.data_dir / "shards"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (shards.is_dir() and shard_files(shards)):
        assert job.poll() is None, "the job ended before writing a shard"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    kept = {path.name: path.stat().st_mtime_ns for path in shard_files(shards)}
    assert 1 <= len(kept) < 6
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # exactly one JSON document on stdout: Ray's progress goes to stderr
    assert report["job"]["shards_done_before"] == len(kept)
    assert report["job"]["shards_written"] == 6 - len(kept)
    assert report["merge"]["added"] == 6 and not report["job"]["failed"]
    for name, mtime in kept.items():
        assert (shards / name).stat().st_mtime_ns == mtime


def test_without_ray_the_command_says_how_to_install_it(monkeypatch, settings, audio_dir):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with Library(settings) as library:
        with pytest.raises(EngineError) as error:
            library.ingest_on_ray([audio_dir])
        assert "requirements-ray.txt" in error.value.hint
        assert library.stats()["tracks"] == 0


def test_a_damaged_shard_is_named_and_skipped_and_loses_nothing_else(local_ray, clap_settings, audio_dir, tmp_path):
    folder = tmp_path / "shards"
    cluster_job.run([str(audio_dir / "sine440.wav")], folder=folder, settings=clap_settings("a"), options=OPTIONS)
    (folder / "shard-00001.parquet").write_bytes(b"not parquet")
    (folder / "shard-00002.parquet").write_bytes((folder / "shard-00000.parquet").read_bytes())  # same bytes
    with Library(clap_settings("b")) as library:
        merged = library.import_shards(folder)
        [(name, why)] = merged.damaged
        assert name == "shard-00001.parquet" and "cannot be read as a shard" in why and "Delete it" in why
        # The others are in: the first, and its byte-identical copy known by its digest.
        assert library.stats()["tracks"] == 1 and merged.to_dict()["merged_before"] == 1
