"""Several sessions in one process: searches while an import writes and a delete runs."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.fixtures_audio import sine, write_audio

REPO = Path(__file__).resolve().parents[1]


def test_searches_during_ingest_and_delete_see_no_errors_and_no_phantoms(fake_library, tmp_path):
    library = fake_library
    for i in range(6):
        write_audio(tmp_path / "first" / f"a{i}.wav", sine(200 + 40 * i, 1), 22_050)
    for i in range(12):
        write_audio(tmp_path / "second" / f"b{i}.wav", sine(2_000 + 100 * i, 1), 22_050)
    initial = library.ingest([tmp_path / "first"])
    victims = [r.track_id for r in initial[:3]]

    errors: list[BaseException] = []
    deleted_at: dict[str, float] = {}
    stop = threading.Event()
    searches = 0

    def searcher():
        nonlocal searches
        while not stop.is_set():
            started = time.monotonic()
            try:
                hits = library.search_text("a 300 Hz tone", limit=50)
            except BaseException as exc:  # noqa: BLE001 - any error is a failure here
                errors.append(exc)
                return
            searches += 1
            for hit in hits:
                gone_since = deleted_at.get(hit.id)
                if gone_since is not None and gone_since < started:
                    errors.append(AssertionError(f"phantom hit {hit.filename} after its delete"))

    def deleter():
        for track_id in victims:
            time.sleep(0.05)
            try:
                library.delete(track_id)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            deleted_at[track_id] = time.monotonic()

    threads = [threading.Thread(target=searcher) for _ in range(4)] + [threading.Thread(target=deleter)]
    for thread in threads:
        thread.start()
    results = library.ingest([tmp_path / "second"])  # the writer, on this thread
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:3]
    assert searches > 10
    assert {r.status for r in results} == {"added"}
    final = library.search_text("noise", limit=100)
    assert len(final) == 6 - 3 + 12
    assert not set(victims) & {hit.id for hit in final}


def test_a_second_process_gets_a_clear_message(library):
    env = dict(os.environ, TRAUM_DATA_DIR=str(library.settings.data_dir), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "engine", "stats"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "Library in use" in result.stderr and "Traceback" not in result.stderr
