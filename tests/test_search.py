import time
from concurrent.futures import Future

import numpy as np
import pytest

from engine.errors import EngineError, InputError, ModelUnavailableError
from engine.library import Filters, Library
from tests.fixtures_audio import sine, white_noise, write_audio
from tests.fixtures_fake import FakeEmbedder


@pytest.fixture
def indexed(fake_library, audio_dir):
    results = fake_library.ingest([audio_dir])
    ids = {r.source.rsplit("/", 1)[-1]: r.track_id for r in results if r.status == "added"}
    return fake_library, ids


def names(hits):
    return [hit.filename for hit in hits]


def test_every_added_track_is_embedded(indexed):
    library, ids = indexed
    assert len(ids) == 10
    assert library._store.embeddings.count_pending("fake-bands-v1", 1) == 0


def test_text_queries_rank_exactly(indexed):
    library, _ = indexed
    assert names(library.search_text("a 440 Hz tone", limit=1)) == ["sine440.wav"]
    assert names(library.search_text("white noise", limit=1)) == ["noise.wav"]
    hits = library.search_text("1 kHz", limit=3)
    assert hits[0].filename == "hires96k24.wav"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_a_file_searched_by_itself_ranks_first(indexed, audio_dir):
    library, ids = indexed
    [top] = library.search_audio(audio_dir / "stereo44k.wav", limit=1)
    assert top.id == ids["stereo44k.wav"] and top.score > 0.999
    [top] = library.search_audio(data=(audio_dir / "sine440.wav").read_bytes(), name="clip.wav", limit=1)
    assert top.id == ids["sine440.wav"] and top.score > 0.999
    assert not list(library.settings.tmp_dir.glob("*"))  # the spooled example is gone


def test_more_like_this_excludes_the_track_itself(indexed):
    library, ids = indexed
    hits = library.search_like(ids["mix.wav"][:12], limit=3)
    assert ids["mix.wav"] not in [h.id for h in hits]
    # The same mix in lossless flac is the closest neighbour.
    assert hits[0].filename == "mix.flac" and hits[0].score > 0.999


def test_filters(indexed):
    library, _ = indexed
    fast = library.search_text("noise", limit=50, filters=Filters(min_tempo=100, max_tempo=140))
    assert sorted(names(fast)) == ["click120.wav", "mix.flac", "mix.m4a", "mix.mp3", "mix.wav"]
    short = library.search_text("noise", limit=50, filters=Filters(max_duration=3.5))
    assert sorted(names(short)) == ["hires96k24.wav", "silence.wav"]
    ranged = library.search_text("noise", limit=50, filters=Filters(min_duration=4.5, max_duration=6))
    assert sorted(names(ranged)) == ["noise.wav", "sine440.wav"]
    flac = library.search_text("noise", limit=50, filters=Filters(formats=("flac",)))
    assert names(flac) == ["mix.flac"]
    assert library.search_text("noise", limit=50, filters=Filters(min_tempo=300)) == []


def test_limit_and_min_score(indexed):
    library, _ = indexed
    assert len(library.search_text("noise", limit=4)) == 4
    every = library.search_text("a 440 Hz tone", limit=50)
    assert len(every) == 10
    cut = every[2].score
    above = library.search_text("a 440 Hz tone", limit=50, min_score=cut)
    assert [h.id for h in above] == [h.id for h in every if h.score >= cut]


def test_segment_start_points_at_the_matching_window(fake_library, tmp_path):
    rate = 44_100
    track = np.concatenate([white_noise(10, rate), sine(440, 10, rate, amplitude=0.5), white_noise(5, rate, seed=3)])
    write_audio(tmp_path / "noise_tone_noise.wav", track, rate)
    write_audio(tmp_path / "tone_only.wav", sine(440, 3, rate), rate)
    fake_library.ingest([tmp_path / "noise_tone_noise.wav", tmp_path / "tone_only.wav"])
    hits = {h.filename: h for h in fake_library.search_text("440 Hz", limit=5)}
    assert hits["noise_tone_noise.wav"].segment_start == pytest.approx(10.0)
    assert hits["noise_tone_noise.wav"].segment_end == pytest.approx(20.0)
    assert hits["tone_only.wav"].segment_start == 0.0
    # Segment mode ranks by the best window alone: the tone window beats the noisy whole.
    segments = fake_library.search_text("440 Hz", limit=5, segments=True)
    by_name = {h.filename: h for h in segments}
    assert by_name["noise_tone_noise.wav"].segment_start == pytest.approx(10.0)
    whole = {h.filename: h.score for h in fake_library.search_text("440 Hz", limit=5)}
    assert by_name["noise_tone_noise.wav"].score > whole["noise_tone_noise.wav"]


