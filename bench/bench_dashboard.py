"""Dashboard timings in a real browser: start-up, search, analytics, server memory.

Builds a synthetic library (bench_search.build_library: N tracks with random
unit embeddings under the model's real id) and a full-size randomly
initialised CLAP (bench_clap.build_full_size), starts ``streamlit run
app.py`` against them, and drives Debian's Chromium with Playwright:

- home interactive: server start until the Home page shows its metrics;
- text search: prompt submitted until the first hit is on screen (model loaded);
- analytics: navigation until all five plotly charts are drawn: a full page load of
  its URL; from Home through the sidebar (no page load); and a full page load in a
  fresh browser context, where nothing is cached and Home never preloaded plotly;
- server RSS with the model loaded and the library open.

Usage: .venv/bin/python bench/bench_dashboard.py [--tracks 10000,100000] [--model-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

PROMPTS = ["punchy 808 kick", "warm analog pad", "dusty vinyl drum break", "bright plucked synth",
           "deep sub bass", "airy female vocal chop", "metallic percussion loop"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 1048576


def shown(page, text: str, *, timeout_ms: int = 60_000) -> None:
    """Wait until ``text`` is in the page, checking every 20 ms. (Playwright's expect()
    backs off to one check per second, which made timings jump by up to a second.)"""
    page.wait_for_function("text => document.body && document.body.innerText.includes(text)", arg=text,
                           polling=20, timeout=timeout_ms)


def measure(data_dir: Path, model_dir: Path) -> dict:
    from playwright.sync_api import expect, sync_playwright

    playwright = sync_playwright().start()
    # The browser starts first: its cold start is not the dashboard's.
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(300_000)
    page.goto("about:blank")
    port = free_port()
    env = dict(os.environ, TRAUM_DATA_DIR=str(data_dir), TRAUM_CLAP_MODEL=str(model_dir), TRAUM_CLAP_DEVICE="cpu",
               HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    result: dict = {}
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.05)
        result["health_s"] = time.perf_counter() - started
        page.goto(url)
        shown(page, "Pending embeddings", timeout_ms=120_000)
        result["home_interactive_s"] = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # the model loads in the background
            page.reload()
            expect(page.get_by_text("Search model")).to_be_visible(timeout=60_000)
            page.wait_for_timeout(300)
            if page.get_by_text("CLAP ready").count():
                break
            if page.get_by_text("not available").count():
                raise SystemExit("the model failed to load: " + page.locator("body").inner_text()[:2000])
            page.wait_for_timeout(1000)
        result["model_ready_s"] = time.perf_counter() - started

        page.goto(f"{url}/search")
        prompt = page.get_by_label("Prompt")
        expect(prompt).to_be_visible(timeout=60_000)
        timings = []
        for text in PROMPTS:
            prompt.fill(text)
            begin = time.perf_counter()
            prompt.press("Enter")
            # The page names the prompt above its hits once they are drawn.
            shown(page, f"results for “{text}”")
            shown(page, "1. ")
            timings.append(time.perf_counter() - begin)
        result["search_s"] = {"median": statistics.median(timings), "max": max(timings), "runs": timings}

        all_drawn = "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5"
        begin = time.perf_counter()
        page.goto(f"{url}/analytics")  # a full page load, as from a bookmark
        page.wait_for_function(all_drawn, polling=20)
        result["analytics_s"] = time.perf_counter() - begin
        page.goto(url)
        shown(page, "Pending embeddings")
        page.wait_for_timeout(2000)  # Home sits on screen for a moment ...
        begin = time.perf_counter()
        page.get_by_role("link", name="Analytics").click()  # ... then the sidebar: no page load
        page.wait_for_function(all_drawn, polling=20)
        result["analytics_from_home_s"] = time.perf_counter() - begin
        # A browser that has never drawn a chart here: nothing cached, nothing preloaded.
        fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
        cold = fresh.new_page()
        begin = time.perf_counter()
        cold.goto(f"{url}/analytics")
        cold.wait_for_function(all_drawn, polling=20, timeout=60_000)
        result["analytics_cold_s"] = time.perf_counter() - begin
        fresh.close()
        result["server_rss_mb"] = rss_mb(server.pid)
    finally:
        browser.close()
        playwright.stop()
        server.terminate()
        server.wait(timeout=30)
    return result


def describe(data_dir: Path, model_dir: Path, n: int) -> dict:
    """Give every synthetic track a description and its categories, as an up-to-date library has,
    so the dashboard starts in its steady state; returns what that first pass cost."""
    from bench_filters import describe_library

    from engine.clap import get_embedder
    from engine.classify import categorise_library
    from engine.config import Settings
    from engine.library import Library

    settings = Settings(data_dir=data_dir, clap_model=str(model_dir), clap_device="cpu")
    with Library(settings) as library:
        describe_library(library, n)
        embedder = get_embedder(settings)
        started = time.perf_counter()
        categorise_library(library._store, embedder)  # includes embedding the 63 category prompts once
        return {"first_categorise_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", default="10000,100000")
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "traum-bench-clap")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from bench_clap import build_full_size
    from bench_search import build_library

    from engine.clap import model_status
    from engine.config import Settings

    if not (args.model_dir / "config.json").exists():
        print("building the full-size random model ...", flush=True)
        build_full_size(args.model_dir)
    results = {}
    for n in (int(x) for x in args.tracks.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            status = model_status(Settings(data_dir=data_dir, clap_model=str(args.model_dir), clap_device="cpu"))
            build_library(data_dir, n, 512, status["model_id"], chunk=50_000, seed=0)
            described = describe(data_dir, args.model_dir, n)
            results[n] = measure(data_dir, args.model_dir) | described
            print(n, json.dumps(results[n]), flush=True)
    print("\n| tracks | home interactive | model ready | text search (median / max) | analytics (URL / from Home / cold) "
          "| server RSS |")
    print("|---|---|---|---|---|---|")
    for n, r in results.items():
        print(f"| {n:,} | {r['home_interactive_s']:.1f} s | {r['model_ready_s']:.1f} s | "
              f"{r['search_s']['median']:.2f} / {r['search_s']['max']:.2f} s | "
              f"{r['analytics_s']:.2f} / {r['analytics_from_home_s']:.2f} / {r['analytics_cold_s']:.2f} s | "
              f"{r['server_rss_mb']:.0f} MB |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
