"""Benchmark the approximate first pass (engine/ann.py) against the exact scan (engine/search.py).

For each library size (default 100k and 1M rows of 512-d unit float32
vectors) and each kind of generated data, in a fresh child process (so RSS
figures are its own), this

1. generates a clustered library: ``nested`` (default) puts 200 Gaussian
   clusters on the unit sphere with log-normal sizes, each made of groups of
   about 20 variations (one sound's edits, a sample pack's takes), each row a
   group centre plus noise; ``flat`` is the same 200 clusters with every row
   straight around its cluster centre (no finer structure: a row's neighbours
   beyond the first are all about as close, the hard case for any index);
2. draws two query sets near the data, never copies of it: ``near`` (a random
   row plus noise, cosine ~0.95 to it: "more like this sound") and ``far``
   (a random row plus a lot of noise, cosine ~0.6 to it and ~0.5 to its
   best matches, like a text prompt that lands between sounds);
3. computes the exact float32 top-20 of every query (ground truth);
4. builds ``ApproximateIndex`` (build time split into k-means and
   assignment, its own bytes, RSS growth and the peak RSS above the start
   during the build);
5. times the engine's exact search (its float16 first pass, as in
   ``engine.search._candidates``, plus float32 rescoring to the top 20)
   against ANN search + rescoring to the top 20, query by query in turn, so
   a burst of load on this shared machine hits both alike;
6. for each nprobe in the sweep times ANN search + exact float32 rescoring of
   the candidates to the top 10 and the top 20, and measures recall@10 and
   recall@20 against the exact top lists; also the mean score by which the
   10th ANN result falls short of the exact 10th ("what a miss costs");
7. times a search restricted to 10 % and 0.5 % of the rows (``allowed``
   mask), removal and addition of 1,000 rows, and checks removed rows never
   come back and added rows are found.

Timings are per single query (the engine answers one query at a time), in
milliseconds, p50 / p95 over the query set; each timing pass runs
``--repeat`` times and the pass with the lowest p50 is reported beside every
pass's own p50 and the 1-minute load average measured with it: another
process on this 2-core machine inflates a pass, so a pass whose load average
is above 2 should be read with care (the JSON keeps them all).

The 10M extrapolation (printed with the results) scales the 1M measurement:
memory linearly in rows; build by its two parts (k-means ~ sample x lists,
assignment ~ rows x lists); search by its two parts (lists centroid products,
nprobe x rows/lists codes scanned).

Usage:

    .venv/bin/python bench/bench_ann.py [--sizes 100000,1000000] [--data nested,flat] [--dim 512]
        [--queries 1000] [--exact-queries 300] [--nprobes half,default,double] [--lists N] [--repeat 2] [--seed 0]
        [--out results.json]

``--nprobes`` takes a comma list of integers and/or ``default`` (engine.ann.nprobe_for),
``half`` and ``double`` of it. A 1M run takes about 10-15 minutes per data kind
on 2 cores and peaks at about 6 GB RSS.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CLUSTERS = 200
GROUP = 20  # rows per group of variations (nested data)
CLUSTER_SPREAD = 0.6  # noise norm around a cluster centre: cosine ~0.86 to it
GROUP_SPREAD = 0.4  # noise norm around a group centre: cosine ~0.93 to it
FLAT_SPREAD = 0.5  # flat data: noise norm around a cluster centre (cosine ~0.89)
NEAR_NOISE = 0.3  # query noise norm: cosine ~0.96 to the row it was drawn from
FAR_NOISE = 1.3  # cosine ~0.6 to that row
CHUNK = 100_000


# -- data --------------------------------------------------------------------

def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _noisy(rng: np.random.Generator, centres: np.ndarray, spread: float) -> np.ndarray:
    """Unit rows: ``centres`` plus isotropic Gaussian noise of expected norm ``spread``."""
    noise = rng.standard_normal(centres.shape, dtype=np.float32) * np.float32(spread / np.sqrt(centres.shape[1]))
    return _unit(centres + noise)


def clustered(n: int, dim: int, *, kind: str, seed: int) -> np.ndarray:
    """(n, dim) float32 unit rows, clustered as described in the module docstring."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((CLUSTERS, dim), dtype=np.float32))
    weights = rng.lognormal(0.0, 1.0, CLUSTERS)  # uneven categories: many drums, few drones
    weights /= weights.sum()
    if kind == "nested":
        groups = max(1, n // GROUP)
        group_cluster = rng.choice(CLUSTERS, size=groups, p=weights)
        parents = np.empty((groups, dim), dtype=np.float32)
        for start in range(0, groups, CHUNK):
            stop = min(groups, start + CHUNK)
            parents[start:stop] = _noisy(rng, centres[group_cluster[start:stop]], CLUSTER_SPREAD)
        labels, spread = rng.integers(groups, size=n), GROUP_SPREAD
    elif kind == "flat":
        parents, labels, spread = centres, rng.choice(CLUSTERS, size=n, p=weights), FLAT_SPREAD
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        out[start:stop] = _noisy(rng, parents[labels[start:stop]], spread)
    return out


def queries_near(data: np.ndarray, m: int, *, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data), size=m, replace=False)
    return _noisy(rng, data[rows].copy(), noise)


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact float32 top-``k`` (rows (m, k), scores (m, k)), best first, by chunks."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(data), CHUNK):
        scores = queries @ data[start : start + CHUNK].T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        scores = np.concatenate([best_scores, np.take_along_axis(scores, part, 1)], 1)
        rows = np.concatenate([best_rows, part + start], 1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_scores, best_rows = np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)
    return best_rows, best_scores


