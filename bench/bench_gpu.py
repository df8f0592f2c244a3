"""CLAP on one GPU: the model's rate by batch size, the device log-mel, and whole ingests.

On a CUDA machine, with the full-size randomly initialised CLAP (bench_clap.build_full_size),
through the production loader (engine.clap.get_embedder):

1. features: the log-mel input per window, transformers' extractor (numpy, CPU) against
   engine.clap.melspec.LogMel on the device, and how far apart they are (dB);
2. model: ``embed_audio`` windows per second and times real time for each batch size, in
   bfloat16 (the precision CUDA gets) and float32, the device memory each batch size took;
3. agreement: the same windows on the CPU in float32 against the GPU in float32 and bfloat16;
4. prompts: one uncached prompt's latency on the GPU;
5. ingest: a folder of music-like wav files through the Ray job (one GPU actor,
   ``Library.ingest_on_ray``, merge included) and through the local pipeline
   (``Library.ingest``, the model on the GPU), each in a fresh process and library.

Each stage runs on its own; a failing one is reported and the next runs. The report is
rewritten after each stage, so a run cut short still returns what it measured. Run with
``--device cpu --model-dir TINY`` to try the script without a GPU.

Usage:

    python bench/bench_gpu.py --out gpu.json [--model-dir DIR] [--windows 1024]
        [--batches 16,32,64,128,256] [--files 240] [--seconds 30] [--deadline-s 360]
        [--stages features,model,agreement,prompts,ingest]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

WINDOW_S = 10.0

INGEST_CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from engine.config import Settings
from engine.features import warm_up
from engine.library import Library

settings = Settings(data_dir=Path({data!r}), clap_model={model!r}, clap_device={device!r},
                    clap_batch_windows={batch}, max_concurrent_jobs={jobs})
warm_up()
started = time.perf_counter()
with Library(settings) as library:
    if {mode!r} == "local":
        library.load_model()
        started = time.perf_counter()  # the model loads once per process: not part of the ingest
        results = library.ingest([Path({folder!r})])
        wall = time.perf_counter() - started
        out = {{"job_s": wall, "added": sum(r.status == "added" for r in results),
               "failed": sum(r.status == "failed" for r in results)}}
    else:
        from engine.cluster import ClusterOptions
        summary, merged = library.ingest_on_ray([Path({folder!r})], options=ClusterOptions(
            actors=1, batch_files={batch_files}, batch_windows={batch}, shard_files={shard_files}))
        out = {{"job_s": summary.seconds, "command_s": time.perf_counter() - started, "added": merged.added,
               "failed": len(summary.failed), "summary": summary.to_dict()}}
    out["windows"] = library._store.db.execute("counting", "SELECT sum(window_count) FROM track_embeddings")[0][0]
print("RESULT " + json.dumps(out))
"""


class Report:
    def __init__(self, path: Path | None, deadline_s: float):
        self.path = path
        self.data: dict = {"machine": _machine(), "date": time.strftime("%Y-%m-%d"), "errors": {}}
        self.started = time.monotonic()
        self.deadline_s = deadline_s

    def left_s(self) -> float:
        return self.deadline_s - (time.monotonic() - self.started)

    def stage(self, name: str, fn, *args, need_s: float = 0.0) -> None:
        if self.left_s() < need_s:
            self.data["errors"][name] = f"skipped: {self.left_s():.0f} s left, {need_s:.0f} needed"
        else:
            began = time.monotonic()
            try:
                self.data[name] = fn(*args)
            except Exception:  # noqa: BLE001 - one stage's failure is reported; the others still run
                self.data["errors"][name] = traceback.format_exc()[-3000:]
            self.data.setdefault("stage_s", {})[name] = round(time.monotonic() - began, 1)
        print(name, json.dumps(self.data.get(name, self.data["errors"].get(name)), default=str)[:3000], flush=True)
        if self.path:
            self.path.write_text(json.dumps(self.data, indent=2, default=str))


