"""What a sample is, through the Library: stored with the track, filtered on, categorised per model,
recomputed after a model change, and brought to existing libraries by reanalyse."""

import numpy as np
import pytest

from engine import categories
from engine.errors import InputError
from engine.library import Filters, Library
from tests import fixtures_music as music
from tests.fixtures_audio import write_audio
from tests.fixtures_fake import EDGES, FakeEmbedder, _unit

RATE = music.RATE


class CategoryFake(FakeEmbedder):
    """The fake's audio bands; its category prompts point at bands a test can predict:
    kick prompts at the lowest band a 50 Hz thump fills, hi-hat prompts at 10 kHz, pad at 440 Hz."""

    model_id = "fake-categories-v1"
    bands = {"kick": 50.0, "hi-hat": 10_000.0, "pad": 440.0}

    def _text(self, text: str) -> np.ndarray:
        for name, hz in self.bands.items():
            if any(text == prompt for prompt in categories.VOCABULARY[name]):
                vector = np.full(16, 0.01)
                vector[int(np.clip(np.searchsorted(EDGES, hz) - 1, 0, 15))] = 1.0
                return _unit(vector[None])[0]
        return super()._text(text)


class SwappedFake(CategoryFake):
    """Another model: kick and hi-hat prompts trade places."""

    model_id = "fake-categories-v2"
    bands = {"kick": 10_000.0, "hi-hat": 50.0, "pad": 440.0}


def thump(seconds=0.4):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.9 * np.sin(2 * np.pi * 50 * t) * np.exp(-t / 0.08)).astype(np.float32)


def tick(seconds=0.06):
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * RATE)) / RATE
    noise = rng.standard_normal(len(t))
    high = np.sin(2 * np.pi * 10_000 * t) + 0.05 * noise
    return (0.5 * high * np.exp(-t / 0.01)).astype(np.float32)


@pytest.fixture
def samples(tmp_path):
    root = tmp_path / "pack"
    write_audio(root / "One Shots" / "thump.wav", thump(), RATE)
    write_audio(root / "One Shots" / "tick.wav", tick(), RATE)
    write_audio(root / "Loops" / "groove_120.wav", music.render_loop("backbeat", 120, 2), RATE)
    write_audio(root / "Keys" / "Progression_Fm.wav", music.render_progression("F", "i-iv-v-i", "piano"), RATE)
    return root


def open_library(settings, embedder):
    return Library(settings, embedder_provider=lambda: embedder)


def by_name(library, **options):
    return {track.filename: track for track in library.tracks(limit=100, **options)}


def test_import_stores_kind_key_tempo_and_categories(settings, samples):
    with open_library(settings, CategoryFake()) as library:
        assert all(r.status == "added" for r in library.ingest([samples]))
        tracks = by_name(library)
    assert tracks["thump.wav"].kind == tracks["tick.wav"].kind == "one-shot"
    assert tracks["thump.wav"].tempo is None
    groove = tracks["groove_120.wav"]
    assert groove.kind == "loop" and groove.tempo == pytest.approx(120, rel=0.02)
    # The bare "_120" in a loop's name is read as its tempo, and agrees with the audio.
    assert groove.tempo_source == "name"
    keys = tracks["Progression_Fm.wav"]
    assert (keys.key, keys.camelot, keys.key_source) == ("F minor", "4A", "name")
    assert tracks["thump.wav"].category == "kick" and tracks["tick.wav"].category == "hi-hat"
    for track in tracks.values():
        names = [name for name, _ in track.categories]
        assert names and len(set(names)) == len(names)
        scores = [score for _, score in track.categories]
        assert scores == sorted(scores, reverse=True)
        # Members score at least MEMBER_RATIO of the best: no afterthoughts.
        assert all(score >= categories.MEMBER_RATIO * scores[0] - 1e-4 for score in scores)
    document = tracks["thump.wav"].to_dict()
    assert document["categories"][0]["name"] == "kick" and document["key"] is None and document["kind"] == "one-shot"


