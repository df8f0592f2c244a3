"""The whole pipeline on the tiny offline CLAP, loaded through the production path."""

import numpy as np
import pytest

from engine.config import Settings
from engine.library import Library
from tests.fixtures_audio import click_track, sine, white_noise, write_audio


@pytest.fixture
def clap_library(tiny_clap_settings, fresh_embedders):
    with Library(tiny_clap_settings) as library:
        yield library


def stored_vector(library, track_id):
    table = library.store.embedding_table(library.ingestor.embedder_provider().model_id, 1, [track_id])
    return np.asarray(table.column("embedding").to_pylist()[0], dtype=np.float32)


def test_a_file_searched_by_itself_ranks_first(clap_library, audio_dir):
    results = clap_library.ingest([audio_dir])
    added = [r for r in results if r.status == "added"]
    assert len(added) == 10 and not any(r.note for r in added)
    assert clap_library.store.count_pending(clap_library.ingestor.embedder_provider().model_id, 1) == 0
    for name in ("sine440.wav", "noise.wav", "click120.wav", "stereo44k.wav"):
        [top] = clap_library.search(audio_path=audio_dir / name, limit=1)
        assert top.filename == name and top.score > 0.999, (name, top)
    hits = clap_library.search(text="a bright metallic click", limit=5)
    assert len(hits) == 5 and all(-1.0 <= h.score <= 1.0 for h in hits)


def test_embeddings_are_identical_across_runs_and_batches(tiny_clap_dir, tmp_path, fresh_embedders):
    rate = 44_100
    target = write_audio(tmp_path / "in" / "target.wav", click_track(100, 23, rate) + sine(330, 23, rate, 0.1), rate)
    for i in range(3):
        write_audio(tmp_path / "in" / f"other{i}.wav", white_noise(7 + i, rate, seed=i), rate)
    alone = Settings(data_dir=tmp_path / "alone", clap_model=str(tiny_clap_dir), clap_device="cpu")
    with Library(alone) as library:
        [result] = library.ingest([target])
        first = stored_vector(library, result.track_id)
    crowded = Settings(data_dir=tmp_path / "crowded", clap_model=str(tiny_clap_dir), clap_device="cpu",
                       clap_batch_windows=5, max_concurrent_jobs=2)
    with Library(crowded) as library:
        results = library.ingest([tmp_path / "in"])
        [result] = [r for r in results if r.source.endswith("target.wav")]
        second = stored_vector(library, result.track_id)
    assert float(first @ second) >= 1 - 1e-6
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)


def test_windows_and_segment_starts_are_stored(clap_library, tmp_path):
    rate = 44_100
    path = write_audio(tmp_path / "long.wav", np.concatenate([white_noise(10, rate), sine(440, 15, rate)]), rate)
    [result] = clap_library.ingest([path])
    windows = clap_library.store.window_table(clap_library.ingestor.embedder_provider().model_id, [result.track_id])
    assert windows.column("start_s").to_pylist() == [0.0, 10.0, 15.0]
    assert windows.column("end_s").to_pylist() == [10.0, 20.0, 25.0]
    [hit] = clap_library.search(audio_bytes=(tmp_path / "long.wav").read_bytes(), limit=1, segments=True)
    assert hit.id == result.track_id and hit.segment_start in (0.0, 10.0, 15.0)
