"""Benchmark near-duplicate grouping (engine/duplicates.py) on a synthetic library.

Builds ``--tracks`` unit vectors of ``--dim`` dimensions in families (a family
centre plus spread, pairwise cosine about 0.75 inside a family, far below a
near-duplicate threshold, like a pack of different kicks), durations
log-uniform 0.2-300 s, then plants near-duplicates: 2 % of the originals get 1
to 3 copies (centre + small noise, cosine about 0.995, duration within 50 ms)
and 0.2 % get a copy of twice the duration (a loop played twice: same vector,
not to be grouped, except below 0.5 s where the doubling is within the
duration rule's 0.25 s slack). It then times, in this process:

1. ``near_pairs`` alone (the blocked matrix products), and
2. ``group`` end to end (pairs, duration rule, complete-linkage union-find, Group objects),

and checks the planted groups came back exactly. Peak RSS is the process's
maximum (``resource.getrusage``), with the figure after building the data for
comparison; on a shared machine the timings are rough.

Usage:

    .venv/bin/python bench/bench_duplicates.py [--tracks 100000] [--dim 512] [--threshold 0.97]
        [--block 2048] [--seed 0] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.duplicates import DEFAULT_BLOCK, DEFAULT_THRESHOLD, durations_compatible, group, near_pairs  # noqa: E402

FAMILY_SIZE = 50
FAMILY_SPREAD = 0.6  # noise norm relative to the centre: cosine to the centre ~0.86, between members ~0.74
COPY_NOISE = 0.1  # cosine to the original ~0.995
COPY_SHARE, LOOP_SHARE = 0.02, 0.002
CHUNK = 8192


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def unit_rows(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def build(tracks: int, dim: int, seed: int):
    """ids, vectors (tracks, dim) float32, durations (tracks,), planted copies (list of sets of row indices)
    and planted loops (list of (source row, loop row))."""
    rng = np.random.default_rng(seed)
    n_copies_per = rng.integers(1, 4, size=max(1, int(tracks * COPY_SHARE)))
    originals = tracks - int(n_copies_per.sum()) - int(tracks * LOOP_SHARE)
    centres = unit_rows(rng.standard_normal((max(1, originals // FAMILY_SIZE), dim), dtype=np.float32))
    vectors = np.empty((tracks, dim), dtype=np.float32)
    for s in range(0, originals, CHUNK):  # in chunks, so no float64 (tracks, dim) temporary
        e = min(originals, s + CHUNK)
        family = rng.integers(len(centres), size=e - s)
        noise = rng.standard_normal((e - s, dim), dtype=np.float32) * (FAMILY_SPREAD / np.sqrt(dim))
        vectors[s:e] = unit_rows(centres[family] + noise)
    durations = np.exp(rng.uniform(np.log(0.2), np.log(300.0), tracks))
    sources = rng.choice(originals, size=len(n_copies_per) + int(tracks * LOOP_SHARE), replace=False)
    planted, row = [], originals
    for source, count in zip(sources, n_copies_per):
        members = {int(source)}
        for _ in range(count):
            noise = rng.standard_normal(dim, dtype=np.float32) * (COPY_NOISE / np.sqrt(dim))
            vectors[row] = vectors[source] + noise
            vectors[row] /= np.linalg.norm(vectors[row])
            durations[row] = durations[source] + rng.uniform(-0.05, 0.05)
            members.add(row)
            row += 1
        planted.append(members)
    loops = []
    for source in sources[len(n_copies_per):]:  # loops played twice: same vector, double length
        vectors[row], durations[row] = vectors[source], 2 * durations[source]
        loops.append((int(source), row))
        row += 1
    assert row == tracks
    return [f"t{k:07d}" for k in range(tracks)], vectors, durations, planted, loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--block", type=int, default=DEFAULT_BLOCK)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    start = time.perf_counter()
    ids, vectors, durations, planted, loops = build(args.tracks, args.dim, args.seed)
    build_s = time.perf_counter() - start
    rss_built = peak_rss_mb()

    start = time.perf_counter()
    i, j, _ = near_pairs(vectors, threshold=args.threshold, block=args.block)
    pairs_s = time.perf_counter() - start

    start = time.perf_counter()
    groups = group(ids, vectors, durations, threshold=args.threshold, block=args.block)
    group_s = time.perf_counter() - start

    found = {frozenset(g.ids) for g in groups}
    expected = {frozenset(ids[k] for k in members) for members in planted}
    # A loop of a one-shot under 0.25 s, played twice, is within the duration rule's absolute slack: grouped.
    short_loops = {frozenset((ids[a], ids[b])) for a, b in loops if durations_compatible(durations[a], durations[b])}
    report = {
        "tracks": args.tracks,
        "dim": args.dim,
        "threshold": args.threshold,
        "block": args.block,
        "build_s": round(build_s, 2),
        "near_pairs_s": round(pairs_s, 2),
        "group_s": round(group_s, 2),
        "pairs_found": int(len(i)),
        "groups": len(groups),
        "grouped_tracks": sum(len(g.ids) for g in groups),
        "planted_groups": len(expected),
        "planted_groups_found_exactly": len(found & expected),
        "planted_loops": len(loops),
        "loops_grouped": len(found & {frozenset((ids[a], ids[b])) for a, b in loops}),
        "loops_within_duration_slack": len(short_loops),
        "unexpected_groups": len(found - expected - short_loops),
        "rss_after_build_mb": round(rss_built),
        "peak_rss_mb": round(peak_rss_mb()),
        "vectors_mb": round(vectors.nbytes / 2**20),
        "machine": {"nproc": os.cpu_count(), "loadavg": [round(v, 2) for v in os.getloadavg()],
                    "python": platform.python_version(), "numpy": np.__version__},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