def test_filters_on_kind_key_and_category(settings, samples):
    with open_library(settings, CategoryFake()) as library:
        library.ingest([samples])
        assert set(by_name(library, filters=Filters(kinds=("one-shot",)))) == {"thump.wav", "tick.wav"}
        assert set(by_name(library, filters=Filters(kinds=("loop", "long")))) >= {"groove_120.wav"}
        assert set(by_name(library, filters=Filters(key="Fm"))) == {"Progression_Fm.wav"}
        assert set(by_name(library, filters=Filters(key="4A"))) == {"Progression_Fm.wav"}
        assert set(by_name(library, filters=Filters(key="F"))) == {"Progression_Fm.wav"}  # either mode
        assert by_name(library, filters=Filters(key="F major")) == {}
        # Relative major, and a fifth up and down, mix with F minor; G minor does not.
        for key in ("G# major", "C minor", "A# minor", "F minor"):
            assert set(by_name(library, filters=Filters(compatible_with=key))) == {"Progression_Fm.wav"}, key
        assert by_name(library, filters=Filters(compatible_with="G minor")) == {}
        assert set(by_name(library, filters=Filters(categories=("kick",)))) == {"thump.wav"}
        assert library.count(Filters(categories=("kick", "hi-hat"))) == 2
        # Search applies the same filters.
        hits = library.search_text("anything at all", filters=Filters(kinds=("one-shot",)), limit=10)
        assert {hit.filename for hit in hits} == {"thump.wav", "tick.wav"}
        assert {hit.category for hit in hits} == {"kick", "hi-hat"}
        hits = library.search_text("anything", filters=Filters(categories=("hi-hat",)), segments=True)
        assert [hit.filename for hit in hits] == ["tick.wav"]
        tick_id = by_name(library)["tick.wav"].id
        assert library.search_like(tick_id, filters=Filters(categories=("hi-hat",))) == []


@pytest.mark.parametrize("bad", [dict(kinds=("drone",)), dict(key="H minor"), dict(compatible_with="F"),
                                 dict(categories=("kicks",))])
def test_bad_filters_are_input_errors_with_the_choices(bad):
    with pytest.raises(InputError) as info:
        Filters(**bad)
    assert info.value.title == "Invalid filter"