def test_results_follow_ingest_and_delete_at_once(fake_library, tmp_path):
    write_audio(tmp_path / "a.wav", sine(200, 2), 44_100)
    fake_library.ingest([tmp_path / "a.wav"])
    assert names(fake_library.search_text("200 Hz", limit=5)) == ["a.wav"]  # builds the index
    write_audio(tmp_path / "b.wav", sine(3_000, 2), 44_100)
    [b] = fake_library.ingest([tmp_path / "b.wav"])
    assert names(fake_library.search_text("3 kHz", limit=1)) == ["b.wav"]
    fake_library.delete(b.track_id)
    assert names(fake_library.search_text("3 kHz", limit=5)) == ["a.wav"]


def test_missing_model_keeps_tracks_pending_until_reembed(settings, audio_dir):
    def missing():
        raise ModelUnavailableError("no weights here.", hint="Set TRAUM_CLAP_MODEL.")

    with Library(settings, embedder_provider=missing) as library:
        results = library.ingest([audio_dir / "formats"])
        assert {r.status for r in results} == {"added"}
        assert all("Embedding pending" in r.note for r in results)
        assert library._store.embeddings.count_pending(None, 1) == 4
        with pytest.raises(ModelUnavailableError, match="TRAUM_CLAP_MODEL"):
            library.search_text("anything")
    fake = FakeEmbedder()
    with Library(settings, embedder_provider=lambda: fake) as library:
        assert library._store.embeddings.count_pending(fake.model_id, 1) == 4
        done = library.reembed()
        assert [r.status for r in done] == ["added"] * 4
        assert library._store.embeddings.count_pending(fake.model_id, 1) == 0
        assert len(library.search_text("noise", limit=10)) == 4
        assert library.reembed() == []  # nothing stale any more


def test_a_new_model_makes_embeddings_stale(settings, audio_dir):
    first = FakeEmbedder()
    with Library(settings, embedder_provider=lambda: first) as library:
        library.ingest([audio_dir / "formats"])
    second = FakeEmbedder()
    second.model_id = "fake-bands-v2"
    with Library(settings, embedder_provider=lambda: second) as library:
        assert library._store.embeddings.count_pending("fake-bands-v2", 1) == 4
        assert library.search_text("noise") == []  # nothing in the new model's space yet
        assert len(library.reembed()) == 4
        assert len(library.search_text("noise")) == 4


def test_reembed_reports_a_missing_original(settings, tmp_path):
    fake = FakeEmbedder()
    path = write_audio(tmp_path / "gone.wav", sine(300, 2), 44_100)
    with Library(settings, embedder_provider=lambda: fake) as library:
        library.ingest([path])
    path.unlink()
    other = FakeEmbedder()
    other.model_id = "fake-bands-v2"
    with Library(settings, embedder_provider=lambda: other) as library:
        [result] = library.reembed()
        assert result.status == "failed" and "is gone" in result.error


def test_bad_queries_are_clear_errors(indexed, tmp_path):
    library, _ = indexed
    with pytest.raises(TypeError):  # one entry point per kind of query: a prompt and a track do not mix
        library.search_text("x", like="abcdef")
    with pytest.raises(InputError, match="Empty prompt|type something"):
        library.search_text("   ")
    with pytest.raises(EngineError, match="no track"):
        library.search_like("ffffffffffff")
    (tmp_path / "fake.wav").write_text("not audio")
    with pytest.raises(InputError, match="decodable"):
        library.search_audio(tmp_path / "fake.wav")


def test_the_batcher_combines_windows_from_waiting_files():
    import threading

    from engine.vectors import WindowBatcher

    release = threading.Event()

    class Slow(FakeEmbedder):
        calls: list[int] = []

        def embed_audio(self, windows):
            self.calls.append(len(windows))
            if len(self.calls) == 1:
                release.wait(10)  # hold the model so the other files queue up
            return super().embed_audio(windows)

    fake = Slow()
    window = np.zeros((1, 480_000), dtype=np.float32)
    window[0, ::100] = 1.0
    with WindowBatcher(fake, batch_windows=8) as batcher:
        threads = [threading.Thread(target=batcher.embed_audio, args=(window,)) for _ in range(4)]
        threads[0].start()
        while not fake.calls:
            time.sleep(0.01)
        for thread in threads[1:]:
            thread.start()
        while batcher._queue.qsize() < 3:
            time.sleep(0.01)
        release.set()
        for thread in threads:
            thread.join(10)
    assert fake.calls == [1, 3]


