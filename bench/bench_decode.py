"""Decode + features speed per format, and peak memory for a long file.

Usage: .venv/bin/python bench/bench_decode.py [--seconds 180] [--long-seconds 600] [--repeats 3]

Speed is measured in this process after librosa's first-call JIT has run
once (warm_up), as it would be for every file after the first. Peak memory
is measured in a fresh subprocess per format (VmHWM of that process,
imports included).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import audio  # noqa: E402
from engine.features import compute_features, warm_up  # noqa: E402
from tests.fixtures_audio import write_audio  # noqa: E402

RATE = 44_100


def music_like(seconds: float, rate: int = RATE) -> np.ndarray:
    """Stereo: a 124 BPM kick/hat pattern over a chord with slow noise swells."""
    rng = np.random.default_rng(7)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) * 0.08
    out = chord + 0.02 * rng.standard_normal(n) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.1 * t))
    beat = 60 / 124
    kick = np.sin(2 * np.pi * 60 * np.arange(int(0.15 * rate)) / rate) * np.exp(-np.arange(int(0.15 * rate)) / 2000)
    for start in np.arange(0, seconds - 0.2, beat):
        i = int(start * rate)
        out[i : i + len(kick)] += 0.6 * kick
    left = out.astype(np.float32)
    right = np.roll(left, 200)
    return np.stack([left, right], axis=1)


def time_one(path: Path, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        decoded = audio.decode(path, max_duration_s=600)
        compute_features(samples=decoded.at_rate(audio.FEATURE_RATE), sample_rate=audio.FEATURE_RATE)
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory(path: Path) -> dict:
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        # VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the
        # forking parent's peak.
        "hwm = lambda: int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
        "from engine import audio; from engine.features import compute_features, warm_up\n"
        "warm_up(); base = hwm()\n"
        "d = audio.decode(__import__('pathlib').Path(%r), max_duration_s=600)\n"
        "d.at_rate(48000)\n"
        "compute_features(samples=d.at_rate(audio.FEATURE_RATE), sample_rate=audio.FEATURE_RATE)\n"
        "print(base, hwm())\n"
    ) % (str(Path(__file__).resolve().parents[1]), str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"baseline_mb": int(out[0]) / 1024, "peak_mb": int(out[1]) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--long-seconds", type=float, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    start = time.perf_counter()
    warm_up()
    jit_s = time.perf_counter() - start
    results = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "jit_warm_up_s": jit_s,
               "formats": {}, "long_file": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        signal = music_like(args.seconds)
        for ext in ("wav", "flac", "mp3", "m4a"):
            path = write_audio(tmp / f"track.{ext}", signal, RATE)
            seconds = time_one(path, args.repeats)
            results["formats"][ext] = {"seconds": seconds, "x_realtime": args.seconds / seconds,
                                       "mb": path.stat().st_size / 1e6}
        long_signal = music_like(args.long_seconds)
        for ext in ("wav", "mp3"):
            path = write_audio(tmp / f"long.{ext}", long_signal, RATE)
            results["long_file"][ext] = peak_memory(path)

    print(f"librosa JIT warm-up in this process: {jit_s:.2f} s (once per process)")
    print(f"\n| format | {args.seconds:.0f} s track, decode + features | x real time | file MB |")
    print("|---|---|---|---|")
    for ext, r in results["formats"].items():
        print(f"| {ext} | {r['seconds'] * 1000:.0f} ms | {r['x_realtime']:.0f}x | {r['mb']:.1f} |")
    print(f"\n| {args.long_seconds:.0f} s stereo file | RSS after imports | peak RSS |")
    print("|---|---|---|")
    for ext, r in results["long_file"].items():
        print(f"| {ext} | {r['baseline_mb']:.0f} MB | {r['peak_mb']:.0f} MB |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
