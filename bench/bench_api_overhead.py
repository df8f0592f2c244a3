"""Per-request cost of the HTTP layers alone, without any search work.

The API app (engine.api.create_api: its guard, FastAPI, pydantic) over a library whose search
returns 20 fixed hits at once, against a plain Starlette route answering the same JSON, both
under plain uvicorn in a child process, from a client making a new connection per request (as
bench_api.py does). The difference between bench_api.py's "through the API" and "in-process"
beyond these figures is the search itself running inside the server.

Usage: .venv/bin/python bench/bench_api_overhead.py [--requests 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PORT = 8765


def fixed_hits() -> list:
    from engine.search import Hit

    now = dt.datetime.now(dt.timezone.utc)
    return [Hit(id=f"{i:064x}", filename=f"kick {i}.wav", score=0.5 - i / 100, rank=i + 1, duration=1.5, tempo=120.0,
                spectral_centroid=1500.0, format="wav", segment_start=0.0, segment_end=1.5, storage="referenced",
                path=f"/music/drums/kick {i}.wav", kind="one-shot", key="A minor", camelot="8A", category="kick",
                category_score=0.8, created_at=now, favourite=False, tags=("dark",))
            for i in range(20)]


def serve() -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    from engine.api import create_api

    hits = fixed_hits()

    class FixedLibrary:
        def search_text(self, *args, **kwargs):
            return hits

    body = json.dumps([hit.to_dict() | {"created_at": hit.created_at.isoformat()} for hit in hits]).encode()

    async def plain(request):
        await request.body()
        return Response(body, media_type="application/json")

    library = FixedLibrary()
    app = Starlette(routes=[Route("/plain", plain, methods=["POST"]), Mount("/api/v1", create_api(lambda: library))])
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="error", access_log=False)


def post(path: str, data: bytes) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        json.loads(response.read())
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        query = json.dumps({"query": "punchy kick"}).encode()
        for label, path in (("plain Starlette route", "/plain"), ("API /search/text, no search work",
                                                                 "/api/v1/search/text")) * 2:
            latencies = [post(path, query) for _ in range(args.requests)]
            print(f"{label:40s} p50 {statistics.median(latencies):.2f} ms")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
