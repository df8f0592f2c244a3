"""The watcher as a user runs it (``python -m engine watch`` in its own process), and a sync
killed with SIGKILL halfway and run again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.config import Settings
from engine.library import Library
from tests.fixtures_audio import sine, write_audio

REPO = Path(__file__).resolve().parents[1]
RATE = 44_100


def _env(tmp_path: Path) -> dict:
    # No model: embeddings stay pending, which keeps these process tests quick.
    return {**os.environ, "TRAUM_CLAP_MODEL": str(tmp_path / "no-model"), "PYTHONUNBUFFERED": "1"}


class _Lines:
    """Collects a process's stderr lines on a thread, so the test can wait for one."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout: float = 60.0, after: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, line in enumerate(self.lines[after:], start=after):
                if text in line:
                    return i
            time.sleep(0.1)
        raise AssertionError(f"no line with {text!r} within {timeout} s; got: {self.lines}")


def test_watch_follows_copies_moves_deletes_and_stops_cleanly(tmp_path):
    data, root = tmp_path / "data", tmp_path / "Samples"
    write_audio(root / "first.wav", sine(200, 0.5), RATE)
    write_audio(root / "leaving.wav", sine(250, 0.5), RATE)
    with Library(Settings(data_dir=data, clap_model=str(tmp_path / "no-model"))) as library:
        library.add_folder(root)
        first_id = {Path(t.path).name: t.id for t in library.tracks()}["first.wav"]

    process = subprocess.Popen([sys.executable, "-m", "engine", "watch", "--data-dir", str(data)], cwd=REPO,
                               env=_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        err = _Lines(process.stderr)
        start = err.wait_for("synced:")  # the catch-up sync
        # Files copied in, one of them written slowly as a long copy would be.
        for i in range(3):
            write_audio(tmp_path / "staging" / f"new{i}.wav", sine(300 + 100 * i, 0.5), RATE)
            shutil.copy(tmp_path / "staging" / f"new{i}.wav", root / f"new{i}.wav")
        slow = sine(900, 3.0)
        with sf.SoundFile(str(root / "slow.wav"), "w", RATE, 1) as handle:
            for block in np.array_split(slow, 6):
                handle.write(block)
                handle.flush()
                time.sleep(0.3)
        (root / "Sub").mkdir()
        os.rename(root / "first.wav", root / "Sub" / "first.wav")
        (root / "leaving.wav").unlink()
        (root / "notes.txt").write_text("clutter is ignored")
        err.wait_for("moved", after=start + 1)
        err.wait_for("missing", after=start + 1)
        time.sleep(2.5)  # anything still queued settles
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        err.wait_for("Stopped.", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()

    with Library(Settings(data_dir=data, clap_model=str(tmp_path / "no-model"))) as library:
        present = {Path(t.path).name: t for t in library.tracks(limit=100)}
        assert set(present) == {"first.wav", "new0.wav", "new1.wav", "new2.wav", "slow.wav"}
        assert present["first.wav"].id == first_id and present["first.wav"].path.endswith("/Sub/first.wav")
        assert present["slow.wav"].duration == 3.0  # imported once, whole
        assert [Path(t.path).name for t in library.tracks(missing=True)] == ["leaving.wav"]
        assert library.count() == 5 and library.stats()["tracks"] == 6


def test_a_sync_killed_halfway_is_completed_by_the_next(tmp_path):
    data, root = tmp_path / "data", tmp_path / "Samples"
    for i in range(60):
        write_audio(root / f"pack{i % 3}" / f"hit{i:02d}.wav", sine(100 + 15 * i, 1.0), RATE)
    process = subprocess.Popen([sys.executable, "-m", "engine", "folder", "add", str(root), "--data-dir", str(data)],
                               cwd=REPO, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it while tracks are being written: the write-ahead log grows by about 3 KB a track
    # (measured: 15 KB after the schema, 314 KB after 60 tracks).
    wal, deadline = data / "traum.duckdb.wal", time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > 40_000:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    with Library(Settings(data_dir=data, clap_model=str(tmp_path / "no-model"))) as library:
        before = library.count()
        assert 0 < before < 60, before  # the kill came in the middle of the import
        assert library.interrupted_jobs > 0  # its unfinished jobs say so
        report = library.sync()
        assert report.failed == [] and report.missing == []
        assert len(report.added) + report.unchanged == 60 and len(report.added) == 60 - before
        assert library.count() == library.stats()["tracks"] == 60
        names = [Path(t.path).name for t in library.tracks(limit=100)]
        assert len(names) == len(set(names)) == 60  # each file once
        rows = library._store.db.records  # no half-written track: every track has its measurements
        assert rows("n", "SELECT count(*) AS n FROM features")[0]["n"] == 60
