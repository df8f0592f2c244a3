"""Cluster ingest (engine.cluster) against the local pipeline, and the bulk merge of shards.

1. Ingest throughput on the full-size random CLAP (bench_clap.build_full_size), the same folder of
   music-like files (wav and mp3, 44.1 kHz): the local pipeline (``Library.ingest``), then Ray in
   local mode with 1 and with 2 CPU model actors (``Library.ingest_on_ray``). Each run is a fresh
   process and a fresh library. Reported: the whole command (Ray's start and the actors' model
   loads included) and the job alone once Ray is up, in times real time.
2. Merge: synthetic shards of ``--merge-tracks`` tracks (6 windows of 512 dimensions each, as at
   1M tracks), merged into an empty library by ``import_shards``; seconds per 100k tracks.

Usage:

    .venv/bin/python bench/bench_ray.py [--files 12] [--seconds 60] [--merge-tracks 100000]
        [--model-dir DIR] [--skip-ingest] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {repo!r})
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
from pathlib import Path
from engine.config import Settings
from engine.features import warm_up
from engine.library import Library

settings = Settings(data_dir=Path({data!r}), clap_model={model!r}, clap_device="cpu", clap_batch_windows=8)
warm_up()
mode = {mode!r}
started = time.perf_counter()
with Library(settings) as library:
    if mode == "local":
        library.load_model()
        started = time.perf_counter()  # the model loads once per process: not part of the ingest
        results = library.ingest([Path({folder!r})])
        wall = time.perf_counter() - started
        out = {{"wall_s": wall, "job_s": wall, "added": sum(r.status == "added" for r in results)}}
    else:
        import ray
        from engine.cluster import ClusterOptions
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        up = time.perf_counter()
        summary, merged = library.ingest_on_ray([Path({folder!r})], options=ClusterOptions(
            actors={actors}, batch_files=2, shard_files=4))
        out = {{"wall_s": time.perf_counter() - started, "job_s": summary.seconds, "ray_start_s": up - started,
               "added": merged.added, "failed": len(summary.failed)}}
print(json.dumps(out))
"""


def ingest_runs(args, tmp: Path) -> dict:
    from bench_clap import build_full_size
    from bench_decode import music_like

    from tests.fixtures_audio import write_audio

    model_dir = args.model_dir or tmp / "model"
    if not (model_dir / "config.json").exists():
        build_full_size(model_dir)
    folder = tmp / "music"
    for i in range(args.files):
        write_audio(folder / f"track{i:02d}.{'mp3' if i % 2 else 'wav'}", music_like(args.seconds + i), 44_100)
    audio_s = sum(args.seconds + i for i in range(args.files))
    runs = {}
    for name, mode, actors in (("local pipeline", "local", 0), ("Ray, 1 CPU actor", "ray", 1),
                               ("Ray, 2 CPU actors", "ray", 2)):
        code = CHILD.format(repo=str(REPO), data=str(tmp / f"data-{mode}-{actors}"), model=str(model_dir),
                            folder=str(folder), mode=mode, actors=actors)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        if done.returncode != 0:
            raise SystemExit(done.stderr[-4000:])
        run = json.loads(done.stdout.strip().splitlines()[-1])
        run["x_realtime_command"] = round(audio_s / run["wall_s"], 1)
        run["x_realtime_job"] = round(audio_s / run["job_s"], 1)
        runs[name] = run
        print(name, run, flush=True)
    return {"files": args.files, "audio_s": audio_s, "runs": runs}


def synthetic_shards(folder: Path, tracks: int, *, per_shard: int = 2048, windows: int = 6, dim: int = 512) -> None:
    """Shards of made-up tracks with the real schema and the real vector sizes."""
    from engine.cluster.shards import write_shard

    rng = np.random.default_rng(0)
    number = 0
    for start in range(0, tracks, per_shard):
        rows = []
        for i in range(start, min(tracks, start + per_shard)):
            block = rng.standard_normal((windows, dim)).astype("<f4")
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            pooled = block.mean(axis=0)
            pooled /= np.linalg.norm(pooled)
            rows.append({
                "shard": number, "source_path": f"/archive/{i // 1000:04d}/track{i:07d}.wav",
                "name": f"/archive/{i // 1000:04d}/track{i:07d}.wav", "file_size": 5_000_000 + i,
                "file_mtime": 1.7e9 + i, "id": f"{i:064x}", "filename": f"track{i:07d}.wav", "format": "wav",
                "codec": "pcm_16", "sample_rate": 44_100, "channels": 2, "duration": 55.0, "analysed_duration": 55.0,
                "truncated": False, "tempo": 120.0, "spectral_centroid": 1500.0, "zero_crossing_rate": 0.05,
                "rms_energy": 0.1, "feature_version": 1, "kind": "long", "kind_confidence": 0.9,
                "tempo_source": "audio", "bars": None, "key_tonic": None, "key_mode": None, "key_confidence": None,
                "key_source": None, "name_category": None, "description_version": 1, "waveform_version": 1,
                "waveform_duration": 55.0, "waveform_peaks": bytes(800), "model_id": "bench-model",
                "pipeline_version": 1, "dim": dim, "embedding": pooled.astype("<f4").tobytes(),
                "window_count": windows, "starts_s": [10.0 * w for w in range(windows)],
                "ends_s": [10.0 * w + 10 for w in range(windows)], "windows": block.tobytes(),
            })
        write_shard(folder / f"shard-{number:05d}.parquet", rows)
        number += 1


def merge_run(tracks: int, tmp: Path) -> dict:
    from engine.config import Settings
    from engine.library import Library

    folder = tmp / "shards"
    folder.mkdir()
    started = time.perf_counter()
    synthetic_shards(folder, tracks)
    made_s = time.perf_counter() - started
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    settings = Settings(data_dir=tmp / "merged", clap_model=str(tmp / "no-model"))
    with Library(settings) as library:
        started = time.perf_counter()
        merged = library.import_shards(folder)
        merge_s = time.perf_counter() - started
        started = time.perf_counter()
        again = library.import_shards(folder)
        again_s = time.perf_counter() - started
        count = library.stats()["tracks"]
    return {"tracks": tracks, "shards_mb": round(size_mb), "making_shards_s": round(made_s, 1),
            "merge_s": round(merge_s, 1), "merge_s_per_100k": round(merge_s * 100_000 / tracks, 1),
            "added": merged.added, "library_tracks": count, "second_merge_s": round(again_s, 2),
            "second_merge_skipped": again.to_dict()["merged_before"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--merge-tracks", type=int, default=100_000)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from bench_search import machine

    report: dict = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        if not args.skip_ingest:
            report["ingest"] = ingest_runs(args, Path(tmp))
        report["merge"] = merge_run(args.merge_tracks, Path(tmp))
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
