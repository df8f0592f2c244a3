"""Benchmark drawing the sound map (pages/map.py, ui_map.py) at 100k tracks: the Python side, then a browser.

Builds a synthetic Library.sound_map frame (``--tracks`` points in 50 Gaussian clusters inside [-1, 1], file
names, kinds, categories and keys in realistic shares, some unset), then times, in this process:

1. ``map_figure``: the plotly figure, one Scattergl trace per category, hover text per point;
2. what ``st.plotly_chart`` does with it on every run of the page: ``return_figure_from_figure_or_data``
   (the figure to a dict) and ``plotly.io.to_json`` (the spec sent to the browser), and the spec's size;
3. with ``--browser`` (the default; ``--no-browser`` skips it): Chromium headless through Playwright draws it.
   The figure is written with ``write_html(include_plotlyjs="directory")``, the plotly.js bundled with the plotly
   package beside it, and loaded from a file:// URL. Times from navigation start: plotly.js evaluated,
   ``Plotly.newPlot`` called, its promise resolved (``plotly_afterplot`` has fired: the WebGL canvas is drawn), and
   two animation frames later (painted). Headless Chromium has no GPU here: WebGL runs on SwiftShader, on the CPU,
   so a desktop browser with a GPU draws faster; the figure is what this machine can promise.

Prints one JSON object. On a shared machine the timings are rough; each Python figure is the median of
``--repeats`` runs.

Usage:

    .venv/bin/python bench/bench_map_draw.py [--tracks 100000] [--repeats 5] [--no-browser] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.library import CATEGORIES, KINDS  # noqa: E402
from ui_map import map_figure  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def synthetic_frame(n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.8, 0.8, size=(50, 2))
    cluster = rng.integers(len(centres), size=n)
    xy = np.clip(centres[cluster] + rng.normal(scale=0.08, size=(n, 2)), -1, 1).astype(np.float32)
    categories = np.array([*CATEGORIES, None], dtype=object)
    kinds = np.array([*KINDS, None], dtype=object)
    keys = np.array(["C major", "F minor", "A minor", "G major", None, None, None], dtype=object)
    return pd.DataFrame({
        "id": [f"{i:064x}" for i in range(n)],
        "x": xy[:, 0], "y": xy[:, 1],
        "filename": [f"Pack {i % 300:03d} - sample_{i:06d}.wav" for i in range(n)],
        "kind": kinds[rng.integers(len(kinds), size=n)],
        "category": categories[cluster % len(categories)],  # a cluster is mostly one category, as with CLAP
        "key": keys[rng.integers(len(keys), size=n)],
        "duration": rng.uniform(0.2, 30.0, size=n),
        "tempo": np.where(rng.random(n) < 0.5, np.nan, rng.uniform(70, 175, size=n)),
    })


def median_time(func, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def python_side(frame, repeats: int) -> dict:
    import plotly.io
    import plotly.tools

    # Importing plotly's figure classes, once per server process: in a fresh interpreter, as the server pays it.
    probe = "import time; t = time.perf_counter(); import plotly.graph_objects; print(time.perf_counter() - t)"
    import_s = float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    figure_s, (figure, _) = median_time(lambda: map_figure(frame, colour="category"), repeats)
    as_dict_s, as_dict = median_time(lambda: plotly.tools.return_figure_from_figure_or_data(figure, True), repeats)
    json_s, spec = median_time(lambda: plotly.io.to_json(as_dict, validate=False), repeats)
    return {"plotly_import_s": round(import_s, 3), "map_figure_s": round(figure_s, 3),
            "to_dict_s": round(as_dict_s, 3), "to_json_s": round(json_s, 3),
            "python_total_s": round(figure_s + as_dict_s + json_s, 3), "traces": len(figure.data),
            "spec_mb": round(len(spec) / 1e6, 2)}, figure


# Before any page script: catch plotly.js as it defines window.Plotly, and time newPlot from its call.
INIT_SCRIPT = """
(() => {
  let plotly;
  Object.defineProperty(window, 'Plotly', {configurable: true, get: () => plotly, set: (value) => {
    plotly = value;
    window.__bench = {plotly_loaded_ms: performance.now()};
    const newPlot = value.newPlot;
    value.newPlot = function (...args) {
      window.__bench.newplot_called_ms = performance.now();
      return newPlot.apply(this, args);
    };
  }});
})();
"""
# Inside write_html's newPlot(...).then(): the plot is drawn (plotly_afterplot has fired).
POST_SCRIPT = """
const gd = document.getElementById('{plot_id}');
window.__bench.afterplot_ms = performance.now();
window.__bench.gl_canvas = !!gd.querySelector('canvas.gl-canvas');
window.__bench.webgl = !!document.createElement('canvas').getContext('webgl');
window.__bench.points = gd._fullData.reduce((sum, trace) => sum + trace.x.length, 0);
requestAnimationFrame(() => requestAnimationFrame(() => { window.__bench.painted_ms = performance.now(); }));
"""


def browser_side(figure, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-map-draw-"))
    try:
        page_file = folder / "map.html"
        figure.write_html(page_file, include_plotlyjs="directory", post_script=POST_SCRIPT, full_html=True,
                          default_width="1200px", default_height="700px")
        results = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--enable-unsafe-swiftshader",
                                                       "--ignore-gpu-blocklist"])
            try:
                for _ in range(runs):  # a fresh page each time; the browser keeps its compiled code between
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    page.add_init_script(INIT_SCRIPT)
                    started = time.perf_counter()
                    page.goto(page_file.as_uri(), wait_until="commit")
                    page.wait_for_function("window.__bench && window.__bench.painted_ms", timeout=120_000)
                    wall = time.perf_counter() - started
                    marks = page.evaluate("window.__bench")
                    page.close()
                    results.append({**marks, "wall_s": round(wall, 3),
                                    "newplot_to_afterplot_ms": marks["afterplot_ms"] - marks["newplot_called_ms"]})
            finally:
                browser.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    first, later = results[0], results[1:] or results
    pick = ("plotly_loaded_ms", "newplot_called_ms", "afterplot_ms", "painted_ms", "newplot_to_afterplot_ms")
    return {
        "webgl": first["webgl"], "gl_canvas": first["gl_canvas"], "points_drawn": first["points"],
        "first_load": {k: round(first[k]) for k in pick} | {"wall_s": first["wall_s"]},
        "later_loads_median": {k: round(statistics.median(r[k] for r in later)) for k in pick}
        | {"wall_s": round(statistics.median(r["wall_s"] for r in later), 3)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--browser-runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    frame = synthetic_frame(args.tracks)
    result = {"tracks": args.tracks, "repeats": args.repeats}
    result["python"], figure = python_side(frame, args.repeats)
    if args.browser:
        result["browser"] = browser_side(figure, args.browser_runs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