# -- measuring ---------------------------------------------------------------

def proc_status(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a phase's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values_ms: list[float]) -> dict:
    a = np.asarray(values_ms)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def timed_passes(run_one, queries: np.ndarray, repeat: int) -> dict:
    """Time ``run_one(query)`` per query, ``repeat`` passes; report the pass with the lowest
    p50 and each pass's p50 with its load average."""
    passes = []
    for _ in range(repeat):
        before = load()
        times = []
        for query in queries:
            start = time.perf_counter()
            run_one(query)
            times.append((time.perf_counter() - start) * 1e3)
        passes.append({**pct(times), "load_before": before, "load_after": load()})
    best = min(passes, key=lambda p: p["p50"])
    return {"p50": best["p50"], "p95": best["p95"],
            "passes": [{"p50": p["p50"], "p95": p["p95"], "load": [p["load_before"][0], p["load_after"][0]]}
                       for p in passes]}


def rescore(matrix: np.ndarray, rows: np.ndarray, query: np.ndarray, limit: int) -> np.ndarray:
    """The engine's second pass: exact float32 scores of ``rows``, best ``limit`` first."""
    exact = matrix[rows] @ query
    top = np.argsort(-exact, kind="stable")[:limit]
    return rows[top]


def recall(found: list[np.ndarray], truth: np.ndarray, k: int) -> float:
    return float(np.mean([np.intersect1d(f[:k], t[:k]).size / k for f, t in zip(found, truth)]))


def exact_candidates(coarse: np.ndarray, query: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray:
    """The engine's exact float16 first pass (engine.search._candidates, copied because its
    signature is changing with the storage rework): torch float16 matrix-vector product over
    every row, the ``limit``-th best score t, and every kept row scoring at least t - 2e
    (e = 2e-3, the float16 error bound) goes to the float32 rescoring."""
    import torch

    with torch.inference_mode():
        scores = torch.mv(torch.from_numpy(coarse), torch.from_numpy(query.astype(np.float16))).float()
        scores.masked_fill_(torch.from_numpy(~keep), float("-inf"))
        threshold = float(torch.topk(scores, limit, sorted=False).values.min())
        return torch.nonzero(scores >= threshold - 2 * 2e-3).flatten().numpy()


# -- one size, one data kind (child process) ---------------------------------

def run_child(n: int, kind: str, args) -> dict:
    from engine.ann import CANDIDATES_PER_RESULT, MIN_CANDIDATES, ApproximateIndex, nprobe_for

    result: dict = {"rows": n, "data": kind, "dim": args.dim, "load_start": load()}
    start = time.perf_counter()
    matrix = clustered(n, args.dim, kind=kind, seed=args.seed)
    coarse = matrix.astype(np.float16)  # what VectorIndex holds beside the float32 rows
    result["generate_s"] = round(time.perf_counter() - start, 1)
    query_sets = {"near": queries_near(matrix, args.queries, noise=NEAR_NOISE, seed=args.seed + 1),
                  "far": queries_near(matrix, args.queries, noise=FAR_NOISE, seed=args.seed + 2)}
    truth = {}
    for name, queries in query_sets.items():
        rows, scores = exact_top(matrix, queries, 20)
        truth[name] = rows
        result[f"{name}_exact_scores"] = {"top1_mean": round(float(scores[:, 0].mean()), 3),
                                          "top10_mean": round(float(scores[:, 9].mean()), 3),
                                          "top20_mean": round(float(scores[:, 19].mean()), 3)}

    # Build.
    gc.collect()
    rss_before = proc_status("VmRSS")
    reset_peak()
    load_before = load()
    start = time.perf_counter()
    index = ApproximateIndex.build(matrix, seed=args.seed, lists=args.lists)
    build_s = time.perf_counter() - start
    gc.collect()
    parts = {f"{part}_seconds": round(t, 1) for part, t in index.build_seconds.items()}
    result["build"] = {"seconds": round(build_s, 1), **parts, "lists": index.lists, "load": [load_before[0], load()[0]],
                       "index_bytes": index.memory_bytes, "index_mb": round(index.memory_bytes / 2**20, 1),
                       "rss_growth_mb": round(proc_status("VmRSS") - rss_before, 1),
                       "peak_rss_above_start_mb": round(proc_status("VmHWM") - rss_before, 1),
                       "float32_matrix_mb": round(matrix.nbytes / 2**20, 1)}
    print(json.dumps({"progress": f"{n} {kind} built", **result["build"]}), file=sys.stderr, flush=True)

    # The exact search as the engine runs it (float16 pass + float32 rescoring) against the ANN
    # pass + rescoring, top 20, timed query by query in turn so both see the same machine load.
    keep = np.ones(n, dtype=bool)
    k20 = max(CANDIDATES_PER_RESULT * 20, MIN_CANDIDATES)
    exact_q = query_sets["far"][: args.exact_queries]
    passes = []
    for _ in range(args.repeat):
        before, exact_ms, ann_ms = load(), [], []
        for q in exact_q:
            start = time.perf_counter()
            rescore(matrix, exact_candidates(coarse, q, keep, 20), q, 20)
            middle = time.perf_counter()
            rescore(matrix, index.search(q, k20), q, 20)
            exact_ms.append((middle - start) * 1e3)
            ann_ms.append((time.perf_counter() - middle) * 1e3)
        passes.append({"exact": pct(exact_ms), "ann": pct(ann_ms),
                       "median_speedup": round(float(np.median(np.array(exact_ms) / np.array(ann_ms))), 1),
                       "load": [before[0], load()[0]]})
    best = min(passes, key=lambda p: p["exact"]["p50"])
    result["exact_vs_ann_top20"] = {"queries": len(exact_q), **best, "passes": passes}
    print(json.dumps({"progress": f"{n} {kind} exact vs ann", **best}), file=sys.stderr, flush=True)

    # Search + rescoring, per nprobe.
    default = nprobe_for(index.lists)
    sweep = []
    for item in args.nprobes.split(","):
        value = {"default": default, "half": max(1, default // 2), "double": min(index.lists, default * 2)}.get(item)
        sweep.append(int(item) if value is None else value)
    result["default_nprobe"] = default
    result["ann"] = []
    for nprobe in dict.fromkeys(sweep):
        entry: dict = {"nprobe": nprobe}
        for name, queries in query_sets.items():
            for limit in (10, 20):
                k = max(CANDIDATES_PER_RESULT * limit, MIN_CANDIDATES)
                found = [rescore(matrix, index.search(q, k, nprobe=nprobe), q, limit) for q in queries]
                got = {f"recall@{limit}": round(recall(found, truth[name], limit), 4), "candidates": k}
                if limit == 10:
                    tenth = np.array([matrix[f[9]] @ q if f.size >= 10 else -1.0 for f, q in zip(found, queries)])
                    best = np.array([matrix[t[9]] @ q for t, q in zip(truth[name], queries)])
                    got["mean_shortfall_of_10th_score"] = round(float(np.mean(best - tenth)), 5)
                    got["max_shortfall_of_10th_score"] = round(float(np.max(best - tenth)), 5)
                got.update(timed_passes(lambda q: rescore(matrix, index.search(q, k, nprobe=nprobe), q, limit),
                                        queries, args.repeat))
                entry[f"{name}_top{limit}"] = got
        result["ann"].append(entry)
        print(json.dumps({"progress": f"{n} {kind} nprobe {nprobe}",
                          **{key: {k2: v for k2, v in val.items() if k2 != "passes"}
                             for key, val in entry.items() if key != "nprobe"}}), file=sys.stderr, flush=True)

    # Filtered search: the mask as VectorIndex.top would build it.
    rng = np.random.default_rng(args.seed + 3)
    result["filtered"] = []
    queries = query_sets["near"]
    for share in (0.1, 0.005):
        allowed = rng.random(n) < share
        allowed_rows = np.flatnonzero(allowed)
        truth_f = exact_top(matrix[allowed_rows], queries, 10)[0]
        truth_f = allowed_rows[truth_f]
        k = MIN_CANDIDATES
        found = [rescore(matrix, index.search(q, k, allowed=allowed), q, 10) for q in queries]
        short = int(sum(f.size < 10 for f in found))
        result["filtered"].append({
            "share_allowed": share, "recall@10": round(recall(found, truth_f, 10), 4),
            "queries_with_fewer_than_10": short, "all_allowed": bool(all(allowed[f].all() for f in found)),
            **timed_passes(lambda q: rescore(matrix, index.search(q, k, allowed=allowed), q, 10), queries,
                           args.repeat)})

    # Changes: remove 1,000 rows that are some query's exact top hits, add 1,000 new rows.
    victims = np.unique(truth["near"][:, :3])[:1000]
    start = time.perf_counter()
    index.remove(victims)
    remove_ms = (time.perf_counter() - start) * 1e3
    leaked = sum(int(np.isin(index.search(q, 200), victims).any()) for q in queries)
    fresh = queries_near(matrix, 1000, noise=NEAR_NOISE, seed=args.seed + 4)
    fresh_rows = np.arange(n, n + 1000)
    start = time.perf_counter()
    index.add(fresh_rows, fresh)
    add_ms = (time.perf_counter() - start) * 1e3
    found_new = np.mean([row in index.search(vec, 10) for row, vec in zip(fresh_rows, fresh)])
    result["changes"] = {"remove_1000_ms": round(remove_ms, 1), "queries_returning_a_removed_row": leaked,
                         "add_1000_ms": round(add_ms, 1), "added_rows_found_by_their_own_vector": float(found_new)}
    result["load_end"] = load()
    return result


# -- parent ------------------------------------------------------------------

def extrapolate(one_million: dict, rows: int = 10_000_000) -> dict:
    """Scale a 1M measurement to ``rows`` (see the module docstring)."""
    from engine.ann import lists_for, nprobe_for

    n = one_million["rows"]
    dim = one_million["dim"]
    lists_n, lists_big = one_million["build"]["lists"], lists_for(rows)
    nprobe_n, nprobe_big = nprobe_for(lists_n), nprobe_for(lists_big)
    code = dim + 8  # SQ8 code and int64 id per row
    index_bytes = rows * code + lists_big * dim * 4 + rows // 8
    # Build: k-means work ~ sample x lists x iterations with sample = 50 x lists, so ~ lists^2;
    # the assignment pass ~ rows x lists.
    kmeans_factor = (lists_big / lists_n) ** 2
    assign_factor = (rows * lists_big) / (n * lists_n)
    build = one_million["build"]
    build_big_s = build["train_seconds"] * kmeans_factor + build["add_seconds"] * assign_factor
    # Search: codes scanned nprobe x rows/lists; centroid products lists x dim.
    scan_factor = (nprobe_big * rows / lists_big) / (nprobe_n * n / lists_n)
    default = min(one_million["ann"], key=lambda a: abs(a["nprobe"] - nprobe_n))  # the default, if measured
    scan_factor *= nprobe_n / default["nprobe"]
    p50 = default["far_top20"]["p50"]
    return {
        "rows": rows, "lists": lists_big, "nprobe": nprobe_big,
        "index_gb": round(index_bytes / 1e9, 2),
        "raw_float32_gb": round(rows * dim * 4 / 1e9, 1), "raw_float16_gb": round(rows * dim * 2 / 1e9, 1),
        "build_minutes": round(build_big_s / 60, 0),
        "codes_scanned_per_query": int(nprobe_big * rows / lists_big),
        "search_p50_ms_upper_estimate": round(p50 * scan_factor, 1),
        "exact_scan_p50_ms_linear": round(one_million["exact_vs_ann_top20"]["exact"]["p50"] * rows / n, 0),
        "reasoning": (
            "memory: SQ8 codes + ids scale with rows; build: the 1M k-means time scales with lists^2 "
            f"(x{kmeans_factor:.0f}) and the 1M assignment pass with rows x lists (x{assign_factor:.0f}); "
            f"search: the codes scanned per query scale by x{scan_factor:.1f} with nprobe = lists/64, an "
            "upper estimate because per-query overheads do not grow. Recall at 10M is not extrapolated; "
            "keep nprobe at lists/64 and check it with this bench on a real 10M library. The caller's own "
            "matrices (float32 + float16) would not fit a 24 GB machine at 10M: rescoring would read the "
            "candidates' float32 rows from a memory-mapped file (100 rows a query) or rescore in float16 "
            "with the engine's error band."),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--data", default="nested,flat", help="comma list of nested, flat")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=300, help="queries timed on the exact scan")
    parser.add_argument("--nprobes", default="half,default,double")
    parser.add_argument("--lists", type=int, help="IVF cells (default: engine.ann.lists_for(rows))")
    parser.add_argument("--repeat", type=int, default=2, help="timing passes per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--_child", nargs=2, metavar=("ROWS", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._child:
        print(json.dumps(run_child(int(args._child[0]), args._child[1], args)))
        return

    import faiss

    report: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": np.__version__,
                    "faiss": faiss.__version__, "uptime_start": subprocess.run(
                        ["uptime"], capture_output=True, text=True).stdout.strip()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "_child"},
        "runs": [],
    }
    passthrough = ["--dim", str(args.dim), "--queries", str(args.queries), "--exact-queries",
                   str(args.exact_queries), "--nprobes", args.nprobes, "--repeat", str(args.repeat),
                   "--seed", str(args.seed), *(["--lists", str(args.lists)] if args.lists else [])]
    for size in [int(s) for s in args.sizes.split(",")]:
        for kind in args.data.split(","):
            child = subprocess.run([sys.executable, __file__, "--_child", str(size), kind, *passthrough],
                                   stdout=subprocess.PIPE, text=True, check=True)
            report["runs"].append(json.loads(child.stdout.strip().splitlines()[-1]))
            if args.out:  # write as we go: a 1M run is long
                args.out.write_text(json.dumps(report, indent=2))
    millions = [r for r in report["runs"] if r["rows"] == 1_000_000 and r["data"] == "nested"]
    if millions:
        report["extrapolation_10m"] = extrapolate(millions[0])
    report["machine"]["uptime_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
