"""The whole pipeline on the tiny offline CLAP, loaded through the production path."""

import numpy as np
import pytest

from engine.config import Settings
from engine.library import Library
from engine.search import embedding_matrix
from tests.fixtures_audio import click_track, sine, white_noise, write_audio


@pytest.fixture
def clap_library(tiny_clap_settings, fresh_embedders):
    with Library(tiny_clap_settings) as library:
        yield library


def stored_vector(library, track_id):
    table = library._store.embeddings.table(library._embedder().model_id, 1, [track_id])
    return embedding_matrix(table)[0]


def test_a_file_searched_by_itself_ranks_first(clap_library, audio_dir):
    results = clap_library.ingest([audio_dir])
    added = [r for r in results if r.status == "added"]
    assert len(added) == 10 and not any(r.note for r in added)
    assert clap_library._store.embeddings.count_pending(clap_library._embedder().model_id, 1) == 0
    for name in ("sine440.wav", "noise.wav", "click120.wav", "stereo44k.wav"):
        [top] = clap_library.search_audio(audio_dir / name, limit=1)
        assert top.filename == name and top.score > 0.999, (name, top)
    # A text query scores every track by the dot product of the unit vectors.
    embedder = clap_library._embedder()
    query = embedder.embed_text(["a bright metallic click"])[0]
    hits = clap_library.search_text("a bright metallic click", limit=5)
    expected = sorted(((float(stored_vector(clap_library, r.track_id) @ query), r.track_id) for r in added),
                      reverse=True)[:5]
    assert [h.id for h in hits] == [track_id for _, track_id in expected]
    assert [h.score for h in hits] == pytest.approx([score for score, _ in expected], abs=1e-5)


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
    signal = np.concatenate([white_noise(10, rate), sine(440, 10, rate), click_track(150, 5, rate)])
    path = write_audio(tmp_path / "long.wav", signal, rate)
    [result] = clap_library.ingest([path])
    model_id = clap_library._embedder().model_id
    windows = clap_library._store.embeddings.windows(model_id, [result.track_id])[result.track_id]
    assert windows.starts_s == [0.0, 10.0, 15.0]
    assert windows.ends_s == [10.0, 20.0, 25.0]
    assert windows.embeddings.shape == (3, clap_library._embedder().dim)
    assert windows.embeddings.dtype == np.float32
    # The middle 10 s, cut out and searched on its own, finds its own window.
    clip = write_audio(tmp_path / "clip.wav", signal[10 * rate : 20 * rate], rate)
    [hit] = clap_library.search_audio(clip, limit=1, segments=True)
    assert hit.id == result.track_id and hit.segment_start == 10.0 and hit.score > 0.99