def test_path_category_hint_tips_a_near_tie(settings, tmp_path):
    # Equal energy at 50 Hz (the fake's kick) and 440 Hz (its pad): a tie the folder name decides.
    t = np.arange(2 * RATE) / RATE
    sound = (0.3 * np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_audio(tmp_path / "a" / "Pads" / "one.wav", sound, RATE)
    write_audio(tmp_path / "b" / "Kicks" / "two.wav", sound * 0.999, RATE)
    with open_library(settings, CategoryFake()) as library:
        library.ingest([tmp_path / "a", tmp_path / "b"])
        tracks = by_name(library)
    assert tracks["one.wav"].category == "pad" and tracks["two.wav"].category == "kick"
    # A hint tips a tie; it never makes a category out of nothing.
    assert {name for name, _ in tracks["one.wav"].categories} <= {"pad", "kick"}


def test_categories_follow_the_model_and_come_from_stored_embeddings(settings, samples):
    first = CategoryFake()
    with open_library(settings, first) as library:
        library.ingest([samples])
        assert by_name(library)["thump.wav"].category == "kick"
    second = SwappedFake()
    with open_library(settings, second) as library:
        library.reembed()
        tracks = by_name(library)
        assert tracks["thump.wav"].category == "hi-hat" and tracks["tick.wav"].category == "kick"
    # Back to the first model: its embeddings and scores are still stored, so nothing is decoded or embedded.
    again = CategoryFake()
    with open_library(settings, again) as library:
        library.prepare_search()
        assert by_name(library)["thump.wav"].category == "kick"
        assert again.audio_calls == 0
        # Scores lost (an older vocabulary, say) are recomputed from the stored embeddings alone.
        library._store.db.execute("forget categories", "DELETE FROM track_categories")
        assert library.categorise() == 4
        assert by_name(library)["tick.wav"].category == "hi-hat" and again.audio_calls == 0


def test_reanalyse_brings_an_older_library_up_to_date_without_embedding(settings, samples):
    embedder = CategoryFake()
    with open_library(settings, embedder) as library:
        library.ingest([samples])
        before = by_name(library)
        # As a library analysed by the previous version: no descriptions, feature version 2.
        library._store.db.execute("age the library", "DELETE FROM descriptions")
        library._store.db.execute("age the library", "UPDATE features SET feature_version = 2, tempo = 70")
        assert library.outdated() == 4
        assert by_name(library)["groove_120.wav"].kind is None
        calls = embedder.audio_calls
        results = library.reanalyse()
        assert sorted(r.status for r in results) == ["added"] * 4
        assert library.outdated() == 0 and embedder.audio_calls == calls
        after = by_name(library)
        for name, track in after.items():
            assert (track.kind, track.tempo, track.key, track.category) == (
                before[name].kind, before[name].tempo, before[name].key, before[name].category), name
        # Searches see the new tempo at once.
        hits = library.search_text("x", filters=Filters(min_tempo=110, max_tempo=130))
        assert [hit.filename for hit in hits] == ["groove_120.wav"]
        assert library.reanalyse() == []


def test_reanalyse_reports_a_missing_file_and_goes_on(settings, samples):
    with open_library(settings, CategoryFake()) as library:
        library.ingest([samples])
        library._store.db.execute("age the library", "DELETE FROM descriptions")
        (samples / "One Shots" / "tick.wav").unlink()
        results = {r.source: r for r in library.reanalyse()}
        assert results["tick.wav"].status == "failed" and "gone" in results["tick.wav"].error
        assert [r.status for name, r in results.items() if name != "tick.wav"] == ["added"] * 3
        assert library.outdated() == 1
        # Once a sync knows it is missing, it waits for its file instead of failing at every start.
        assert len(library.sync().missing) == 1
        assert library.outdated() == 0 and library.reanalyse() == []


def test_background_reanalyse_reports_progress(settings, samples):
    with open_library(settings, CategoryFake()) as library:
        library.ingest([samples])
        library._store.db.execute("age the library", "DELETE FROM descriptions")
        assert library.start_reanalyse()
        library._analysis_thread.join(60)
        state = library.reanalyse_state()
        assert state == {"running": False, "done": 4, "total": 4, "error": None, "failed": []}
        assert library.outdated() == 0


def test_sorting_by_key_walks_the_camelot_wheel(settings, tmp_path):
    for tonic, progression, name in (("G", "I-vi-IV-V-I", "g.wav"), ("A", "i-iv-v-i", "am.wav"),
                                     ("F", "i-iv-v-i", "fm.wav"), ("C", "I-vi-IV-V-I", "c.wav")):
        write_audio(tmp_path / "keys" / name, music.render_progression(tonic, progression, "organ", seconds=4.0), RATE)
    write_audio(tmp_path / "keys" / "thump.wav", thump(), RATE)
    with open_library(settings, CategoryFake()) as library:
        library.ingest([tmp_path / "keys"])
        ordered = [(t.filename, t.camelot) for t in library.tracks(sort="key", descending=False)]
        backwards = [t.filename for t in library.tracks(sort="key", descending=True)]
    assert ordered == [("fm.wav", "4A"), ("am.wav", "8A"), ("c.wav", "8B"), ("g.wav", "9B"), ("thump.wav", None)]
    assert backwards == ["g.wav", "c.wav", "am.wav", "fm.wav", "thump.wav"]  # keyless last either way


def test_a_sort_and_a_filter_on_other_tables_combine(settings, samples):
    with open_library(settings, CategoryFake()) as library:
        library.ingest([samples])
        # Sorting by kind (descriptions) while filtering by category (categories): both joined.
        tracks = library.tracks(Filters(categories=("kick", "hi-hat")), sort="kind", descending=False)
        assert {t.filename for t in tracks} == {"thump.wav", "tick.wav"}
        by_category = library.tracks(Filters(kinds=("one-shot",)), sort="category", descending=False)
        assert [t.category for t in by_category] == sorted(t.category for t in by_category)
