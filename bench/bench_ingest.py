"""Whole-pipeline ingest speed with CLAP embeddings, on a full-size random model.

Builds the real architecture of laion/larger_clap_music_and_speech with random
weights (bench_clap.build_full_size), writes a folder of music-like files,
and times ``Library.ingest`` end to end (hash, decode, resample, features,
windows, CLAP, DuckDB) per precision, each in a fresh process after the
model is loaded and librosa's JIT is warm. Usage:

    .venv/bin/python bench/bench_ingest.py [--files 8] [--seconds 90] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from engine.config import Settings
from engine.clap import get_embedder
from engine.features import warm_up
from engine.library import Library

def hwm():
    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024

settings = Settings(data_dir=Path({data!r}), clap_model={model!r}, clap_device="cpu",
                    clap_precision={precision!r}, clap_batch_windows={batch})
started = time.perf_counter()
embedder = get_embedder(settings)
load_s = time.perf_counter() - started
warm_up()
with Library(settings) as library:
    started = time.perf_counter()
    results = library.ingest([Path({folder!r})])
    wall = time.perf_counter() - started
    windows = library._store.db.frame("count", "SELECT sum(len(starts_s)) AS n FROM window_sets")["n"][0]
    pending = library._store.embeddings.count_pending(embedder.model_id, 1)
print(json.dumps({{"wall_s": wall, "load_s": load_s, "windows": int(windows), "pending": int(pending),
                  "statuses": sorted(r.status for r in results), "peak_mb": hwm(),
                  "precision": embedder.precision}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precisions", default="bfloat16,float32")
    parser.add_argument("--model-dir", type=Path, help="reuse a model built earlier")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from bench_clap import build_full_size
    from bench_decode import music_like

    from tests.fixtures_audio import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = args.model_dir or tmp / "model"
        if not (model_dir / "config.json").exists():
            print("building the full-size random model ...", flush=True)
            build_full_size(model_dir)
        folder = tmp / "music"
        for i in range(args.files):
            ext = "mp3" if i % 2 else "wav"
            signal = music_like(args.seconds + i)  # distinct content per file
            write_audio(folder / f"track{i:02d}.{ext}", signal, 44_100)
        audio_s = sum(args.seconds + i for i in range(args.files))
        results = {"files": args.files, "audio_s": audio_s, "runs": {}}
        for precision in args.precisions.split(","):
            data = tmp / f"data-{precision}"
            code = CHILD.format(repo=str(REPO), data=str(data), model=str(model_dir), precision=precision,
                                batch=args.batch, folder=str(folder))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            run = json.loads(out.stdout.strip().splitlines()[-1])
            run["x_realtime"] = audio_s / run["wall_s"]
            run["windows_per_s"] = run["windows"] / run["wall_s"]
            results["runs"][precision] = run

    print(f"\n{args.files} files, {audio_s:.0f} s of music (wav and mp3, 44.1 kHz stereo)\n")
    print("| precision | wall | x real time | windows/s | model load | peak RSS |")
    print("|---|---|---|---|---|---|")
    for precision, run in results["runs"].items():
        print(f"| {run['precision']} | {run['wall_s']:.1f} s | {run['x_realtime']:.0f}x | "
              f"{run['windows_per_s']:.1f} | {run['load_s']:.1f} s | {run['peak_mb']:.0f} MB |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
