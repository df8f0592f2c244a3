"""Benchmark organising a large library through ``Library``: the sound map, near-duplicate groups, and
the filters on favourites, tags and collections.

It builds a synthetic library (bench/bench_search.py's ``build_library``: real migrations, pyarrow bulk
inserts, 512-dimensional unit vectors; bench/bench_filters.py's descriptions), then times, in this process:

1. ``Library.sound_map()``: the first map (index load, layout, the tracks' fields), then after 50 deletes
   (new layout or placement, as the library decides);
2. ``Library.duplicates()`` at the default threshold (blocked matrix products over every pair);
3. tagging 1,000 tracks, starring 100, a collection of 500; then ``Library.tracks`` (a page of 100),
   ``Library.count`` and ``Library.similar_by_vector`` (top 20) with each of those filters.

Usage:

    .venv/bin/python bench/bench_organise.py [--tracks 100000] [--repeats 20] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_filters import DIM, MODEL_ID, StandInModel, describe_library, timed  # noqa: E402
from bench_search import build_library, machine  # noqa: E402

from engine.config import Settings  # noqa: E402
from engine.library import Filters, Library  # noqa: E402


def seconds(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return round(time.perf_counter() - started, 2), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-organise-") as work:
        data_dir = Path(work) / "data"
        built = build_library(data_dir, args.tracks, DIM, MODEL_ID, chunk=20_000, seed=3)
        model = StandInModel()
        library = Library(Settings(data_dir=data_dir, clap_model=str(Path(work) / "no-model")),
                          embedder_provider=lambda: model)
        describe_library(library, args.tracks)
        report = {"machine": machine(), "tracks": args.tracks, "build": built}

        took, frame = seconds(library.sound_map)
        report["sound_map_first_s"] = took
        report["sound_map_points"] = len(frame)
        ids = list(frame["id"])
        for track_id in ids[:50]:
            library.delete(track_id)
        took, frame = seconds(library.sound_map)
        report["sound_map_after_50_deletes_s"] = took
        took, groups = seconds(library.duplicates)
        report["duplicates_s"] = took
        report["duplicate_groups"] = len(groups)

        rng = np.random.default_rng(7)
        ids = ids[50:]
        chosen = [ids[i] for i in rng.choice(len(ids), size=1_000, replace=False)]
        took, _ = seconds(lambda: [library.tag(track_id, add=["bench", f"t{i % 10}"]) for i, track_id in
                                   enumerate(chosen)])
        report["tag_1000_tracks_s"] = took
        for track_id in chosen[:100]:
            library.set_favourite(track_id)
        library.create_collection("bench")
        took, _ = seconds(lambda: library.add_to_collection("bench", chosen[:500]))
        report["collection_add_500_s"] = took

        filters = {"no filter": Filters(), "favourites": Filters(favourite=True), "tag": Filters(tags=("bench",)),
                   "two tags": Filters(tags=("bench", "t3")), "collection": Filters(collection="bench"),
                   "kind + tag": Filters(kinds=("loop",), tags=("bench",))}
        report["tracks_page_100"] = {name: timed(lambda f=f: library.tracks(f, limit=100), args.repeats)
                                     for name, f in filters.items()}
        report["count"] = {name: timed(lambda f=f: library.count(f), args.repeats) for name, f in filters.items()}
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        library.similar_by_vector(query, limit=20)  # the index loaded
        report["search_top20"] = {name: timed(lambda f=f: library.similar_by_vector(query, filters=f, limit=20),
                                              args.repeats) for name, f in filters.items()}
        report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        library.close()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