def test_one_failing_file_does_not_fail_its_batch_neighbours():
    from engine.vectors import WindowBatcher

    class Picky(FakeEmbedder):
        def embed_audio(self, windows):
            if np.isnan(windows).any():
                raise ValueError("bad window")
            return super().embed_audio(windows)

    good = np.ones((1, 480_000), dtype=np.float32)
    bad = np.full((1, 480_000), np.nan, dtype=np.float32)
    with WindowBatcher(Picky(), batch_windows=8) as batcher:
        batcher._run([(good, good_future := Future()), (bad, bad_future := Future())])
    assert good_future.result().shape == (1, 16)
    with pytest.raises(ValueError):
        bad_future.result()


def _vectors_of(matrix: np.ndarray, durations: np.ndarray):
    import pyarrow as pa

    from engine.search import _Vectors

    vectors = _Vectors(matrix.shape[1])
    vectors.append(pa.table({
        "track_id": [f"t{i:05d}" for i in range(len(matrix))],
        "embedding": pa.array([row.astype("<f4").tobytes() for row in matrix], type=pa.binary()),
        "window_count": np.ones(len(matrix)),
        "duration": durations,
        "tempo": np.full(len(matrix), 120.0),
        "format": ["wav"] * len(matrix),
    }))
    return vectors


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit,min_score,max_duration", [(1, None, None), (5, None, None), (5, 0.999, None),
                                                          (20, None, 30.0)])
def test_two_pass_scan_returns_the_exact_float32_top(seed, limit, min_score, max_duration):
    """Rows whose scores float16 cannot tell apart must still rank as float32 ranks them."""
    from engine.search import VectorIndex

    rng = np.random.default_rng(seed)
    # Unit rows on a narrow arc round the query's direction: their scores differ
    # by ~1e-6, and rounding each row's two components to float16 reorders them
    # (without the error margin these seeds lose true top rows).
    angle = rng.uniform(0.3, 1.2)
    thetas = angle + rng.uniform(-0.02, 0.02, 400)
    matrix = np.zeros((400, 16), dtype=np.float32)
    matrix[:, 0], matrix[:, 1] = np.cos(thetas), np.sin(thetas)
    matrix[200:205] = matrix[199]  # exact ties break by id
    query = np.zeros(16, dtype=np.float32)
    query[0], query[1] = np.cos(angle), np.sin(angle)
    durations = rng.uniform(1, 60, len(matrix))

    vectors = _vectors_of(matrix, durations)
    index = VectorIndex(store=None, model_id="m", dim=16)
    index._sync = lambda: vectors  # the store side is covered by the other tests
    got = index.top(query, filters=Filters(max_duration=max_duration), limit=limit, min_score=min_score)

    exact = matrix @ query  # the float32 scores
    keep = np.ones(len(matrix), bool) if max_duration is None else durations <= max_duration
    if min_score is not None:
        keep &= exact >= min_score
    expected = sorted(np.flatnonzero(keep), key=lambda i: (-float(exact[i]), f"t{i:05d}"))[:limit]
    assert [track_id for track_id, _ in got] == [f"t{i:05d}" for i in expected]
    assert [score for _, score in got] == [float(exact[i]) for i in expected]


def test_prepare_search_loads_the_index_before_the_first_query(indexed):
    library, ids = indexed
    library.prepare_search()
    vectors = library._index._vectors
    assert vectors is not None and set(vectors.row_of) == set(ids.values())


def test_replaying_in_process_writes_matches_a_fresh_load_without_reading_vectors(fake_library, tmp_path,
                                                                                  monkeypatch):
    from engine.search import VectorIndex

    write_audio(tmp_path / "a.wav", sine(200, 2), 44_100)
    fake_library.ingest([tmp_path / "a.wav"])
    fake_library.search_text("200 Hz")  # loads the index
    reads = []
    real_read = fake_library._store.embeddings.table
    monkeypatch.setattr(fake_library._store.embeddings, "table", lambda *a, **k: reads.append(a) or real_read(*a, **k))
    for i, freq in enumerate((300, 3_000, 5_000)):
        write_audio(tmp_path / f"new{i}.wav", np.concatenate([sine(freq, 12), white_noise(3)]), 44_100)
    added = fake_library.ingest([tmp_path / f"new{i}.wav" for i in range(3)])
    fake_library.delete(added[0].track_id)
    fake_library.reembed()  # nothing pending: a no-op
    hits = fake_library.search_text("5 kHz", limit=10)
    assert reads == []  # every change came with its vector

    replayed = fake_library._index.sync()
    fresh = VectorIndex(fake_library._store, fake_library._index.model_id, fake_library._index.dim).sync()

    def rows(vectors):
        return {track_id: (vectors.matrix[row].tolist(), vectors.duration[row], vectors.windows[row],
                           vectors.format[row], None if np.isnan(vectors.tempo[row]) else vectors.tempo[row])
                for track_id, row in vectors.row_of.items()}

    assert rows(replayed) == rows(fresh)
    assert len(fresh.row_of) == 3 and names(hits)[0] == "new2.wav"
