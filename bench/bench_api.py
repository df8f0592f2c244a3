"""Benchmark the HTTP API of the real server (``streamlit run serve.py``) on a large library.

1. Builds a synthetic library (bench_search.build_library, described and categorised as in
   bench_dashboard) with the full-size random CLAP's model id.
2. In-process: ``Library.search_text`` for a repeated prompt (embedded once, then cached) and for
   distinct prompts, median of N; then the library is closed.
3. Starts the server on the same library and the same model, waits until the model and index are
   ready, and times the same searches through ``POST /api/v1/search/text`` from this process
   (HTTP/1.1): a new connection per request (urllib, as a one-off script does), and in turn with
   it one connection kept open (as a plugin or a requests.Session keeps it).
   Then, while the server runs, the same searches in-process (on a copy of the library made before
   the server started) and through the API in alternating blocks: the comparison the target is
   judged by, since the machine's drift between steps 2 and 3 moves the in-process figure by more
   than the difference being measured. Before the server starts, the same new-prompt comparison with
   the library and its copy both in-process shows how far two equal sides land apart by chance.
   New prompts are many (500 a side by default): each runs the text tower (a 30-120 ms forward, as the
   machine goes), and with 100 a side two equal sides landed up to 5.5 ms apart.
4. 16 concurrent clients searching for 30 s (prompts from a list, so most are cached after the
   first round): requests, errors, p50 and p95.
5. Uploads one 90 MB WAV through ``POST /api/v1/audio/upload`` and samples the server's RSS every
   20 ms: the growth while the body streams in and the import runs.

Usage:

    .venv/bin/python bench/bench_api.py [--tracks 100000] [--repeats 100] [--new-prompts 500] [--model-dir DIR]
                                        [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dashboard import PROMPTS, describe, rss_mb  # noqa: E402
from bench_search import build_library, machine  # noqa: E402

CLIENTS = 16
CONCURRENT_S = 30.0
UPLOAD_MB = 90


def post_json(url: str, body: dict) -> tuple[int, float]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status, time.perf_counter() - started


class KeptConnection:
    """One HTTP/1.1 connection kept open between requests, as a plugin or a requests.Session keeps it."""

    def __init__(self, api: str):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(api)
        self._prefix = parts.path
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self._connection.connect()
        # As urllib3 (requests) does: http.client sends the headers and the body in two writes, and
        # on a kept connection Nagle's algorithm holds the body until the server's delayed ACK (40 ms).
        self._connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post_json(self, path: str, body: dict) -> tuple[int, float]:
        data = json.dumps(body).encode()
        started = time.perf_counter()
        self._connection.request("POST", self._prefix + path, body=data, headers={"Content-Type": "application/json"})
        response = self._connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def close(self) -> None:
        self._connection.close()


def percentiles(values: list[float]) -> dict:
    ms = sorted(v * 1000 for v in values)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1)}


def timed_search(library, prompt: str) -> float:
    """Seconds one ``Library.search_text`` takes."""
    started = time.perf_counter()
    library.search_text(prompt)
    return time.perf_counter() - started


def settle(library) -> None:
    """Load the model and index and search once. The first search starts the approximate index's
    build or load in the background (past engine.shortlist.MIN_ROWS rows): wait for it, so the
    steady state is timed, as the server is timed once idle."""
    library.prepare_search()
    library.search_text(PROMPTS[0])
    library._index.shortlist.wait()


def in_process(settings, repeats: int) -> dict:
    from engine.library import Library

    with Library(settings) as library:
        settle(library)
        repeated = [timed_search(library, PROMPTS[0]) for _ in range(repeats)]
        distinct = [timed_search(library, f"{PROMPTS[i % len(PROMPTS)]} number {i}") for i in range(repeats)]
    return {"repeated_prompt": percentiles(repeated), "distinct_prompts": percentiles(distinct)}


def in_turn(sides: tuple, round_: int) -> tuple:
    """The sides in their order on even rounds and the other way round on odd ones, so neither side
    always runs first. In-process against in-process (two copies of one library, 100 new prompts a side
    in blocks of 20), the p50s differed by -6.2 to +0.9 ms (median -1.9) over six runs with one copy
    always second, and by -0.9 to +0.9 ms over four with the order swapped."""
    return sides if round_ % 2 == 0 else sides[::-1]


def new_prompts(round_: int, block: int) -> list[str]:
    """``block`` prompts that no earlier round used, so the text tower runs for each."""
    return [f"{PROMPTS[i % len(PROMPTS)]} take {round_}.{i}" for i in range(block)]


def two_copies_in_process(settings, copy_settings, repeats: int, *, block: int = 20) -> dict:
    """The new-prompt comparison of ``interleaved`` with the library in-process on both sides (the
    library and its copy, in one process): how far apart two sides that do the same work land by
    chance, so the API's difference can be read against the method's own noise. The model is loaded
    once per process and both sides share its text cache, so each side's prompts end in its own letter
    (the same number of tokens)."""
    from engine.library import Library

    with Library(settings) as first, Library(copy_settings) as second:
        settle(first)
        settle(second)
        times: tuple[list, list] = ([], [])
        sides = ((times[0], first, "a"), (times[1], second, "b"))
        for round_ in range(max(1, repeats // block)):
            prompts = new_prompts(round_, block)
            for side_times, library, letter in in_turn(sides, round_):
                side_times.extend(timed_search(library, f"{prompt} {letter}") for prompt in prompts)
    result = {"first": percentiles(times[0]), "second": percentiles(times[1])}
    result["second_minus_first_p50_ms"] = round(result["second"]["p50_ms"] - result["first"]["p50_ms"], 1)
    return result


def interleaved(settings, api: str, repeats: int, *, distinct: int | None = None, block: int = 20) -> dict:
    """The same search in-process (on a copy of the server's library, made before the server started)
    and through the API, in alternating blocks of ``block`` requests while the server runs: a drift of
    the machine (the in-process p50 moves by 3 ms between runs on machine B) then hits both sides alike,
    where ``in_process`` and ``through_api`` measure minutes apart. Blocks, not single requests in turn:
    a process searching right after its own last search finds its threads awake and runs faster than one
    that waited through the other's (3 ms either way at 100k tracks), which would time the order. The
    sides take turns at going first in a round (``in_turn``). ``repeats`` searches a side for the same
    prompt, ``distinct`` (default ``repeats``) for new prompts."""
    from engine.library import Library

    with Library(settings) as library:
        settle(library)
        kept = KeptConnection(api)
        kept.post_json("/search/text", {"query": PROMPTS[0]})
        here, new, kept_open = [], [], []
        same = ((here, lambda: timed_search(library, PROMPTS[0])),
                (new, lambda: post_json(f"{api}/search/text", {"query": PROMPTS[0]})[1]),
                (kept_open, lambda: kept.post_json("/search/text", {"query": PROMPTS[0]})[1]))
        for round_ in range(max(1, repeats // block)):
            for times, search in in_turn(same, round_):
                times.extend(search() for _ in range(block))
        kept.close()
        # New prompts (the text tower runs): each side embeds the same prompts, each once.
        distinct_here, distinct_api = [], []
        sides = ((distinct_here, lambda prompt: timed_search(library, prompt)),
                 (distinct_api, lambda prompt: post_json(f"{api}/search/text", {"query": prompt})[1]))
        for round_ in range(max(1, (distinct or repeats) // block)):
            prompts = new_prompts(round_, block)
            for times, search in in_turn(sides, round_):
                times.extend(search(prompt) for prompt in prompts)
    result = {"block": block, "in_process": percentiles(here), "api_new_connection": percentiles(new),
              "api_kept_connection": percentiles(kept_open), "distinct_prompts_in_process": percentiles(distinct_here),
              "distinct_prompts_api_new_connection": percentiles(distinct_api)}
    for side in ("new_connection", "kept_connection"):
        result[f"api_minus_in_process_p50_ms_{side}"] = round(
            result[f"api_{side}"]["p50_ms"] - result["in_process"]["p50_ms"], 1)
    result["api_minus_in_process_p50_ms_distinct_prompts"] = round(
        result["distinct_prompts_api_new_connection"]["p50_ms"] - result["distinct_prompts_in_process"]["p50_ms"], 1)
    return result


def through_api(api: str, repeats: int, server) -> dict:
    post_json(f"{api}/search/text", {"query": PROMPTS[0]})
    wait_until_idle(server)  # the approximate index's build or load, started by the first search
    kept = KeptConnection(api)
    kept.post_json("/search/text", {"query": PROMPTS[0]})
    repeated, repeated_kept = [], []
    for _ in range(repeats):  # the two clients in turn, so a busy moment of the machine hits both alike
        repeated.append(post_json(f"{api}/search/text", {"query": PROMPTS[0]})[1])
        repeated_kept.append(kept.post_json("/search/text", {"query": PROMPTS[0]})[1])
    kept.close()
    distinct = [post_json(f"{api}/search/text", {"query": f"{PROMPTS[i % len(PROMPTS)]} item {i}"})[1]
                for i in range(repeats)]
    return {"repeated_prompt": percentiles(repeated), "repeated_prompt_kept_alive": percentiles(repeated_kept),
            "distinct_prompts": percentiles(distinct)}


def concurrent(api: str) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + CONCURRENT_S

    def client(number: int) -> None:
        i = number
        while time.monotonic() < stop:
            try:
                status, took = post_json(f"{api}/search/text", {"query": PROMPTS[i % len(PROMPTS)], "limit": 20})
                with lock:
                    (latencies if status == 200 else errors).append(took if status == 200 else str(status))
            except Exception as exc:  # a refused connection, a timeout: counted, not raised
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            i += CLIENTS

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": CLIENTS, "seconds": CONCURRENT_S, "requests": len(latencies) + len(errors),
            "errors": len(errors), "error_examples": errors[:5], **percentiles(latencies)}


def upload(api: str, pid: int, work: Path) -> dict:
    import soundfile as sf

    seconds = int(UPLOAD_MB * 1024 * 1024 / (44_100 * 2 * 2))  # 16-bit stereo
    rng = np.random.default_rng(0)
    path = work / "big.wav"
    sf.write(path, (0.1 * rng.standard_normal((seconds * 44_100, 2))).astype(np.float32), 44_100, subtype="PCM_16")
    size = path.stat().st_size
    boundary = "benchboundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                yield chunk
        yield tail

    before = rss_mb(pid)
    peak = [before]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    request = urllib.request.Request(
        f"{api}/audio/upload", data=body(), method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Content-Length": str(len(head) + size + len(tail))})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        [accepted] = json.loads(response.read())
    received_s = time.perf_counter() - started
    received_peak = peak[0]
    while True:  # the import runs in the background
        with urllib.request.urlopen(f"{api}/audio/status/{accepted['job_id']}", timeout=60) as response:
            job = json.loads(response.read())
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    sampling.set()
    sampler.join()
    return {"file_mb": round(size / 2**20, 1), "answered_s": round(received_s, 2), "job": job["status"],
            "rss_before_mb": round(before), "rss_peak_while_receiving_mb": round(received_peak),
            "growth_while_receiving_mb": round(received_peak - before),
            "rss_peak_including_import_mb": round(peak[0]), "growth_including_import_mb": round(peak[0] - before)}


def wait_until_idle(process, *, below_percent: float = 5.0, timeout_s: float = 300.0) -> float:
    """Seconds until ``process`` used under ``below_percent`` of a core over two seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.cpu_percent(interval=2.0) < below_percent:
            break
    return round(time.monotonic() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "traum-bench-clap")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--new-prompts", type=int, default=500,
                        help="new prompts a side in the interleaved comparison and for the two copies")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from bench_clap import build_full_size

    from engine.clap import model_status
    from engine.config import Settings
    from tests.fixtures_server import serving

    if not (args.model_dir / "config.json").exists():
        build_full_size(args.model_dir)
    report: dict = {"machine": machine(), "tracks": args.tracks}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        settings = Settings(data_dir=data_dir, clap_model=str(args.model_dir), clap_device="cpu",
                            max_file_size_mb=UPLOAD_MB + 10)
        build_library(data_dir, args.tracks, 512, model_status(settings)["model_id"], chunk=50_000, seed=0)
        report.update(describe(data_dir, args.model_dir, args.tracks))
        report["in_process"] = in_process(settings, args.repeats)
        # A copy for the interleaved phase: one process holds a library (a copied file keeps its vector
        # cache, which is checked by the file's stamps).
        shutil.copytree(data_dir, work / "copy" / "data")
        copy_settings = settings.model_copy(update={"data_dir": work / "copy" / "data"})
        report["two_copies_in_process"] = two_copies_in_process(settings, copy_settings, args.new_prompts)
        env = {"TRAUM_MAX_FILE_SIZE_MB": str(UPLOAD_MB + 10)}
        import psutil

        with serving(work, args.model_dir, env=env) as url:
            api = f"{url}/api/v1"
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:  # the model loads in the server's warm-up
                with urllib.request.urlopen(f"{api}/health", timeout=30) as response:
                    if json.loads(response.read())["model"]["loaded"]:
                        break
                time.sleep(1)
            server = next(p for p in psutil.Process().children(recursive=True) if "serve.py" in " ".join(p.cmdline()))
            # The warm-up goes on after the model loads (the index, categories, a reanalysis of what an
            # older version measured): compare with the in-process figures once the server is idle.
            report["server_idle_after_s"] = wait_until_idle(server)
            report["through_api"] = through_api(api, args.repeats, server)
            report["interleaved"] = interleaved(copy_settings, api, args.repeats, distinct=args.new_prompts)
            report["concurrent"] = concurrent(api)
            report["upload"] = upload(api, server.pid, work)
    for part in ("repeated_prompt", "distinct_prompts"):
        report[f"api_minus_in_process_p50_ms_{part}"] = round(
            report["through_api"][part]["p50_ms"] - report["in_process"][part]["p50_ms"], 1)
    kept_p50 = report["through_api"]["repeated_prompt_kept_alive"]["p50_ms"]
    report["api_minus_in_process_p50_ms_repeated_prompt_kept_alive"] = round(
        kept_p50 - report["in_process"]["repeated_prompt"]["p50_ms"], 1)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
