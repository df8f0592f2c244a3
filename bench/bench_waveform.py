"""What the waveform overview adds to an import: its time per file against the whole ingest of that file.

For stereo 44.1 kHz wav files of a few lengths (music-like, bench_decode.music_like) it times, as
medians over ``--repeats`` runs:

* ``waveform_ms``: ``engine.stages.waveform_of`` on the decode an import holds (the mono downmix at
  the file's rate), which is all the overview adds to an import;
* ``peaks_stereo_ms``: ``engine.waveform.peaks`` on the (frames, 2) array, for comparison;
* ``decode_ms``: ``engine.audio.decode`` of the file;
* ``ingest_ms``: ``Library.ingest`` of the file into an empty library (hash, decode, features,
  windows, the fake embedder of the tests, DuckDB), the overview included. The real CLAP model
  adds seconds per file, so ``share_of_ingest`` is an upper bound on the overview's share.

Usage: .venv/bin/python bench/bench_waveform.py [--seconds 1,10,60] [--repeats 5]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_decode import music_like  # noqa: E402

from engine import audio  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.features import warm_up  # noqa: E402
from engine.library import Library  # noqa: E402
from engine.stages import waveform_of  # noqa: E402
from engine.waveform import WAVEFORM_COLUMNS, peaks  # noqa: E402
from tests.fixtures_audio import write_audio  # noqa: E402
from tests.fixtures_fake import FakeEmbedder  # noqa: E402

RATE = 44_100


def median_ms(run, repeats: int) -> float:
    run()  # first call outside the timing: imports, allocator, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def ingest_ms(path: Path, tmp: Path, repeats: int) -> float:
    """Median wall time of importing ``path`` into a fresh, empty library (opening it not counted)."""
    embedder = FakeEmbedder()
    times = []
    for i in range(repeats + 1):
        with Library(Settings(data_dir=tmp / f"lib{i}", clap_model=str(tmp / "no-model")),
                     embedder_provider=lambda: embedder) as library:
            started = time.perf_counter()
            [result] = library.ingest([path])
            elapsed = time.perf_counter() - started
        if result.status != "added":
            raise SystemExit(f"{path.name}: {result.status} {result.error}")
        if i:  # the first import warms the model path and DuckDB
            times.append(elapsed)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", default="1,10,60", help="file lengths, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warm_up()
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seconds in (float(s) for s in args.seconds.split(",")):
            stereo = music_like(seconds)
            path = write_audio(tmp / f"stereo{seconds:g}s.wav", stereo, RATE)
            decoded = audio.decode(path, max_duration_s=600)
            waveform = median_ms(lambda: waveform_of(decoded), max(args.repeats, 20))
            whole = ingest_ms(path, tmp / f"ingest{seconds:g}", args.repeats)
            files.append({
                "seconds": seconds,
                "waveform_ms": round(waveform, 3),
                "peaks_stereo_ms": round(median_ms(lambda: peaks(stereo, sample_rate=RATE), max(args.repeats, 20)), 3),
                "decode_ms": round(median_ms(lambda: audio.decode(path, max_duration_s=600), args.repeats), 2),
                "ingest_ms": round(whole, 1),
                "share_of_ingest": round(waveform / whole, 5),
            })
    print(json.dumps({"columns": WAVEFORM_COLUMNS, "rate": RATE, "channels": 2, "repeats": args.repeats,
                      "python": platform.python_version(), "machine": platform.machine(), "files": files},
                     indent=2))


if __name__ == "__main__":
    main()
