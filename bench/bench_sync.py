"""Library folders: sync of an unchanged tree, a moved folder, and one-shot import throughput.

Three measures, each in its own temporary library (pick with --parts):

* ``unchanged``: a generated tree of N small audio files (default 100,000, in
  folders of 200) whose tracks and source rows are bulk-inserted with the files'
  real sizes and mtimes, then ``Library.sync()`` is timed with file reading
  (hashing, decoding) made to fail, so the figure proves no file was read.
* ``moved``: M one-shots (default 1,000) imported for real (no model, so
  embeddings pend), their folder moved, and ``sync`` timed with decoding made
  to fail: the moves are detected by hashing alone.
* ``oneshots``: K one-shots (default 1,000, 30-300 ms) imported with the
  full-size random CLAP (bench_clap.build_full_size) against the model's own
  cost per 10 s window in the same process: what the pipeline around it adds.

Usage:
    .venv/bin/python bench/bench_sync.py [--parts unchanged,moved,oneshots] [--files 100000]
        [--moved 1000] [--oneshots 1000] [--model-dir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

RATE = 44_100


def _forbid(module, *names):
    """Make these functions of ``module`` raise, and return a restore callable."""
    saved = {name: getattr(module, name) for name in names}

    def refuse(*args, **kwargs):
        raise AssertionError("a file was read during a sync that should not read any")

    for name in names:
        setattr(module, name, refuse)
    return lambda: [setattr(module, name, fn) for name, fn in saved.items()]


def unchanged(work: Path, files: int) -> dict:
    import pyarrow as pa

    from engine import stages
    from engine.config import Settings
    from engine.library import Library
    from engine.store import Store

    root = work / "Samples"
    started = time.perf_counter()
    header = None
    rows = {"id": [], "path": [], "size": [], "mtime": []}
    for i in range(files):
        folder = root / f"pack{i // 200:04d}"
        if i % 200 == 0:
            folder.mkdir(parents=True)
        path = folder / f"hit{i:06d}.wav"
        if header is None:  # every file: the same tiny wav with its index in the last frames
            sf.write(str(path), np.zeros(64, np.float32), RATE, subtype="PCM_16")
            header = path.read_bytes()[:-8]
        path.write_bytes(header + i.to_bytes(8, "little"))
        stat = path.stat()
        rows["id"].append(hashlib.sha256(path.read_bytes()).hexdigest())
        rows["path"].append(str(path))
        rows["size"].append(stat.st_size)
        rows["mtime"].append(stat.st_mtime)
    generate_s = time.perf_counter() - started

    data = work / "data"
    store = Store(data)
    n = len(rows["id"])
    tracks = pa.table({"id": rows["id"], "filename": [Path(p).name for p in rows["path"]],
                       "storage": ["referenced"] * n, "path": rows["path"], "format": ["wav"] * n,
                       "file_size": rows["size"], "file_mtime": rows["mtime"], "sample_rate": [RATE] * n,
                       "channels": [1] * n, "duration": [64 / RATE] * n, "analysed_duration": [64 / RATE] * n,
                       "truncated": [False] * n})
    features = pa.table({"track_id": rows["id"], "spectral_centroid": [0.0] * n, "feature_version": [1] * n})
    sources = pa.table({"path": rows["path"], "track_id": rows["id"], "file_size": rows["size"],
                        "file_mtime": rows["mtime"]})
    with store.db.transaction("bulk-insert the benchmark library") as conn:
        for name, table in (("tracks", tracks), ("features", features), ("sources", sources)):
            conn.register(f"bench_{name}", table)
            cols = ", ".join(table.column_names)
            conn.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM bench_{name}")  # noqa: S608
            conn.unregister(f"bench_{name}")
        conn.execute("INSERT INTO folders (path, watched) VALUES (?, false)", [str(root)])
    store.close()

    with Library(Settings(data_dir=data, clap_model=str(work / "no-model"))) as library:
        restore = _forbid(stages.audio, "hash_file", "decode")
        try:
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                report = library.sync()
                timings.append(time.perf_counter() - started)
        finally:
            restore()
    assert report.unchanged == files and not report.added and not report.missing, report.to_dict()
    return {"files": files, "generate_s": round(generate_s, 1), "sync_s": [round(t, 2) for t in timings],
            "unchanged": report.unchanged}


def _one_shots(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        seconds = rng.uniform(0.03, 0.3)
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        tone = np.sin(2 * np.pi * rng.uniform(40, 4000) * t) * np.exp(-t * rng.uniform(5, 60))
        noise = rng.standard_normal(n) * np.exp(-t * rng.uniform(20, 200)) * rng.uniform(0, 0.5)
        sf.write(str(folder / f"shot{i:05d}.wav"), (0.5 * tone + noise).astype(np.float32), RATE, subtype="PCM_16")


def moved(work: Path, count: int) -> dict:
    from engine import stages
    from engine.config import Settings
    from engine.library import Library

    root = work / "Library"
    _one_shots(root / "Pack", count, seed=1)
    with Library(Settings(data_dir=work / "data-moved", clap_model=str(work / "no-model"))) as library:
        started = time.perf_counter()
        first = library.add_folder(root)
        import_s = time.perf_counter() - started
        assert len(first.added) == count, first.to_dict()["failed"][:3]
        (root / "Vendor").mkdir()
        os.rename(root / "Pack", root / "Vendor" / "Pack")
        restore = _forbid(stages.audio, "decode")
        try:
            started = time.perf_counter()
            report = library.sync()
            sync_s = time.perf_counter() - started
        finally:
            restore()
    assert len(report.moved) == count and not report.missing and not report.added, report.to_dict()
    return {"tracks": count, "first_import_s_no_model": round(import_s, 1), "moved_sync_s": round(sync_s, 2),
            "moved": len(report.moved)}


def oneshots(work: Path, count: int, model_dir: Path, batch: int) -> dict:
    import torch

    from engine.clap import get_embedder
    from engine.config import Settings
    from engine.features import warm_up
    from engine.library import Library
    from engine.windows import WINDOW_SAMPLES

    if not (model_dir / "config.json").exists():
        from bench_clap import build_full_size

        build_full_size(model_dir)
    _one_shots(work / "OneShots", count, seed=2)
    settings = Settings(data_dir=work / "data-oneshots", clap_model=str(model_dir), clap_device="cpu",
                        clap_batch_windows=batch)
    embedder = get_embedder(settings)
    warm_up()
    windows = np.random.default_rng(3).standard_normal((batch, WINDOW_SAMPLES)).astype(np.float32) * 0.1
    embedder.embed_audio(windows)  # warm
    started = time.perf_counter()
    for _ in range(4):
        embedder.embed_audio(windows)
    model_ms = (time.perf_counter() - started) * 1000 / (4 * batch)
    with Library(settings) as library:
        started = time.perf_counter()
        report = library.add_folder(work / "OneShots", watch=False)
        wall = time.perf_counter() - started
        pending = library.stats()["pending_embeddings"]
    assert len(report.added) == count and not report.failed and pending == 0, (report.failed[:3], pending)
    return {"files": count, "wall_s": round(wall, 1), "files_per_s": round(count / wall, 2),
            "ms_per_file": round(wall * 1000 / count, 1), "model_ms_per_window": round(model_ms, 1),
            "pipeline_overhead_pct": round(100 * (wall * 1000 / count - model_ms) / model_ms, 1),
            "precision": embedder.precision, "batch_windows": batch, "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="unchanged,moved,oneshots")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--moved", type=int, default=1_000)
    parser.add_argument("--oneshots", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--model-dir", type=Path, help="reuse a full-size model built earlier")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = Path(tmp)
        parts = args.parts.split(",")
        if "unchanged" in parts:
            results["unchanged"] = unchanged(work / "u", args.files)
            print(json.dumps(results["unchanged"]), flush=True)
            shutil.rmtree(work / "u")
        if "moved" in parts:
            results["moved"] = moved(work / "m", args.moved)
            print(json.dumps(results["moved"]), flush=True)
        if "oneshots" in parts:
            results["oneshots"] = oneshots(work / "o", args.oneshots, args.model_dir or work / "model", args.batch)
            print(json.dumps(results["oneshots"]), flush=True)
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
