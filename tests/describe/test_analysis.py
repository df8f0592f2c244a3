"""engine.analysis: one pass gives features and description; names weigh in by the written rules."""

import numpy as np
import pytest

from engine.analysis import _decide_key, _decide_tempo, analyse
from engine.describe import NO_KEY, KeyEstimate
from engine.frames import frame_descriptors
from tests import fixtures_music as music

RATE = music.RATE


def test_a_loop_named_with_its_tempo_takes_the_name_and_says_so():
    loop = music.render_loop("four_on_the_floor", 140, 2)
    heard = analyse(samples=loop, sample_rate=RATE)
    named = analyse(samples=loop, sample_rate=RATE, name="/samples/Loops/140 BPM/House_Loop_140bpm.wav")
    assert heard.description.kind == named.description.kind == "loop"
    assert heard.features.tempo_bpm == pytest.approx(140, rel=0.02) and heard.description.tempo_source == "audio"
    assert named.features.tempo_bpm == 140 and named.description.tempo_source == "name"
    assert named.description.bars == 2


def test_a_one_shot_has_no_tempo_whatever_its_name_says():
    analysis = analyse(samples=music.kick(), sample_rate=RATE, name="Kick_808_C#_140bpm.wav")
    assert analysis.description.kind == "one-shot"
    assert analysis.features.tempo_bpm is None and analysis.description.tempo_source is None


def test_a_chord_progression_gets_a_key_and_a_drum_loop_none():
    chords = music.render_progression("F", "i-iv-v-i", "piano")
    described = analyse(samples=chords, sample_rate=RATE).description
    assert (described.key_tonic, described.key_mode, described.key_source) == ("F", "minor", "audio")
    assert described.camelot == "4A" and 0 < described.key_confidence <= 1
    drums = analyse(samples=music.render_loop("backbeat", 100, 2), sample_rate=RATE).description
    assert drums.key_tonic is None and drums.key_confidence is None and drums.camelot is None


def test_key_evidence_gathered_block_by_block_equals_one_estimate(monkeypatch):
    """analyse() takes the key from the framing pass's blocks; a 40 s signal spans several."""
    from engine import frames
    from engine.describe import estimate_key

    chords = np.tile(music.render_progression("D", "I-vi-IV-V-I", "organ"), 6)[: RATE * 40]
    assert len(chords) // frames.HOP > frames.BLOCK_FRAMES  # really more than one block
    whole = estimate_key(samples=chords, sample_rate=RATE)
    described = analyse(samples=chords, sample_rate=RATE).description
    assert (described.key_tonic, described.key_mode) == (whole.tonic, whole.mode) == ("D", "major")


def test_features_come_from_the_same_frames():
    loop = music.render_loop("backbeat", 120, 1)
    frames = frame_descriptors(samples=loop, sample_rate=RATE)
    features = analyse(samples=loop, sample_rate=RATE).features
    voiced = frames["rms"] > 3e-4
    assert features.spectral_centroid_hz == pytest.approx(float(frames["centroid"][voiced].mean()))
    assert features.rms_energy == pytest.approx(float(frames["rms"].mean()))


@pytest.mark.parametrize(
    ("kind", "heard", "named", "duration", "expected"),
    [
        ("loop", 70.0, 140.0, 2 * 4 * 60 / 140, (140.0, "name", 2)),  # audio heard half: an octave agrees
        ("loop", 140.0, 140.0, 2 * 4 * 60 / 140, (140.0, "name", 2)),
        ("loop", 140.0, 100.0, 2 * 4 * 60 / 140, (140.0, "audio", 2)),  # disagrees: the audio stands
        ("loop", None, 90.0, 4 * 4 * 60 / 90, (90.0, "name", 4)),  # a pad loop cut to 4 bars at 90
        ("loop", None, 90.0, 5.0, (None, None, None)),  # ...but not when 90 BPM does not fit its length
        ("one-shot", 140.0, 140.0, 0.5, (None, None, None)),
        ("long", 120.0, None, 200.0, (120.0, "audio", None)),
    ],
)
def test_tempo_rules(kind, heard, named, duration, expected):
    bars = 2 if heard == 140.0 else None
    assert _decide_tempo(kind, heard, bars, named, duration) == expected


def _heard(tonic, mode, confidence=0.8):
    return KeyEstimate(tonic=tonic, mode=mode, confidence=confidence, camelot=None)


@pytest.mark.parametrize(
    ("heard", "named", "expected"),
    [
        (_heard("A", "minor"), None, ("A", "minor", 0.8, "audio")),
        (_heard("C", "major"), ("A", "minor"), ("A", "minor", 0.8, "name")),  # relative
        (_heard("F", "minor"), ("F", "major"), ("F", "major", 0.8, "name")),  # parallel
        (_heard("G", "minor"), ("C", "minor"), ("C", "minor", 0.8, "name")),  # a fifth
        (_heard("E", "major"), ("C", "minor"), ("E", "major", 0.8, "audio")),  # unrelated: the audio stands
        (NO_KEY, ("A", "minor"), ("A", "minor", None, "name")),  # a drum loop keyed by its pack
        (_heard("C#", "minor"), ("C#", None), ("C#", "minor", 0.8, "name")),  # a bare note takes the mode heard
        (_heard("D", "minor"), ("C#", None), ("D", "minor", 0.8, "audio")),
        (NO_KEY, ("C#", None), ("C#", None, None, "name")),
        (NO_KEY, None, (None, None, None, None)),
    ],
)
def test_key_rules(heard, named, expected):
    assert _decide_key(heard, named) == expected


def test_path_category_word_is_kept_as_a_hint():
    analysis = analyse(samples=music.kick(), sample_rate=RATE, name="/packs/Drums/Kicks/Thump 01.wav")
    assert analysis.description.name_category == "kick"
    assert analyse(samples=music.kick(), sample_rate=RATE).description.name_category is None
