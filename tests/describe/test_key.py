import librosa
import numpy as np
import pytest

from engine.describe import (
    NO_KEY,
    camelot,
    compatible_keys,
    estimate_key,
    key_evidence,
    key_from_evidence,
    mirex_score,
    parse_key,
    relative_key,
)
from tests.fixtures_audio import sine, white_noise
from tests.fixtures_music import RATE, chord_progressions, drum_loops, hat, kick, one_shots, snare, speech_like


@pytest.fixture(scope="module")
def progressions():
    return chord_progressions()


def test_chord_progressions_mean_mirex_at_least_0_9(progressions):
    scores = []
    for _, samples, truth in progressions:
        est = estimate_key(samples=samples, sample_rate=RATE)
        scores.append(mirex_score((est.tonic, est.mode), truth))
    assert len(scores) >= 90
    assert np.mean(scores) >= 0.9


def test_every_timbre_and_mode_is_mostly_right(progressions):
    by_group: dict[tuple[str, str], list[float]] = {}
    for name, samples, truth in progressions:
        est = estimate_key(samples=samples, sample_rate=RATE)
        by_group.setdefault((name.rsplit("_", 1)[1], truth[1]), []).append(mirex_score((est.tonic, est.mode), truth))
    assert {group: np.mean(s) >= 0.75 for group, s in by_group.items()} == {group: True for group in by_group}


def test_a_given_magnitude_gives_the_same_answer(progressions):
    for _, samples, _ in progressions[::12]:
        magnitude = np.abs(librosa.stft(samples, n_fft=2048, hop_length=512))
        assert estimate_key(samples=samples, sample_rate=RATE, magnitude=magnitude) == estimate_key(
            samples=samples, sample_rate=RATE
        )


def test_key_estimate_carries_its_camelot_code(progressions):
    est = estimate_key(samples=progressions[0][1], sample_rate=RATE)
    assert est.camelot == camelot(est.tonic, est.mode)
    assert 0.0 < est.confidence <= 1.0


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(RATE * 2, dtype=np.float32),
        white_noise(3, RATE),
        speech_like(3.0, RATE),
        kick(RATE),
        snare(RATE),
        hat(RATE),
        sine(440, 2, RATE),
    ],
    ids=["silence", "noise", "speech-like", "kick", "snare", "hat", "single-tone"],
)
def test_unpitched_or_keyless_sound_has_no_key(samples):
    assert estimate_key(samples=samples, sample_rate=RATE) == NO_KEY


def test_drum_loops_have_no_key():
    loops = drum_loops(tempos=(90, 128, 174), bar_counts=(2,))
    keyed = [name for name, samples, _, _ in loops if estimate_key(samples=samples, sample_rate=RATE).tonic]
    assert keyed == []


def test_drum_one_shots_have_no_key():
    drums = {"click_2ms", "kick", "snare", "closed_hat", "open_hat", "clap", "crash", "noise_30ms",
             "noise_200ms_decaying", "noise_1s", "riser_2s"}
    keyed = [name for name, samples in one_shots() if name in drums
             and estimate_key(samples=samples, sample_rate=RATE).tonic]
    assert keyed == []


@pytest.mark.parametrize(
    ("tonic", "mode", "code"),
    [("C", "major", "8B"), ("A", "minor", "8A"), ("F", "minor", "4A"), ("B", "major", "1B"),
     ("G#", "minor", "1A"), ("E", "major", "12B"), ("C#", "minor", "12A"), ("F#", "major", "2B"),
     ("D", "minor", "7A"), ("Bb", "major", "6B")],
)
def test_camelot(tonic, mode, code):
    assert camelot(tonic, mode) == code
    assert parse_key(code) == (parse_key(tonic)[0], mode)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("F minor", ("F", "minor")), ("Fm", ("F", "minor")), ("F#min", ("F#", "minor")),
        ("Gb major", ("F#", "major")), ("8A", ("A", "minor")), ("12B", ("E", "major")),
        ("C# Minor", ("C#", "minor")), ("Amaj", ("A", "major")), ("Bb", ("A#", None)), ("C", ("C", None)),
        ("F sharp minor", ("F#", "minor")), ("Ebm", ("D#", "minor")), ("c minor", ("C", "minor")),
        ("Cmin", ("C", "minor")), ("DM", ("D", "major")),
    ],
)
def test_parse_key(text, expected):
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["Dark", "Bass", "am", "b", "H", "Amen", "13A", "", "AB", "Kick", "C##"])
def test_parse_key_rejects_words(text):
    assert parse_key(text) is None


def test_compatible_keys():
    assert compatible_keys("C", "major") == [("C", "major"), ("A", "minor"), ("G", "major"), ("F", "major")]
    assert compatible_keys("A", "minor") == [("A", "minor"), ("C", "major"), ("E", "minor"), ("D", "minor")]
    assert compatible_keys("Db", "major")[0] == ("C#", "major")
    # On the Camelot wheel: same number, other letter, numbers either side.
    codes = [camelot(*k) for k in compatible_keys("F", "minor")]
    assert codes == ["4A", "4B", "5A", "3A"]
    assert relative_key("E", "minor") == ("G", "major")


@pytest.mark.parametrize(
    ("estimated", "truth", "score"),
    [
        (("C", "major"), ("C", "major"), 1.0),
        (("G", "major"), ("C", "major"), 0.5),
        (("F", "major"), ("C", "major"), 0.5),
        (("E", "minor"), ("A", "minor"), 0.5),
        (("A", "minor"), ("C", "major"), 0.3),
        (("C", "major"), ("A", "minor"), 0.3),
        (("C", "minor"), ("C", "major"), 0.2),
        (("D", "major"), ("C", "major"), 0.0),
        (("G", "minor"), ("C", "major"), 0.0),
        ((None, None), ("C", "major"), 0.0),
        (None, ("C", "major"), 0.0),
    ],
)
def test_mirex_score(estimated, truth, score):
    assert mirex_score(estimated, truth) == score


def test_evidence_from_blocks_of_frames_adds_up_to_the_whole(progressions):
    for _, samples, _ in progressions[::24]:
        magnitude = np.abs(librosa.stft(samples, n_fft=2048, hop_length=512))
        blocks = [key_evidence(magnitude=magnitude[:, i : i + 100], sample_rate=RATE, first_frame=i)
                  for i in range(0, magnitude.shape[1], 100)]
        whole = key_evidence(magnitude=magnitude, sample_rate=RATE)
        summed = sum(blocks[1:], blocks[0])
        assert summed.tonal_energy == pytest.approx(whole.tonal_energy, rel=1e-9)
        assert np.allclose(summed.chroma, whole.chroma, rtol=1e-9)
        assert key_from_evidence(summed) == estimate_key(samples=samples, sample_rate=RATE)


def test_every_key_the_api_schema_allows_is_read():
    """The API states its key grammar as patterns; parse_key must read every string they allow."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from engine.keys import KEY_PATTERN, KEY_WITH_MODE_PATTERN

    @settings(max_examples=500, deadline=None)
    @given(st.from_regex(KEY_PATTERN, fullmatch=True), st.from_regex(KEY_WITH_MODE_PATTERN, fullmatch=True))
    def check(key, key_with_mode):
        assert parse_key(key) is not None
        parsed = parse_key(key_with_mode)
        assert parsed is not None and parsed[1] is not None

    check()
