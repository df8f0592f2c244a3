"""Benchmark search over a synthetic library: bulk build, index load, in-memory index vs DuckDB scans, end to end.

For each library size (default 10k, 100k, 1M tracks) this

1. builds a synthetic library in a temporary data directory through
   ``Store`` (so the real migrations run) with pyarrow bulk inserts into
   tracks, features, track_embeddings and window_sets (one window per started
   10 s of a track, at most --max-windows, default 6; random unit float32
   vectors near a per-track direction, durations 0.2-300 s log-uniform,
   tempo 60-180 BPM or NULL for 30 %, formats wav/mp3/flac/m4a);
2. reopens it without a vector cache (``traum.duckdb.vectors/``, removed
   first) and times the first ``VectorIndex.sync()``: a load from DuckDB that
   writes the cache, as a library's first start does; at the end of the phase
   it times the old load path (one arrow table, ``_Vectors.append``) in parts;
3. times ``VectorIndex.top`` (exact top-20) for random unit queries, with no
   filter and with a duration + tempo filter, with the approximate shortlist
   (engine.shortlist) off; then lets the shortlist build (in its background
   thread) and times the same queries through it (keys ``*_shortlist_*``);
4. times DuckDB's own exact scan on the same file (``array_cosine_similarity``
   and ``array_inner_product``) and checks it returns the same top-20;
4b. in a fresh process ("warm" phase, with core) times the load from the
   cache (every later start), its memory, the first and later top-20 queries,
   and a load after 1,000 rows were rewritten behind the cache's back (read
   by key and appended to the cache);
5. times text queries end to end through ``Library.search_text(...)`` with a
   full-size randomly initialised CLAP (architecture of
   laion/larger_clap_music_and_speech, built by bench/bench_clap.py's
   ``build_full_size``) loaded through the production path, distinct prompts
   (text embedding computed) and a repeated prompt (cached), the parts of a
   search, and the next search after an ingest (journal replay).

Each phase runs in a fresh child process, so load times and RSS are its own.
When the end-to-end phase runs, the synthetic rows carry the CLAP model's id
(``local:clap@<hash>``) instead of "bench-model", because ``Library.search_text``
only reads rows of the loaded model; with ``--no-e2e`` they carry "bench-model".

Usage:

    .venv/bin/python bench/bench_search.py [--sizes 10000,100000,1000000] [--out results.json]
        [--e2e-sizes 10000,100000 | --no-e2e] [--model-dir DIR] [--queries 200] [--e2e-queries 50]
        [--work-dir DIR --keep] [--phases build,core,warm,e2e]
        [--duckdb-memory-limit 3GB] [--release-arrow-memory]

Without --model-dir a full-size random CLAP (about 780 MB) is built first in the
work directory; with --work-dir DIR --keep it stays in DIR/clap and the libraries
in DIR/lib_<n>, so a later run can pass --model-dir DIR/clap and
--phases core,e2e to skip the build (a 1M build takes about 5 minutes).

Memory: rss_after_index_mb / hwm_after_index_mb are the process right after the
first load and its peak during it (before any query); rss_after_queries_mb adds
the float16 matrix pages the first scan maps in. The later parts of the core
phase (the float32 copy for numpy and DuckDB's FLOAT[d] table, the old load
path) need several GB more: hwm_end_mb is theirs, not the index's.
--duckdb-memory-limit and --release-arrow-memory are non-production options
kept from before the vector cache (recorded in the JSON).

Timings: p50 / p95 in milliseconds unless marked. The machine's load average
is recorded per phase; on a shared machine other processes inflate p95.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TOP_K = 20
MAX_WINDOWS = 6  # windows per synthetic track: one per started 10 s of its duration, up to this
BENCH_MODEL_ID = "bench-model"
FORMATS = ("wav", "mp3", "flac", "m4a")
FORMAT_P = (0.35, 0.35, 0.2, 0.1)
CODECS = {"wav": "pcm_s16le", "mp3": "mp3", "flac": "flac", "m4a": "aac"}
BYTES_PER_S = {"wav": 176_400, "mp3": 40_000, "flac": 100_000, "m4a": 32_000}
# The filtered query: about a tenth of the library passes (see "filter keeps" in the table).
FILTER = {"min_duration": 30.0, "max_duration": 240.0, "min_tempo": 90.0, "max_tempo": 150.0}


# --------------------------------------------------------------------------- helpers


def proc_status(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 0)
    return float("nan")


def pct(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "min": round(float(a.min()), 2),
        "n": int(a.size),
    }


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered_rows(rng: np.random.Generator, n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """n unit rows around ``clusters`` centres (the same centres for a seed, chunk after chunk)."""
    shape = np.random.default_rng(seed + 10_007)
    centres = unit_rows(shape, clusters, dim)
    weights = shape.lognormal(0.0, 1.0, clusters)
    labels = rng.choice(clusters, size=n, p=weights / weights.sum())
    x = centres[labels] + 0.6 * unit_rows(rng, n, dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def track_ids(start: int, stop: int) -> list[str]:
    return [hashlib.sha256(f"bench-track-{i}".encode()).hexdigest() for i in range(start, stop)]


def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import duckdb

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_gb, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "loadavg_start": round(os.getloadavg()[0], 2),
        "fresh_memory_s_per_gib": fresh_memory_cost(),
    }


def fresh_memory_cost(mb: int = 256) -> float:
    """Seconds per GiB to touch memory the process has not used before.

    On a bare machine this is about 0.1-0.2 s/GiB; in a VM whose balloon
    reports free pages back to the host it can be over 2 s/GiB, which then
    dominates anything that allocates gigabytes (the 1M index load).
    """
    t = time.perf_counter()
    buf = np.ones(mb * 2**20 // 4, dtype=np.float32)
    elapsed = time.perf_counter() - t
    del buf
    return round(elapsed * 1024 / mb, 2)


def apply_memory_options(store, duckdb_memory_limit: str | None) -> None:
    """Optional, non-production: cap DuckDB's buffer pool (default 80 % of RAM) on this store's connection."""
    if duckdb_memory_limit:
        with store.db.lock:
            store.db._conn.execute(f"SET memory_limit = '{duckdb_memory_limit}'")
            store.db.memory_limit = duckdb_memory_limit  # what Database.memory_capped restores


def release_arrow_memory(enabled: bool) -> None:
    """Optional, non-production: hand memory pyarrow's allocator keeps after the index load back to the OS."""
    if enabled:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()


