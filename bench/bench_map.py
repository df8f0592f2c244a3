"""Benchmark the sound map projection (engine/soundmap.py) on synthetic CLAP-like embeddings.

For each library size this generates clustered 512-d unit vectors (``--clusters`` Gaussian clusters on the
sphere: a random unit centre per cluster, members = centre + noise, renormalised), then times ``project`` with the
requested method(s) in this process, and reports how well the layout keeps clusters apart (the share of each
point's 10 nearest map neighbours that come from its own cluster, on a 2000-point sample).

UMAP needs umap-learn, which the main venv does not have; run it from a venv that has it, e.g.

    python3.11 -m venv /tmp/mapvenv && /tmp/mapvenv/bin/pip install numpy==2.4.6 umap-learn
    PYTHONPATH=. /tmp/mapvenv/bin/python bench/bench_map.py --tracks 10000 --method umap

The first UMAP call in a process includes numba's compilation (about a minute here, most of it pynndescent's, which
UMAP only uses above 4096 points); ``--warmup`` runs a 5000-point UMAP first so the timed runs exclude it, and reports
that warm-up's time separately. Each run reports a sha256 of its coordinates, to compare runs across processes.

Usage:
    python bench/bench_map.py --tracks 10000 100000 --method pca --out results.json
    python bench/bench_map.py --tracks 10000 --method umap --pca-dims none --max-fit none
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import soundmap  # noqa: E402


def clustered_unit_vectors(n: int, *, dims: int = 512, clusters: int = 50, spread: float = 0.04,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dims) float32 unit rows in ``clusters`` Gaussian clusters on the sphere, and the (n,) cluster labels.

    ``spread`` is the per-dimension noise sigma: 0.04 * sqrt(512) ~ 0.9, so a member's cosine to its centre is
    ~0.75 and to another cluster's member ~0, like distinct sound families in CLAP space."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, size=n)
    x = (centres[labels] + spread * rng.standard_normal((n, dims))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, labels


def cluster_purity(coords: np.ndarray, labels: np.ndarray, *, sample: int = 2000, k: int = 10) -> float:
    """Mean share of a point's k nearest map neighbours (over all points) in its own cluster, for a sample."""
    rng = np.random.default_rng(1)
    idx = rng.choice(len(coords), size=min(sample, len(coords)), replace=False)
    c = coords.astype(np.float64)
    hits = 0.0
    for start in range(0, len(idx), 100):  # blocks keep the (block, n) distance matrix small at 100k
        rows = idx[start:start + 100]
        d2 = ((c[rows, None, :] - c[None, :, :]) ** 2).sum(-1)
        d2[np.arange(len(rows)), rows] = np.inf
        nearest = np.argpartition(d2, k, axis=1)[:, :k]
        hits += (labels[nearest] == labels[rows, None]).sum()
    return float(hits / (len(idx) * k))


def _none_or_int(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--method", nargs="+", default=["pca"], choices=soundmap.METHODS)
    parser.add_argument("--pca-dims", type=_none_or_int, default=soundmap.UMAP_PCA_DIMS,
                        help="UMAP: PCA dimensions first (int or 'none')")
    parser.add_argument("--max-fit", type=_none_or_int, default=soundmap.UMAP_MAX_FIT,
                        help="UMAP: fit on a sample of this many, place the rest (int or 'none')")
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per size (checks determinism if > 1)")
    parser.add_argument("--warmup", action="store_true", help="run a small UMAP first (numba compilation)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    result = {"machine": {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count()},
              "umap_installed": soundmap.umap_available(), "pca_dims": args.pca_dims, "max_fit": args.max_fit,
              "runs": []}
    if soundmap.umap_available():
        import warnings

        import numba
        import pynndescent
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)
            import umap
        result["machine"].update(umap=umap.__version__, numba=numba.__version__, pynndescent=pynndescent.__version__)
    if args.warmup and soundmap.umap_available() and ("umap" in args.method or "auto" in args.method):
        x, _ = clustered_unit_vectors(5000, clusters=args.clusters, seed=1)
        start = time.perf_counter()
        soundmap.project(x, method="umap", pca_dims=args.pca_dims, max_fit=args.max_fit)
        result["warmup_umap_5000_s"] = round(time.perf_counter() - start, 2)

    for n in args.tracks:
        x, labels = clustered_unit_vectors(n, clusters=args.clusters)
        for method in args.method:
            times, first = [], None
            for _ in range(args.repeat):
                start = time.perf_counter()
                coords = soundmap.project(x, method=method, pca_dims=args.pca_dims, max_fit=args.max_fit)
                times.append(round(time.perf_counter() - start, 3))
                if first is None:
                    first = coords
            run = {"tracks": n, "method": method,
                   "resolved": soundmap.choose_method(n) if method == "auto" else method,
                   "seconds": times, "cluster_purity_k10": round(cluster_purity(coords, labels), 3),
                   "finite": bool(np.isfinite(coords).all()), "in_range": bool(np.abs(coords).max() <= 1.0),
                   "sha256": hashlib.sha256(coords.tobytes()).hexdigest()[:16]}
            if args.repeat > 1:
                run["bit_identical"] = bool(np.array_equal(first, coords))
            result["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)

    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