def _machine() -> dict:
    out = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        import torch

        out["torch"] = torch.__version__
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            out.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1))
    except Exception as exc:  # noqa: BLE001
        out["torch_error"] = str(exc)
    for name in ("transformers", "numpy", "librosa", "duckdb", "ray"):
        try:
            out[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001
            out[name] = f"unavailable: {type(exc).__name__}: {exc}"
    return out


def windows_of_music(n: int, seed: int = 0) -> np.ndarray:
    """n distinct 10 s windows at 48 kHz: chords over a kick, each its own pitch, tempo and level.

    Made here rather than by bench_decode so the model stages need neither librosa nor a decoder."""
    rng = np.random.default_rng(seed)
    t = np.arange(480_000, dtype=np.float32) / 48_000
    out = np.empty((n, 480_000), dtype=np.float32)
    for i in range(n):
        root = rng.uniform(80, 400)
        x = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.26, 1.5)) * 0.1
        beat = 60 / rng.uniform(70, 170)
        x[(np.floor(t / beat) != np.floor((t - 1 / 48_000) / beat))] += 0.8  # a click on each beat
        x += rng.standard_normal(480_000).astype(np.float32) * rng.uniform(0.001, 0.05)
        out[i] = x * rng.uniform(0.2, 1.0)
    return out


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def features_stage(args, windows: np.ndarray) -> dict:
    import torch
    from transformers import ClapFeatureExtractor

    from engine.clap.melspec import LogMel

    extractor = ClapFeatureExtractor()
    few = windows[:8]
    started = time.perf_counter()
    expected = extractor(list(few), sampling_rate=48_000, truncation="rand_trunc", padding="repeatpad",
                         return_tensors="np")["input_features"]
    extractor_ms = (time.perf_counter() - started) * 1000 / len(few)
    log_mel = LogMel(extractor, fusion=False, device=args.device)
    got = log_mel(few).cpu().numpy()
    out = {"extractor_ms_per_window": round(extractor_ms, 2),
           "max_abs_db_vs_extractor": float(np.abs(got - expected).max())}
    for batch in (32, 256):
        chunk = windows[:batch]
        log_mel(chunk)
        _sync(args.device)
        started = time.perf_counter()
        for _ in range(3):
            log_mel(chunk)
        _sync(args.device)
        per_window_ms = (time.perf_counter() - started) * 1000 / (3 * len(chunk))
        out[f"device_ms_per_window_batch{len(chunk)}"] = round(per_window_ms, 3)
    if args.device == "cuda":
        out["device_peak_gb_batch256"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def model_stage(args, windows: np.ndarray) -> dict:
    import torch

    from engine.clap import get_embedder
    from engine.config import Settings

    out: dict = {}
    for precision in ("bfloat16", "float32"):
        started = time.perf_counter()
        embedder = get_embedder(Settings(clap_model=str(args.model_dir), clap_device=args.device,
                                         clap_precision=precision, clap_batch_windows=8))
        runs = {"load_s": round(time.perf_counter() - started, 1), "model_id": embedder.model_id,
                "device": embedder.device, "device_features": embedder._log_mel is not None}
        sizes = args.batch_sizes if precision == "bfloat16" else [max(args.batch_sizes)]
        for batch in sizes:
            embedder.batch_windows = batch
            embedder.embed_audio(windows[:batch])  # warm-up: kernels chosen for this shape
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            embedder.embed_audio(windows)
            elapsed = time.perf_counter() - started
            rate = len(windows) / elapsed
            run = {"windows_per_s": round(rate, 1), "x_realtime": round(rate * WINDOW_S), "windows": len(windows)}
            # The model alone: features already on the device, one batch's forward.
            prepared = embedder._prepare_audio(windows[:batch])
            _sync(args.device)
            started = time.perf_counter()
            with torch.inference_mode():
                for _ in range(3):
                    embedder._forward_audio(prepared)
            _sync(args.device)
            run["forward_only_windows_per_s"] = round(3 * batch / (time.perf_counter() - started), 1)
            if args.device == "cuda":
                run["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            runs[f"batch{batch}"] = run
            print(precision, batch, run, flush=True)
        best = max((k for k in runs if k.startswith("batch")), key=lambda k: runs[k]["windows_per_s"])
        runs["best_batch"] = int(best[len("batch"):])
        out[precision] = runs
    return out


def agreement_stage(args, windows: np.ndarray) -> dict:
    from engine.clap import get_embedder
    from engine.config import Settings

    few = windows[:16]
    vectors = {}
    for device, precision in (("cpu", "float32"), (args.device, "float32"), (args.device, "bfloat16")):
        embedder = get_embedder(Settings(clap_model=str(args.model_dir), clap_device=device,
                                         clap_precision=precision, clap_batch_windows=16))
        vectors[f"{device}/{precision}"] = embedder.embed_audio(few)
    reference = vectors["cpu/float32"]
    return {f"min_cosine_cpu_float32_vs_{key.replace('/', '_')}": float(np.sum(reference * v, axis=1).min())
            for key, v in vectors.items() if key != "cpu/float32"}


def prompt_stage(args) -> dict:
    from bench_clap import PROMPTS

    from engine.clap import get_embedder
    from engine.config import Settings

    precision = "bfloat16" if args.device == "cuda" else "float32"  # what "auto" picks; the model stage loaded it
    embedder = get_embedder(Settings(clap_model=str(args.model_dir), clap_device=args.device, clap_precision=precision,
                                     clap_batch_windows=8))
    embedder.embed_text(["warm-up prompt"])
    times = []
    for prompt in PROMPTS:
        started = time.perf_counter()
        embedder.embed_text([prompt])
        times.append((time.perf_counter() - started) * 1000)
    return {"precision": embedder.precision, "uncached_prompt_ms_p50": round(float(np.median(times)), 2),
            "uncached_prompt_ms_max": round(float(np.max(times)), 2)}


def write_folder(folder: Path, files: int, seconds: float) -> float:
    """``files`` stereo 44.1 kHz wav files of music-like audio; returns their total seconds."""
    from bench_decode import music_like

    from tests.fixtures_audio import write_audio

    folder.mkdir(parents=True, exist_ok=True)
    base = music_like(seconds + files * 0.05 + 1, 44_100)
    total = 0.0
    for i in range(files):
        length = seconds + (i % 7) * 0.5
        start = int(i * 0.05 * 44_100)
        write_audio(folder / f"take{i:04d}.wav", base[start:start + int(length * 44_100)], 44_100)
        total += length
    return total


def ingest_stage(args, mode: str, folder: Path, audio_s: float, batch: int, tmp: Path) -> dict:
    code = INGEST_CHILD.format(repo=str(REPO), data=str(tmp / f"data-{mode}"), model=str(args.model_dir),
                               device=args.device, batch=batch, jobs=args.jobs, folder=str(folder), mode=mode,
                               batch_files=args.batch_files, shard_files=args.shard_files)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, timeout=max(30, args.left_s()))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-3000:]}")
    out = json.loads(lines[-1][len("RESULT "):])
    out.update(audio_s=round(audio_s), batch_windows=batch, x_realtime=round(audio_s / out["job_s"], 1))
    if out.get("windows"):
        out["windows_per_s"] = round(out["windows"] / out["job_s"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--windows", type=int, default=1024)
    parser.add_argument("--batches", default="16,32,64,128,256")
    parser.add_argument("--files", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch-files", type=int, default=32)
    parser.add_argument("--shard-files", type=int, default=64)
    parser.add_argument("--deadline-s", type=float, default=360)
    parser.add_argument("--stages", default="features,model,agreement,prompts,ingest",
                        help="which stages to run (comma-separated)")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    args.batch_sizes = [int(b) for b in args.batches.split(",")]
    report = Report(args.out, args.deadline_s)
    args.left_s = report.left_s
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        if args.model_dir is None or not (args.model_dir / "config.json").exists():
            from bench_clap import build_full_size

            args.model_dir = args.model_dir or tmp / "model"
            report.stage("model_build", build_full_size, args.model_dir)
        windows = windows_of_music(args.windows)
        for name, stage, need_s in (("features", features_stage, 0), ("model", model_stage, 0),
                                    ("agreement", agreement_stage, 60)):
            if name in stages:
                report.stage(name, stage, args, windows, need_s=need_s)
        if "prompts" in stages:
            report.stage("prompts", prompt_stage, args, need_s=30)
        if "ingest" in stages:
            best = report.data.get("model", {}).get("bfloat16", {}).get("best_batch", max(args.batch_sizes))
            folder = tmp / "takes"
            audio_s = write_folder(folder, args.files, args.seconds)
            report.data["ingest_folder"] = {"files": args.files, "audio_s": round(audio_s)}
            report.stage("ingest_ray", ingest_stage, args, "ray", folder, audio_s, best, tmp, need_s=90)
            report.stage("ingest_local", ingest_stage, args, "local", folder, audio_s, best, tmp, need_s=90)
    print(json.dumps(report.data, indent=2, default=str))


if __name__ == "__main__":
    main()