# --------------------------------------------------------------------------- phase 1: build


def build_library(data_dir: Path, n: int, dim: int, model_id: str, *, chunk: int, seed: int,
                  max_windows: int = MAX_WINDOWS, clusters: int = 0) -> dict:
    """Bulk-insert n synthetic tracks through pyarrow tables registered with DuckDB.

    A track has one window per started 10 s of its duration, up to ``max_windows``
    (random unit vectors near a per-track direction); its embedding is their
    normalised mean, as the engine computes it. The per-track directions are uniform
    on the sphere, or with ``clusters`` > 0 drawn around that many cluster centres
    (sizes log-normal, cosine about 0.85 to the centre), as real libraries are."""
    import pyarrow as pa

    from engine.features import FEATURE_VERSION
    from engine.store import Store
    from engine.vectors import PIPELINE_VERSION

    rng = np.random.default_rng(seed)
    t_open = time.perf_counter()
    store = Store(data_dir)  # runs the migrations
    open_s = time.perf_counter() - t_open
    now = time.time()
    started = time.perf_counter()
    gen_s = 0.0
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        m = hi - lo
        g0 = time.perf_counter()
        ids = track_ids(lo, hi)
        fmt = rng.choice(np.array(FORMATS), size=m, p=FORMAT_P)
        duration = np.exp(rng.uniform(np.log(0.2), np.log(300.0), size=m))
        tempo = rng.uniform(60.0, 180.0, size=m)
        no_tempo = rng.random(m) < 0.3
        counts = np.clip(np.ceil(duration / 10.0), 1, max_windows).astype(np.int64)
        centres = unit_rows(rng, m, dim) if not clusters else clustered_rows(rng, m, dim, clusters, seed)
        windows = np.repeat(centres, counts, axis=0) + 0.5 * unit_rows(rng, int(counts.sum()), dim)
        windows /= np.linalg.norm(windows, axis=1, keepdims=True)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        vectors = np.add.reduceat(windows, first, axis=0)
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        flat = vectors.astype("<f4").tobytes()  # stored as float32 bytes (migration 0004)
        embedding = pa.Array.from_buffers(pa.large_binary(), m, [
            None, pa.py_buffer(np.arange(0, (m + 1) * dim * 4, dim * 4, dtype=np.int64)), pa.py_buffer(flat)])
        windows = windows.astype("<f4")
        starts = [[10.0 * i for i in range(c)] for c in counts.tolist()]
        ends = [[min(10.0 * (i + 1), d) if c > 1 else min(d, 10.0) for i in range(c)]
                for c, d in zip(counts.tolist(), duration.tolist())]
        blobs = [windows[a : a + c].tobytes() for a, c in zip(first.tolist(), counts.tolist())]
        fmt_list = fmt.tolist()
        tracks = pa.table({
            "id": ids,
            "filename": [f"track_{lo + i:07d}.{f}" for i, f in enumerate(fmt_list)],
            "storage": pa.array(["managed"] * m),
            "path": [f"audio/{t[:2]}/{t}.{f}" for t, f in zip(ids, fmt_list)],
            "format": fmt_list,
            "codec": [CODECS[f] for f in fmt_list],
            "file_size": (duration * np.array([BYTES_PER_S[f] for f in fmt_list])).astype(np.int64) + 1024,
            "file_mtime": now - rng.uniform(0, 3e7, size=m),
            "sample_rate": rng.choice(np.array([44_100, 48_000], dtype=np.int32), size=m),
            "channels": rng.choice(np.array([1, 2], dtype=np.int32), size=m, p=(0.2, 0.8)),
            "duration": duration,
            "analysed_duration": np.minimum(duration, 600.0),
            "truncated": np.zeros(m, dtype=bool),
        })
        features = pa.table({
            "track_id": ids,
            "tempo": pa.array(tempo, mask=no_tempo),
            "spectral_centroid": rng.uniform(200.0, 6000.0, size=m),
            "zero_crossing_rate": rng.uniform(0.01, 0.3, size=m),
            "rms_energy": rng.uniform(0.01, 0.5, size=m),
            "feature_version": np.full(m, FEATURE_VERSION, dtype=np.int32),
        })
        track_emb = pa.table({
            "track_id": ids,
            "model_id": pa.array([model_id] * m),
            "pipeline_version": np.full(m, PIPELINE_VERSION, dtype=np.int32),
            "dim": np.full(m, dim, dtype=np.int32),
            "embedding": embedding,
            "window_count": counts.astype(np.int32),
        })
        window_sets = pa.table({
            "key": [f"{t}:{model_id}" for t in ids],
            "track_id": ids,
            "model_id": pa.array([model_id] * m),
            "dim": np.full(m, dim, dtype=np.int32),
            "starts_s": pa.array(starts, type=pa.list_(pa.float64())),
            "ends_s": pa.array(ends, type=pa.list_(pa.float64())),
            "embeddings": pa.array(blobs, type=pa.binary()),
        })
        gen_s += time.perf_counter() - g0
        with store.db.transaction("bulk-insert the benchmark library") as conn:
            for name, table in (("tracks", tracks), ("features", features),
                                ("track_embeddings", track_emb), ("window_sets", window_sets)):
                view = f"bench_{name}"
                conn.register(view, table)
                cols = ", ".join(table.column_names)
                conn.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {view}")  # noqa: S608
                conn.unregister(view)
        del tracks, features, track_emb, window_sets, embedding, flat, vectors, windows, blobs
    insert_done = time.perf_counter()
    with store.db.lock:
        store.db._conn.execute("CHECKPOINT")
    store.close()
    total = time.perf_counter() - started
    return {
        "n": n,
        "dim": dim,
        "model_id": model_id,
        "store_open_s": round(open_s, 3),
        "build_s": round(total, 1),
        "build_generate_s": round(gen_s, 1),
        "build_insert_s": round(insert_done - started - gen_s, 1),
        "build_checkpoint_s": round(total - (insert_done - started), 1),
        "db_file_mb": round((data_dir / "traum.duckdb").stat().st_size / 2**20, 0),
    }


