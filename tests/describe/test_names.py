import pytest

from engine.describe import NameHints, hints_from_path


@pytest.mark.parametrize(
    ("path", "tempo", "key", "kind", "category"),
    [
        ("Kick_01.wav", None, None, "one-shot", "kick"),
        ("808_Sub.wav", None, None, None, "bass"),
        ("Snare v2.wav", None, None, "one-shot", "snare"),
        ("Break 1994.wav", None, None, "loop", "drums"),
        ("Loops/128 BPM/drum_loop.wav", 128.0, None, "loop", "drums"),
        ("Pad_Fmin_90.wav", 90.0, ("F", "minor"), None, "pad"),
        ("Kick_808_C#_140bpm.wav", 140.0, ("C#", None), "one-shot", "kick"),
        ("Kicks/Kick_808_C#.aiff", None, ("C#", None), "one-shot", "kick"),
        ("Bass_F#_Sub.wav", None, ("F#", None), None, "bass"),
        ("Amen Break 170.wav", 170.0, None, "loop", "drums"),
        ("A_Kick.wav", None, None, "one-shot", "kick"),
        ("Dark Bass 03.wav", None, None, None, "bass"),
        ("Juno 106 Pad C.wav", None, None, None, "pad"),
        ("Synth Loop 120 Am.wav", 120.0, ("A", "minor"), "loop", "lead"),
        ("Bass_Loop_E_124.wav", 124.0, ("E", None), "loop", "bass"),
        ("Vocals/Vox_Chop_C# minor_95bpm.wav", 95.0, ("C#", "minor"), None, "vocal"),
        ("Keys/Rhodes Chords Gb major.flac", None, ("F#", "major"), "loop", "keys"),
        ("One Shots/Hits/Impact 100.wav", None, None, "one-shot", "fx"),
        ("FX/Riser 8 bars.wav", None, None, None, "fx"),
        ("Pads/Warm Pad Amaj.wav", None, ("A", "major"), None, "pad"),
        ("Hats/Closed Hat 17.aif", None, None, "one-shot", "hat"),
        ("Snares/Snare_Take3.wav", None, None, "one-shot", "snare"),
        ("Loops/Groove_Take_120_8A.wav", None, None, "loop", "drums"),
        ("Loops/Groove_110_8A.wav", 110.0, ("A", "minor"), "loop", "drums"),
        ("Drum Loops/BPM128_Top_Loop.wav", 128.0, None, "loop", "drums"),
        ("C:\\Samples\\Loops\\Perc Loop 100 BPM.wav", 100.0, None, "loop", "percussion"),
        ("Bass/Bass_Dmin_Loop_2019.wav", None, ("D", "minor"), "loop", "bass"),
        ("Loops/Loop 90 120.wav", None, None, "loop", None),
        ("Loops/MPC 60 Beat.wav", None, None, "loop", "drums"),
        ("Vox_I_Am_Here.wav", None, None, None, "vocal"),
    ],
)
def test_names(path, tempo, key, kind, category):
    assert hints_from_path(path) == NameHints(tempo=tempo, key=key, kind=kind, category=category)


def test_empty_and_plain_names_say_nothing():
    assert hints_from_path("") == NameHints(tempo=None, key=None, kind=None, category=None)
    assert hints_from_path("recording.wav") == NameHints(tempo=None, key=None, kind=None, category=None)
