"""Benchmark what describing samples costs a large library: categorising stored embeddings, and
listing, counting and searching with the filters on kind, key and category.

It builds a synthetic library (bench/bench_search.py's ``build_library``: real migrations, pyarrow
bulk inserts, 512-dimensional unit vectors), adds a description per track (kinds, keys and path
hints in realistic shares), then times, in this process:

1. ``categorise_library``: every track scored from its stored embedding against the 21 category
   vectors (the prompts are embedded by a stand-in text tower of random unit vectors, so the figure
   is the store and numpy cost, not a model's);
2. ``Library.tracks`` (a page of 100) and ``Library.count`` without filters and with each filter;
3. the SQL that answers a search's filters on what a sample is (``Tracks.matching_ids``, run
   once per filter and library revision), and ``Library.similar_by_vector`` (top 20) without
   filters and with them, after one warm-up search (index loaded; the ids remembered).

Usage:

    .venv/bin/python bench/bench_filters.py [--tracks 100000] [--repeats 20] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_search import build_library, machine  # noqa: E402

from engine.categories import KINDS  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.keys import MODES, TONICS  # noqa: E402
from engine.library import Filters, Library  # noqa: E402

DIM = 512
MODEL_ID = "bench-model"


class StandInModel:
    """A text tower of fixed random unit vectors: the categoriser's input, not a model's cost."""

    model_id = MODEL_ID
    dim = DIM

    def embed_text(self, texts):
        rng = np.random.default_rng(len(texts))
        rows = rng.standard_normal((len(texts), DIM)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def describe_library(library: Library, n: int, seed: int = 1) -> float:
    """A description per track: 60 % one-shots, 35 % loops, 5 % long; half of them keyed."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    ids = [row[0] for row in library._store.db.rows("list ids", "SELECT id FROM tracks ORDER BY id")]
    kinds = rng.choice(np.array(KINDS), size=n, p=(0.6, 0.35, 0.05))
    keyed = rng.random(n) < 0.5
    tonics = rng.choice(np.array(TONICS), size=n)
    modes = rng.choice(np.array(MODES), size=n)
    hints = rng.choice(np.array(["kick", "hat", "pad", "", "", ""]), size=n)
    table = pa.table({
        "track_id": ids, "kind": kinds, "kind_confidence": np.full(n, 0.8),
        "tempo_source": pa.array(["audio"] * n), "bars": pa.array([None] * n, pa.int32()),
        "key_tonic": pa.array(tonics, mask=~keyed), "key_mode": pa.array(modes, mask=~keyed),
        "key_confidence": pa.array(rng.uniform(0.2, 1.0, n), mask=~keyed),
        "key_source": pa.array(np.full(n, "audio"), mask=~keyed),
        "name_category": pa.array(hints, mask=hints == ""), "version": np.ones(n, dtype=np.int32),
    })
    started = time.perf_counter()
    with library._store.db.transaction("describe the benchmark library") as conn:
        conn.register("bench_descriptions", table)
        conn.execute("INSERT INTO descriptions SELECT * FROM bench_descriptions")
        conn.unregister("bench_descriptions")
    return time.perf_counter() - started


def timed(call, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2),
            "result": result if isinstance(result, int) else len(result)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from engine.classify import categorise_library

    with tempfile.TemporaryDirectory(prefix="bench-filters-") as work:
        data_dir = Path(work) / "data"
        built = build_library(data_dir, args.tracks, DIM, MODEL_ID, chunk=20_000, seed=3)
        model = StandInModel()
        settings = Settings(data_dir=data_dir, clap_model=str(Path(work) / "no-model"))
        library = Library(settings, embedder_provider=lambda: model)
        report = {"machine": machine(), "tracks": args.tracks, "build": built,
                  "describe_insert_s": round(describe_library(library, args.tracks), 2)}
        started = time.perf_counter()
        scored = categorise_library(library._store, model)
        report["categorise_library"] = {"tracks": scored, "s": round(time.perf_counter() - started, 2)}

        listing = {
            "no filter": Filters(),
            "kind": Filters(kinds=("loop",)),
            "key": Filters(key="F minor"),
            "compatible keys": Filters(compatible_with="F minor"),
            "category": Filters(categories=("kick",)),
            "kind + compatible + category": Filters(kinds=("loop",), compatible_with="A minor",
                                                    categories=("drum loop", "kick", "pad")),
        }
        report["tracks_page_100"] = {name: timed(lambda f=f: library.tracks(f, limit=100), args.repeats)
                                     for name, f in listing.items()}
        report["count"] = {name: timed(lambda f=f: library.count(f), args.repeats) for name, f in listing.items()}
        rng = np.random.default_rng(5)
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        library.similar_by_vector(query)  # loads the index
        report["matching_ids"] = {
            name: timed(lambda f=f: library._store.tracks.matching_ids(f), args.repeats)
            for name, f in listing.items() if f.described}
        report["search_top20"] = {
            name: timed(lambda f=f: library.similar_by_vector(query, filters=f), args.repeats)
            for name, f in (("no filter", listing["no filter"]), ("category", listing["category"]),
                            ("kind + compatible + category", listing["kind + compatible + category"]))}
        library.close()
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