# --------------------------------------------------------------------------- phases 2-4: index and scans


def bench_core(data_dir: Path, n: int, dim: int, model_id: str, *, queries: int, duckdb_queries: int,
               seed: int, duckdb_memory_limit: str | None = None, release_arrow: bool = False) -> dict:
    import pyarrow as pa
    import torch  # noqa: F401 (a search process has it: the scan runs in torch; not part of the timings)

    from engine.search import Filters, VectorIndex, _Vectors
    from engine.store import Store
    from engine.vectors import PIPELINE_VERSION

    # rss_before_open_mb includes torch (about 190 MB); before the vector cache it was imported at the
    # first query, after the memory figures.
    out: dict = {"rss_before_open_mb": proc_status("VmRSS"), "loadavg_start": round(os.getloadavg()[0], 2)}
    shutil.rmtree(data_dir / "traum.duckdb.vectors", ignore_errors=True)  # a first start: no cache yet
    t0 = time.perf_counter()
    store = Store(data_dir)
    out["store_reopen_s"] = round(time.perf_counter() - t0, 3)
    apply_memory_options(store, duckdb_memory_limit)

    index = VectorIndex(store, model_id, dim)
    shortlist_candidates = exact_only(index)  # index_top20_ms stays the exact scan, as before the shortlist
    t0 = time.perf_counter()
    vectors = index.sync()
    out["index_load_s"] = round(time.perf_counter() - t0, 2)
    assert len(vectors) >= n, (len(vectors), n)  # a kept library may hold a few ingested tracks more
    release_arrow_memory(release_arrow)
    out["rss_after_index_mb"] = proc_status("VmRSS")
    out["hwm_after_index_mb"] = proc_status("VmHWM")
    out.update(index_sizes(vectors, data_dir))

    rng = np.random.default_rng(seed + 1)
    qs = unit_rows(rng, queries, dim)
    none = Filters()
    filt = Filters(**FILTER)
    out["filter"] = FILTER
    out["filter_keeps_pct"] = round(100.0 * float(vectors.mask(filt).mean()), 1)
    for q in qs[:3]:  # warm-up
        index.top(q, filters=none, limit=TOP_K, min_score=None)
    out.update(time_top(index, qs, {"index_top20_ms": none, "index_top20_filtered_ms": filt}))
    out["rss_after_queries_mb"] = proc_status("VmRSS")
    out["hwm_after_queries_mb"] = proc_status("VmHWM")
    out.update(bench_shortlist(index, shortlist_candidates, qs, none, filt))
    # numpy's float32 matrix-vector product over the same rows, for scale (top() scores a float16 copy in
    # torch, rescores its candidates in float32 and sorts them by score and id).
    live = np.flatnonzero(vectors.alive[: len(vectors)])
    m = vectors.exact_rows(live)  # a float32 copy (2 GB at 1M), read from the cache file
    lat = []
    for q in qs[:50]:
        t = time.perf_counter()
        m @ q
        lat.append((time.perf_counter() - t) * 1000)
    out["numpy_matvec_only_ms"] = pct(lat)

    # DuckDB's own exact scan in the same file database. The library keeps vectors as bytes, which
    # DuckDB's vector functions cannot read, so they get the same rows as a FLOAT[d] table of their own.
    conn = store.db._conn
    out["duckdb_threads"] = conn.execute("SELECT current_setting('threads')").fetchone()[0]
    native = pa.table({"track_id": vectors.ids_of(live), "model_id": pa.array([model_id] * len(live)),
                       "embedding": pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), dim)})
    with store.db.lock:
        conn.register("bench_native", native)
        conn.execute(f"CREATE TABLE bench_vectors AS SELECT track_id, model_id, embedding::FLOAT[{dim}] AS embedding"
                     " FROM bench_native")
        conn.unregister("bench_native")
    del native
    sqls = {
        "duckdb_cosine_ms": "SELECT track_id, array_cosine_similarity(embedding, ?::FLOAT[{d}]) AS s"
                            " FROM bench_vectors WHERE model_id = ? ORDER BY s DESC LIMIT {k}",
        "duckdb_inner_product_ms": "SELECT track_id, array_inner_product(embedding, ?::FLOAT[{d}]) AS s"
                                   " FROM bench_vectors WHERE model_id = ? ORDER BY s DESC LIMIT {k}",
    }
    agree = {}
    dq = unit_rows(np.random.default_rng(seed + 2), duckdb_queries, dim)
    with store.db.lock:
        for label, template in sqls.items():
            sql = template.format(d=dim, k=TOP_K)
            first = qs[0].tolist()
            got = [r[0] for r in conn.execute(sql, [first, model_id]).fetchall()]  # warm-up + check
            want = [tid for tid, _ in index.top(qs[0], filters=none, limit=TOP_K, min_score=None)]
            agree[label] = len(set(got) & set(want)) / TOP_K
            lat = []
            for q in dq:
                params = [q.tolist(), model_id]
                t = time.perf_counter()
                conn.execute(sql, params).fetchall()
                lat.append((time.perf_counter() - t) * 1000)
            out[label] = pct(lat)
    out["duckdb_top20_overlap_with_index"] = agree
    with store.db.lock:
        conn.execute("DROP TABLE bench_vectors")

    # The load path before the vector cache (and still the one without a writable cache): one arrow
    # table of every vector, then numpy arrays in memory, timed in its two parts.
    del vectors, m, index
    gc.collect()
    t0 = time.perf_counter()
    table = store.embeddings.table(model_id, PIPELINE_VERSION)
    out["load_part_embedding_table_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    _Vectors(dim).append(table)
    out["load_part_vectors_append_s"] = round(time.perf_counter() - t0, 2)
    del table
    gc.collect()
    out["hwm_end_mb"] = proc_status("VmHWM")
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    store.close()
    return out


def time_top(index, qs: np.ndarray, filters: dict) -> dict:
    """p50/p95 of ``VectorIndex.top`` (top 20) over ``qs``, per label's filters."""
    out = {}
    for label, f in filters.items():
        lat = []
        for q in qs:
            t = time.perf_counter()
            index.top(q, filters=f, limit=TOP_K, min_score=None)
            lat.append((time.perf_counter() - t) * 1000)
        out[label] = pct(lat)
    return out


def time_searches(lib, prompts: list[str], **options) -> dict:
    """p50/p95 of ``Library.search_text`` for each prompt in turn (repeat one to time the cached path)."""
    lat = []
    for prompt in prompts:
        t = time.perf_counter()
        lib.search_text(prompt, **options)
        lat.append((time.perf_counter() - t) * 1000)
    return pct(lat)


def exact_only(index):
    """Make ``index`` scan exactly (no approximate shortlist, engine.shortlist, and no background
    build of one); returns the shortlist's own ``candidates`` to restore it."""
    shortlist = getattr(index, "shortlist", None)
    if shortlist is None:
        return None
    own = shortlist.candidates
    shortlist.candidates = lambda *args, **kwargs: None
    return own


def bench_shortlist(index, candidates, qs: np.ndarray, none, filt) -> dict:
    """The approximate shortlist (engine.shortlist), once its background build is done: its build,
    memory, top-20 latency and how many of the exact top-20 it returns."""
    if candidates is None:
        return {}
    exact = {i: [t for t, _ in index.top(q, filters=none, limit=TOP_K, min_score=None)]
             for i, q in enumerate(qs[:50])}
    index.shortlist.candidates = candidates
    out: dict = {}
    t0 = time.perf_counter()
    index.top(qs[0], filters=none, limit=TOP_K, min_score=None)  # starts the build in a thread
    index.shortlist.wait()
    out["shortlist_build_s"] = round(time.perf_counter() - t0, 1)
    out["shortlist_failed"] = index.shortlist.failed
    out["rss_after_shortlist_mb"] = proc_status("VmRSS")
    out["hwm_after_shortlist_mb"] = proc_status("VmHWM")
    out.update(time_top(index, qs, {"index_top20_shortlist_ms": none, "index_top20_shortlist_filtered_ms": filt}))
    found = [len(set(exact[i]) & {t for t, _ in index.top(q, filters=none, limit=TOP_K, min_score=None)})
             for i, q in enumerate(qs[:50])]
    out["shortlist_top20_recall"] = round(sum(found) / (TOP_K * len(found)), 4)
    index.shortlist.candidates = lambda *args, **kwargs: None  # the rest of the phase: exact
    return out


def index_sizes(vectors, data_dir: Path) -> dict:
    """What the index holds in memory, and the cache files beside the database."""
    base = vectors._base
    coarse = 0 if base is None else base.coarse.nbytes
    tail = vectors._exact.nbytes + vectors._coarse.nbytes
    cache_dir = data_dir / "traum.duckdb.vectors"
    files = sum(p.stat().st_size for p in cache_dir.iterdir()) if cache_dir.is_dir() else 0
    return {"index_matrix_mb": round((coarse + tail) / 2**20, 0),  # float16 mapped + rows held in memory
            "index_rows_in_memory": len(vectors) - (0 if base is None else base.rows),
            "cache_files_mb": round(files / 2**20, 0)}


def bench_warm(data_dir: Path, n: int, dim: int, model_id: str, *, queries: int, seed: int,
               duckdb_memory_limit: str | None = None) -> dict:
    """A later start: the index loads from the vector cache the core phase wrote."""
    import torch  # noqa: F401 (a search process has it: the scan runs in torch; not part of the timings)

    from engine.search import Filters, VectorIndex
    from engine.store import Store

    out: dict = {"loadavg_start": round(os.getloadavg()[0], 2)}
    store = Store(data_dir)
    apply_memory_options(store, duckdb_memory_limit)
    out["rss_before_cached_index_mb"] = proc_status("VmRSS")  # with torch imported
    index = VectorIndex(store, model_id, dim)
    shortlist_candidates = exact_only(index)
    t0 = time.perf_counter()
    vectors = index.sync()
    out["cached_index_load_s"] = round(time.perf_counter() - t0, 2)
    assert len(vectors) >= n and vectors._base is not None and vectors._base.rows >= n
    out["rss_after_cached_index_mb"] = proc_status("VmRSS")
    out["hwm_after_cached_index_mb"] = proc_status("VmHWM")
    out["cached_" + "index_rows_in_memory"] = index_sizes(vectors, data_dir)["index_rows_in_memory"]

    rng = np.random.default_rng(seed + 1)
    qs = unit_rows(rng, queries, dim)
    t = time.perf_counter()
    index.top(qs[0], filters=Filters(), limit=TOP_K, min_score=None)
    out["cached_first_top20_ms"] = round((time.perf_counter() - t) * 1000, 1)  # maps the float16 pages in
    out.update(time_top(index, qs, {"cached_index_top20_ms": Filters(),
                                    "cached_index_top20_filtered_ms": Filters(**FILTER)}))
    out["rss_after_cached_queries_mb"] = proc_status("VmRSS")
    out["hwm_after_cached_queries_mb"] = proc_status("VmHWM")
    if shortlist_candidates is not None:  # the approximate index the core phase built, kept beside the cache
        index.shortlist.candidates = shortlist_candidates
        t0 = time.perf_counter()
        index.top(qs[0], filters=Filters(), limit=TOP_K, min_score=None)  # starts loading it in a thread
        index.shortlist.wait()
        out["kept_shortlist_ready_s"] = round(time.perf_counter() - t0, 1)
        out["kept_shortlist_loaded"] = index.shortlist.loaded
        kept = vectors.saved_index
        out["kept_shortlist_file_mb"] = round(kept.stat().st_size / 2**20) if kept and kept.exists() else None
        out["kept_shortlist_failed"] = index.shortlist.failed
        out["rss_after_kept_shortlist_mb"] = proc_status("VmRSS")
        out["hwm_after_kept_shortlist_mb"] = proc_status("VmHWM")
        out.update(time_top(index, qs, {"cached_index_top20_shortlist_ms": Filters()}))

    # 1,000 rows rewritten behind the cache's back (new stamps, as an import or another session's
    # re-embed leaves them): the next load reads them by key and appends them to the cache.
    del vectors, index
    gc.collect()
    with store.db.lock:
        picked = [r[0] for r in store.db._conn.execute(
            "SELECT track_id FROM track_embeddings WHERE model_id = ? USING SAMPLE 1000 ROWS", [model_id]).fetchall()]
        store.db._conn.execute("UPDATE track_embeddings SET created_at = now() WHERE model_id = ?"
                               " AND track_id IN (SELECT unnest(?::VARCHAR[]))", [model_id, picked])
    index = VectorIndex(store, model_id, dim)
    t0 = time.perf_counter()
    vectors = index.sync()
    out["cached_index_load_after_1000_changes_s"] = round(time.perf_counter() - t0, 2)
    out["cached_" + "index_rows_in_memory_after_changes"] = index_sizes(vectors, data_dir)["index_rows_in_memory"]
    out["hwm_end_mb"] = proc_status("VmHWM")
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    store.close()
    return out


# --------------------------------------------------------------------------- phase 5: end to end


ADJECTIVES = ["warm", "dark", "bright", "lo-fi", "fast", "slow", "distorted", "soft", "epic", "minimal",
              "glitchy", "dreamy", "aggressive", "calm", "funky"]
SOUNDS = ["synth pad", "piano ballad", "techno beat", "acoustic guitar", "string quartet", "drum loop",
          "vocal chop", "bass line", "field recording", "brass section", "choir", "organ drone"]
PLACES = ["in a cathedral", "at a festival", "with vinyl crackle", "under heavy rain", "in a small club",
          "with tape hiss", "at 124 bpm", "for a film trailer", "in the forest", "on an old radio"]


def distinct_prompts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen[f"{rng.choice(ADJECTIVES)} {rng.choice(SOUNDS)} {rng.choice(PLACES)}"] = None
    return list(seen)


def bench_e2e(data_dir: Path, n: int, model_dir: str, *, queries: int, ingests: int, threads: int,
              seed: int, duckdb_memory_limit: str | None = None, release_arrow: bool = False) -> dict:
    import torch

    torch.set_num_threads(threads)
    from engine.clap import get_embedder
    from engine.config import Settings
    from engine.library import Filters, Library
    from engine.search import best_windows
    from engine.store import EmbeddingWrite, Measurements, NewTrack, TrackRecord
    from engine.vectors import PIPELINE_VERSION

    out: dict = {"loadavg_start": round(os.getloadavg()[0], 2)}
    settings = Settings(data_dir=data_dir, clap_model=model_dir, clap_device="cpu")
    t0 = time.perf_counter()
    lib = Library(settings)
    out["library_open_s"] = round(time.perf_counter() - t0, 2)
    apply_memory_options(lib._store, duckdb_memory_limit)
    t0 = time.perf_counter()
    embedder = get_embedder(settings)
    out["model_load_s"] = round(time.perf_counter() - t0, 1)
    out["model"] = {"id": embedder.model_id, "dim": embedder.dim, "precision": embedder.precision,
                    "torch_threads": torch.get_num_threads()}
    out["rss_after_model_mb"] = proc_status("VmRSS")
    t0 = time.perf_counter()
    hits = lib.search_text("warm-up prompt that is not reused")
    out["first_search_s"] = round(time.perf_counter() - t0, 2)  # index load + one text embedding
    assert len(hits) == TOP_K, len(hits)
    release_arrow_memory(release_arrow)
    out["rss_after_index_mb"] = proc_status("VmRSS")

    prompts = distinct_prompts(queries, seed)
    out["e2e_text_uncached_ms"] = time_searches(lib, prompts)

    repeated = prompts[0]
    out["e2e_text_cached_ms"] = time_searches(lib, [repeated] * queries)
    filt = Filters(**FILTER)
    out["e2e_text_cached_filtered_ms"] = time_searches(lib, [repeated] * queries, filters=filt)

    # The parts of one (cached) search, timed separately with the same calls Library.search_text makes.
    index = lib._index_for(embedder)
    parts: dict[str, list[float]] = {"embed_text_cached": [], "index_top": [], "best_windows": [], "get_tracks": []}
    for _ in range(min(queries, 30)):
        t = time.perf_counter()
        q = embedder.embed_text([repeated])[0]
        parts["embed_text_cached"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        scored = index.top(q, filters=Filters(), limit=TOP_K, min_score=None)
        parts["index_top"].append((time.perf_counter() - t) * 1000)
        ids = [tid for tid, _ in scored]
        t = time.perf_counter()
        best_windows(lib._store.embeddings, embedder.model_id, q, ids)
        parts["best_windows"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lib._store.tracks.get_many(ids)
        parts["get_tracks"].append((time.perf_counter() - t) * 1000)
    out["e2e_parts_ms"] = {k: pct(v) for k, v in parts.items()}

    # Past engine.shortlist.MIN_ROWS rows the first search started the approximate index's build in a
    # background thread (the searches above took the exact scan meanwhile, sharing the cores with it).
    # Once it is ready (or refused: engine.ann.calibrate), the same kinds of search again.
    t = time.perf_counter()
    index.shortlist.wait()
    out["shortlist_wait_s"] = round(time.perf_counter() - t, 1)
    out["shortlist_used"] = index.shortlist._index is not None
    out["shortlist_loaded"] = index.shortlist.loaded  # kept by an earlier process, not built here
    out["shortlist_recall_probe"] = index.shortlist.recall
    out["shortlist_failed"] = index.shortlist.failed
    out["e2e_text_uncached_after_shortlist_ms"] = time_searches(lib, distinct_prompts(queries, seed + 1))
    out["e2e_text_cached_after_shortlist_ms"] = time_searches(lib, [repeated] * queries)

    # After an ingest: one add_track + save_embeddings, then the next search replays the journal.
    rng = np.random.default_rng(seed + 7)
    write_ms, after_ms = [], []
    for i in range(ingests):
        tid = hashlib.sha256(f"bench-ingest-{seed}-{i}".encode()).hexdigest()
        vec = unit_rows(rng, 1, embedder.dim)
        record = TrackRecord(id=tid, filename=f"new_{i}.wav", storage="managed", path=f"audio/{tid[:2]}/{tid}.wav",
                             format="wav", codec="pcm_s16le", file_size=1_764_000, file_mtime=time.time(),
                             sample_rate=44_100, channels=2, duration=10.0, analysed_duration=10.0, truncated=False)
        measured = Measurements(tempo=120.0, spectral_centroid=1500.0, zero_crossing_rate=0.05, rms_energy=0.1,
                                feature_version=1)
        t = time.perf_counter()
        lib._store.tracks.add(NewTrack(record, measured))
        lib._store.embeddings.save(tid, EmbeddingWrite(embedder.model_id, PIPELINE_VERSION, vec[0], vec, [0.0],
                                                       [10.0]))
        write_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lib.search_text(repeated)
        after_ms.append((time.perf_counter() - t) * 1000)
    out["ingest_write_ms"] = pct(write_ms)
    out["search_after_ingest_ms"] = pct(after_ms)
    out["search_after_first_ingest_ms"] = round(after_ms[0], 1)
    out["ingest_write_ms_all"] = [round(x, 1) for x in write_ms]
    out["search_after_ingest_ms_all"] = [round(x, 1) for x in after_ms]
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    out["rss_end_mb"] = proc_status("VmRSS")
    out["hwm_end_mb"] = proc_status("VmHWM")
    out["text_cache"] = embedder.text_cache_info()
    lib.close()
    return out


# --------------------------------------------------------------------------- model


def build_model(model_dir: Path) -> dict:
    """Full-size random CLAP via bench/bench_clap.py's builder, plus the id and width it will load with."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_clap", REPO_ROOT / "bench" / "bench_clap.py")
    bench_clap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_clap)
    info = bench_clap.build_full_size(model_dir)
    return {**info, **model_identity(model_dir)}


def model_identity(model_dir: Path) -> dict:
    from engine.clap.loader import predicted_model_id
    from engine.config import Settings

    config = json.loads((model_dir / "config.json").read_text())
    model_id = predicted_model_id(Settings(clap_model=str(model_dir), clap_device="cpu"))
    return {"model_id": model_id, "dim": int(config.get("projection_dim", 512))}


# --------------------------------------------------------------------------- driver


def run_child(args: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=None, text=True,
                          cwd=REPO_ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:1]} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def default_duckdb_queries(n: int) -> int:
    return 200 if n <= 20_000 else 60 if n <= 200_000 else 30


def fmt_stat(d) -> str:
    if isinstance(d, dict) and "p50" in d:
        return f"{d['p50']} / {d['p95']}"
    return "" if d is None else str(d)


def print_table(report: dict) -> None:
    sizes = report["sizes"]
    res = report["results"]

    def col(key_path):
        cells = []
        for n in sizes:
            node = res.get(str(n), {})
            for k in key_path:
                node = node.get(k) if isinstance(node, dict) else None
            cells.append(fmt_stat(node) if node is not None else "-")
        return cells

    rows = [
        ("**build** (bulk insert via arrow, incl. checkpoint), s", ("build", "build_s")),
        ("  of which generating data, s", ("build", "build_generate_s")),
        ("  of which INSERT ... SELECT, s", ("build", "build_insert_s")),
        ("DuckDB file, MB", ("build", "db_file_mb")),
        ("**VectorIndex first sync()** (load from DuckDB, writes the cache), s", ("core", "index_load_s")),
        ("RSS after index load (VmRSS), MB", ("core", "rss_after_index_mb")),
        ("  peak RSS during the load (VmHWM), MB", ("core", "hwm_after_index_mb")),
        ("  RSS after the queries (float16 pages mapped), MB", ("core", "rss_after_queries_mb")),
        ("  index in memory (float16 mapped + rows in memory), MB", ("core", "index_matrix_mb")),
        ("  vector cache files, MB", ("core", "cache_files_mb")),
        ("**VectorIndex sync() from the vector cache** (later starts), s", ("warm", "cached_index_load_s")),
        ("  RSS after it (VmRSS), MB", ("warm", "rss_after_cached_index_mb")),
        ("  peak RSS during it (VmHWM), MB", ("warm", "hwm_after_cached_index_mb")),
        ("  first top-20 after it, ms", ("warm", "cached_first_top20_ms")),
        ("  exact top-20 after it, ms p50 / p95", ("warm", "cached_index_top20_ms")),
        ("  RSS after its queries, MB", ("warm", "rss_after_cached_queries_mb")),
        ("  peak RSS after its queries, MB", ("warm", "hwm_after_cached_queries_mb")),
        ("  load after 1,000 rows rewritten behind the cache, s", ("warm", "cached_index_load_after_1000_changes_s")),
        ("old load path: Store.embedding_table (SQL + arrow), s", ("core", "load_part_embedding_table_s")),
        ("old load path: _Vectors.append (numpy + python), s", ("core", "load_part_vectors_append_s")),
        ("peak RSS of index/scan phase (VmHWM), MB", ("core", "hwm_end_mb")),
        ("exact top-20 via VectorIndex.top, ms p50 / p95", ("core", "index_top20_ms")),
        ("same with a duration+tempo filter, ms p50 / p95", ("core", "index_top20_filtered_ms")),
        ("  filter keeps, %", ("core", "filter_keeps_pct")),
        ("approximate shortlist: build in the background, s", ("core", "shortlist_build_s")),
        ("  kept beside the cache: ready at the next start, s", ("warm", "kept_shortlist_ready_s")),
        ("  RSS after it, MB", ("core", "rss_after_shortlist_mb")),
        ("  peak RSS after it, MB", ("core", "hwm_after_shortlist_mb")),
        ("  top-20 with it (exact scores), ms p50 / p95", ("core", "index_top20_shortlist_ms")),
        ("  same with the filter, ms p50 / p95", ("core", "index_top20_shortlist_filtered_ms")),
        ("  share of the exact top-20 it returns", ("core", "shortlist_top20_recall")),
        ("  numpy float32 matrix @ query alone, ms p50 / p95", ("core", "numpy_matvec_only_ms")),
        ("DuckDB array_cosine_similarity top-20 (FLOAT[d] table, file db), ms p50 / p95", ("core", "duckdb_cosine_ms")),
        ("DuckDB array_inner_product top-20 (FLOAT[d] table, file db), ms p50 / p95", ("core", "duckdb_inner_product_ms")),
        ("  DuckDB queries timed per variant", ("core", "duckdb_cosine_ms", "n")),
        ("  DuckDB top-20 overlap with the index (cosine)", ("core", "duckdb_top20_overlap_with_index", "duckdb_cosine_ms")),
        ("**Library(settings)** open, s", ("e2e", "library_open_s")),
        ("CLAP load (get_embedder), s", ("e2e", "model_load_s")),
        ("first search (index load + text), s", ("e2e", "first_search_s")),
        ("RSS after model + index (VmRSS), MB", ("e2e", "rss_after_index_mb")),
        ("**Library.search_text**, distinct prompts, ms p50 / p95", ("e2e", "e2e_text_uncached_ms")),
        ("Library.search_text, repeated prompt (cached), ms p50 / p95", ("e2e", "e2e_text_cached_ms")),
        ("Library.search_text, cached + filter, ms p50 / p95", ("e2e", "e2e_text_cached_filtered_ms")),
        ("  part: embed_text (cached), ms p50 / p95", ("e2e", "e2e_parts_ms", "embed_text_cached")),
        ("  part: VectorIndex.top, ms p50 / p95", ("e2e", "e2e_parts_ms", "index_top")),
        ("  part: best_windows (DuckDB), ms p50 / p95", ("e2e", "e2e_parts_ms", "best_windows")),
        ("  part: Store.get_tracks, ms p50 / p95", ("e2e", "e2e_parts_ms", "get_tracks")),
        ("add_track + save_embeddings, ms p50 / p95", ("e2e", "ingest_write_ms")),
        ("next search after an ingest (journal replay), ms p50 / p95", ("e2e", "search_after_ingest_ms")),
        ("  first search after the first ingest, ms", ("e2e", "search_after_first_ingest_ms")),
        ("peak RSS of end-to-end phase (VmHWM), MB", ("e2e", "hwm_end_mb")),
    ]
    print("| measure | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for label, path in rows:
        print(f"| {label} | " + " | ".join(col(path)) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated library sizes")
    ap.add_argument("--dim", type=int, default=512, help="vector width when no model is built (--no-e2e)")
    ap.add_argument("--queries", type=int, default=200, help="random queries for VectorIndex.top")
    ap.add_argument("--duckdb-queries", type=int, help="queries per DuckDB variant (default 200/60/30 by size)")
    ap.add_argument("--e2e-queries", type=int, default=50, help="prompts per end-to-end measurement")
    ap.add_argument("--ingests", type=int, default=10, help="ingest + search rounds for the journal replay")
    ap.add_argument("--e2e-sizes", help="sizes that get the end-to-end phase (default: all)")
    ap.add_argument("--no-e2e", action="store_true", help="skip the CLAP end-to-end phase")
    ap.add_argument("--model-dir", help="reuse a model directory built by an earlier run (see --keep)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in the end-to-end phase")
    ap.add_argument("--chunk", type=int, default=100_000, help="rows per bulk-insert transaction")
    ap.add_argument("--max-windows", type=int, default=MAX_WINDOWS, help="most 10 s windows per synthetic track")
    ap.add_argument("--clusters", type=int, default=0,
                    help="draw the tracks around this many cluster centres (default 0: uniform, as before)")
    ap.add_argument("--work-dir", help="where temporary libraries go (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the libraries and the model directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", default="build,core,e2e",
                    help="which phases to run per size (build is needed unless --work-dir holds lib_<n> from --keep)")
    ap.add_argument("--duckdb-memory-limit", help="non-production: SET memory_limit on the store connection, e.g. 2GB")
    ap.add_argument("--release-arrow-memory", action="store_true",
                    help="non-production: return pyarrow's unused memory to the OS after the index load")
    ap.add_argument("--out", type=Path, help="write results as JSON here")
    ap.add_argument("--_phase", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._phase:
        phase, *rest = args._phase
        if phase == "model":
            result = build_model(Path(rest[0]))
        elif phase == "build":
            data_dir, n, dim, model_id = Path(rest[0]), int(rest[1]), int(rest[2]), rest[3]
            result = build_library(data_dir, n, dim, model_id, chunk=args.chunk, seed=args.seed,
                                   max_windows=args.max_windows, clusters=args.clusters)
        elif phase == "core":
            data_dir, n, dim, model_id = Path(rest[0]), int(rest[1]), int(rest[2]), rest[3]
            result = bench_core(data_dir, n, dim, model_id, queries=args.queries,
                                duckdb_queries=args.duckdb_queries or default_duckdb_queries(n), seed=args.seed,
                                duckdb_memory_limit=args.duckdb_memory_limit, release_arrow=args.release_arrow_memory)
        elif phase == "warm":
            data_dir, n, dim, model_id = Path(rest[0]), int(rest[1]), int(rest[2]), rest[3]
            result = bench_warm(data_dir, n, dim, model_id, queries=args.queries, seed=args.seed,
                                duckdb_memory_limit=args.duckdb_memory_limit)
        elif phase == "e2e":
            result = bench_e2e(Path(rest[0]), int(rest[1]), rest[2], queries=args.e2e_queries,
                               ingests=args.ingests, threads=args.threads, seed=args.seed,
                               duckdb_memory_limit=args.duckdb_memory_limit, release_arrow=args.release_arrow_memory)
        else:
            raise SystemExit(f"unknown phase {phase}")
        print(json.dumps(result))
        return

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    e2e_sizes = set(sizes) if args.e2e_sizes is None else {int(s) for s in args.e2e_sizes.split(",") if s.strip()}
    if args.no_e2e:
        e2e_sizes = set()
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    report: dict = {"machine": machine(), "sizes": sizes, "top_k": TOP_K, "results": {},
                    "options": {"phases": sorted(phases), "clusters": args.clusters,
                                "duckdb_memory_limit": args.duckdb_memory_limit,
                                "release_arrow_memory": args.release_arrow_memory}}
    # With --keep the libraries stay in WORK_DIR/lib_<n>, so a later run can skip the build (--phases core,e2e).
    work = Path(args.work_dir) if args.keep and args.work_dir else Path(tempfile.mkdtemp(prefix="bench_search_",
                                                                                       dir=args.work_dir))
    try:
        model_dir = None
        model_id, dim = BENCH_MODEL_ID, args.dim
        if (e2e_sizes & set(sizes) and "e2e" in phases) or args.model_dir:
            if args.model_dir:
                model_dir = str(Path(args.model_dir).resolve())
                report["model"] = model_identity(Path(model_dir))
            else:
                model_dir = str(work / "clap")
                print("building a full-size random CLAP ...", file=sys.stderr, flush=True)
                report["model"] = run_child(["--_phase", "model", model_dir])
            model_id, dim = report["model"]["model_id"], report["model"]["dim"]
            report["model"]["dir"] = model_dir
        report["model_id_in_rows"] = model_id
        report["dim"] = dim
        for n in sizes:
            data_dir = work / f"lib_{n}"
            res: dict = {}
            report["results"][str(n)] = res
            common = ["--seed", str(args.seed), "--chunk", str(args.chunk), "--queries", str(args.queries),
                      "--clusters", str(args.clusters)]
            if args.duckdb_memory_limit:
                common += ["--duckdb-memory-limit", args.duckdb_memory_limit]
            if args.release_arrow_memory:
                common += ["--release-arrow-memory"]
            if "build" in phases:
                print(f"[{n:,}] building ...", file=sys.stderr, flush=True)
                res["build"] = run_child(["--_phase", "build", str(data_dir), str(n), str(dim), model_id, *common])
                print(f"[{n:,}] built in {res['build']['build_s']} s", file=sys.stderr, flush=True)
            if "core" in phases:
                print(f"[{n:,}] index and scans ...", file=sys.stderr, flush=True)
                core_args = ["--_phase", "core", str(data_dir), str(n), str(dim), model_id, *common]
                if args.duckdb_queries:
                    core_args += ["--duckdb-queries", str(args.duckdb_queries)]
                res["core"] = run_child(core_args)
            if "core" in phases or "warm" in phases:
                print(f"[{n:,}] index from the vector cache ...", file=sys.stderr, flush=True)
                res["warm"] = run_child(["--_phase", "warm", str(data_dir), str(n), str(dim), model_id, *common])
            if n in e2e_sizes and "e2e" in phases:
                print(f"[{n:,}] end to end ...", file=sys.stderr, flush=True)
                res["e2e"] = run_child(["--_phase", "e2e", str(data_dir), str(n), model_dir, *common,
                                        "--e2e-queries", str(args.e2e_queries), "--ingests", str(args.ingests),
                                        "--threads", str(args.threads)])
            if not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        report["machine"]["loadavg_end"] = round(os.getloadavg()[0], 2)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        elif work != Path(args.work_dir or "/nonexistent"):
            shutil.rmtree(work, ignore_errors=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))

    m = report["machine"]
    print(f"\nSearch benchmark: {m['nproc']} cores ({m['cpu']}), {m['mem_gib']} GiB, numpy {m['numpy']}, "
          f"duckdb {m['duckdb']}, load average {m['loadavg_start']} -> {m['loadavg_end']}")
    print(f"D = {report['dim']}, top-{TOP_K}, rows carry model_id {report['model_id_in_rows']!r}")
    if report.get("model"):
        params = report["model"].get("params_m")
        print("CLAP: random init, full-size architecture" + (f" ({params} M params)" if params else ""))
    print(f"touching fresh memory: {m['fresh_memory_s_per_gib']} s/GiB")
    print()
    print_table(report)
    if args.out:
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
