import numpy as np
import pytest

from engine.describe import classify_kind, estimate_loop_tempo
from engine.features import frame_descriptors
from tests.fixtures_music import RATE, drum_loops, kick, long_recordings, one_shots, tonal_loops


def _kind(samples, name_hint=None, **kwargs):
    duration = len(samples) / RATE
    tempo = estimate_loop_tempo(samples=samples, sample_rate=RATE, duration_s=duration)
    return classify_kind(samples=samples, sample_rate=RATE, duration_s=duration, tempo=tempo, name_hint=name_hint,
                         **kwargs)


@pytest.fixture(scope="module")
def labelled():
    loops = [(name, s) for name, s, _, _ in drum_loops(bar_counts=(1, 2))] + [
        (name, s) for name, s, _, _ in tonal_loops()
    ]
    return [(name, s, "one-shot") for name, s in one_shots()] + [(name, s, "loop") for name, s in loops]


def test_one_shots_and_loops_ninety_five_percent_right(labelled):
    right = [_kind(samples).kind == truth for _, samples, truth in labelled]
    assert np.mean(right) >= 0.95


def test_every_one_shot_is_a_one_shot():
    wrong = [name for name, samples in one_shots() if _kind(samples).kind != "one-shot"]
    assert wrong == []


def test_long_material_that_is_not_a_loop_is_long():
    for name, samples in long_recordings():
        assert _kind(samples).kind == "long", name


def test_name_hints_only_break_ties():
    loop = drum_loops(tempos=(128,), bar_counts=(2,))[0][1]
    assert _kind(loop, name_hint="one-shot").kind == "loop"
    assert _kind(kick(RATE), name_hint="loop").kind == "one-shot"
    plain = _kind(loop)
    hinted = _kind(loop, name_hint="loop")
    assert hinted.confidence >= plain.confidence
    assert any("name" in reason for reason in hinted.reasons)


def test_reasons_and_confidence():
    result = _kind(kick(RATE))
    assert result.reasons and 0.0 < result.confidence <= 1.0


def test_rms_from_the_features_pass_gives_the_same_answer():
    for name, samples in [*one_shots()[:6], (drum_loops(tempos=(100,), bar_counts=(1,))[0][:2])]:
        rms = frame_descriptors(samples=samples, sample_rate=RATE)["rms"]
        assert _kind(samples, rms=rms).kind == _kind(samples).kind, name


def test_silence_and_empty_are_one_shots():
    assert _kind(np.zeros(RATE // 2, dtype=np.float32)).kind == "one-shot"
