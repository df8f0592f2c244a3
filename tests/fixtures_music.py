"""Synthetic music with known answers: drum loops, chord progressions, one-shots.

Everything is rendered here, offline and deterministically (seeded), at
22,050 Hz by default: drum loops cut to exactly 1, 2 or 4 bars with the
tails of the last hits wrapped round to the start (as a seamless loop is
cut), chord progressions in known keys with four timbres, and one-shots
from a 64-sample single cycle to 3 s tones.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.signal import lfilter

RATE = 22_050
DRUM_TEMPOS = (70, 85, 90, 100, 110, 120, 128, 140, 150, 160, 170, 174, 180)
BAR_COUNTS = (1, 2, 4)
TONICS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor
# Scale degrees (0-based) of each progression's chords.
PROGRESSIONS = {
    "I-vi-IV-V-I": ("major", (0, 5, 3, 4, 0)),
    "i-iv-v-i": ("minor", (0, 3, 4, 0)),
    "i-VI-III-VII-i": ("minor", (0, 5, 2, 6, 0)),
}
# Eight major and eight minor keys spread round the circle of fifths (sharps and flats).
MAJOR_KEYS = ("C", "G", "D", "A", "E", "F", "A#", "D#")
MINOR_KEYS = ("A", "E", "B", "F#", "D", "G", "C", "F")

__all__ = [
    "RATE", "DRUM_TEMPOS", "BAR_COUNTS", "PATTERNS", "PROGRESSIONS", "TIMBRES",
    "kick", "snare", "hat", "render_loop", "drum_loops", "midi_hz",
    "piano_note", "string_note", "organ_note", "guitar_note", "render_progression", "chord_progressions",
    "one_shots", "tonal_loops", "long_recordings", "speech_like",
]


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _t(seconds: float, rate: int) -> np.ndarray:
    return np.arange(int(round(seconds * rate))) / rate


# --- drums --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def kick(rate: int = RATE, seconds: float = 0.35) -> np.ndarray:
    """A sine dropping from 150 to 55 Hz (30 ms), decaying with a 120 ms time constant."""
    t = _t(seconds, rate)
    freq = 55.0 + 95.0 * np.exp(-t / 0.03)
    return (0.9 * np.exp(-t / 0.12) * np.sin(2 * np.pi * np.cumsum(freq) / rate)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def snare(rate: int = RATE, seconds: float = 0.2, seed: int = 1) -> np.ndarray:
    """Noise (50 ms decay) over a 200 Hz tone (80 ms decay)."""
    t = _t(seconds, rate)
    noise = np.random.default_rng(seed).standard_normal(len(t)) * np.exp(-t / 0.05) * 0.35
    tone = 0.5 * np.sin(2 * np.pi * 200.0 * t) * np.exp(-t / 0.08)
    return (noise + tone).astype(np.float32)


@functools.lru_cache(maxsize=8)
def hat(rate: int = RATE, seconds: float = 0.045, seed: int = 2, decay_s: float = 0.012) -> np.ndarray:
    """Highpassed noise (second difference: +12 dB per octave), ``seconds`` long."""
    t = _t(seconds, rate)
    noise = np.random.default_rng(seed).standard_normal(len(t) + 2)
    bright = np.diff(noise, n=2) / 4.0
    return (0.5 * bright * np.exp(-t / decay_s)).astype(np.float32)


# 16 steps a bar: (step, instrument, velocity).
PATTERNS = {
    "four_on_the_floor": [(s, "kick", 1.0) for s in (0, 4, 8, 12)]
    + [(s, "snare", 0.6) for s in (4, 12)]
    + [(s, "hat", 0.5) for s in (2, 6, 10, 14)],
    "backbeat": [(0, "kick", 1.0), (8, "kick", 0.9), (10, "kick", 0.6), (4, "snare", 0.9), (12, "snare", 0.9)]
    + [(s, "hat", 0.4 if s % 4 == 0 else 0.3) for s in range(0, 16, 2)],
    "break": [(0, "kick", 1.0), (2, "kick", 0.7), (10, "kick", 0.8)]
    + [(4, "snare", 1.0), (7, "snare", 0.35), (12, "snare", 1.0), (15, "snare", 0.35)]
    + [(s, "hat", 0.35) for s in range(0, 16, 2)],
}


def render_loop(pattern: str, bpm: float, bars: int, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """``bars`` bars of ``PATTERNS[pattern]`` at ``bpm``, exactly bars * 4 * 60 / bpm seconds long.

    Hits are humanised (timing +-2 ms, velocity +-10 %, seeded); tails that
    run past the end wrap round to the start.
    """
    rng = np.random.default_rng(seed)
    n = int(round(bars * 4 * 60.0 / bpm * rate))
    out = np.zeros(n, dtype=np.float64)
    sounds = {"kick": kick(rate), "snare": snare(rate), "hat": hat(rate)}
    step_s = 60.0 / bpm / 4.0
    for bar in range(bars):
        for step, name, velocity in PATTERNS[pattern]:
            at = (bar * 16 + step) * step_s + rng.normal(0.0, 0.002)
            gain = velocity * (1.0 + rng.uniform(-0.1, 0.1))
            sound = sounds[name]
            start = int(round(at * rate)) % n
            index = (start + np.arange(len(sound))) % n
            np.add.at(out, index, gain * sound)
    return (out / max(1e-9, np.abs(out).max()) * 0.8).astype(np.float32)


def drum_loops(rate: int = RATE, tempos=DRUM_TEMPOS, bar_counts=BAR_COUNTS):
    """Every pattern at every tempo and bar count: list of (name, samples, bpm, bars)."""
    out = []
    for p, pattern in enumerate(PATTERNS):
        for bpm in tempos:
            for bars in bar_counts:
                samples = render_loop(pattern, bpm, bars, rate, seed=p * 1000 + bpm * 10 + bars)
                out.append((f"{pattern}_{bpm}bpm_{bars}bar", samples, float(bpm), bars))
    return out


# --- pitched timbres ----------------------------------------------------------------------------


def piano_note(freq: float, seconds: float, rate: int = RATE) -> np.ndarray:
    """Additive, 8 slightly stretched partials at 1/k, higher partials decaying faster."""
    t = _t(seconds, rate)
    out = np.zeros(len(t))
    for k in range(1, 9):
        f = freq * k * np.sqrt(1.0 + 0.0004 * k * k)
        if f < rate / 2:
            out += np.sin(2 * np.pi * f * t) / k * np.exp(-t * (1.2 + 0.7 * k))
    attack = np.minimum(1.0, t / 0.004)
    return (out * attack).astype(np.float32)


def string_note(freq: float, seconds: float, rate: int = RATE) -> np.ndarray:
    """Sawtooth-like (12 partials at 1/k), 5 Hz vibrato of +-0.3 %, 250 ms attack, 200 ms release."""
    t = _t(seconds, rate)
    phase = 2 * np.pi * np.cumsum(freq * (1.0 + 0.003 * np.sin(2 * np.pi * 5.0 * t))) / rate
    out = np.zeros(len(t))
    for k in range(1, 13):
        if freq * k < rate / 2:
            out += np.sin(k * phase) / k
    envelope = np.minimum(1.0, t / 0.25) * np.clip((seconds - t) / 0.2, 0.0, 1.0)
    return (0.5 * out * envelope).astype(np.float32)


def organ_note(freq: float, seconds: float, rate: int = RATE) -> np.ndarray:
    """Drawbar-like sustained partials 1, 2, 3, 4, 6, 8; 10 ms attack and release."""
    t = _t(seconds, rate)
    out = np.zeros(len(t))
    for k, amplitude in ((1, 1.0), (2, 0.8), (3, 0.6), (4, 0.5), (6, 0.3), (8, 0.25)):
        if freq * k < rate / 2:
            out += amplitude * np.sin(2 * np.pi * freq * k * t)
    envelope = np.minimum(1.0, t / 0.01) * np.clip((seconds - t) / 0.01, 0.0, 1.0)
    return (0.3 * out * envelope).astype(np.float32)


def guitar_note(freq: float, seconds: float, rate: int = RATE, seed: int = 3) -> np.ndarray:
    """Karplus-Strong plucked string: a noise burst through a delay line with a two-point average.

    The delay is whole samples, so the pitch is within about 1 % (17 cents) below 500 Hz.
    """
    period = max(2, int(round(rate / freq - 0.5)))
    burst = np.random.default_rng(seed).uniform(-1.0, 1.0, period)
    burst = np.convolve(burst, [0.5, 0.5], mode="same")  # a softer pick
    excitation = np.zeros(int(round(seconds * rate)))
    excitation[:period] = burst
    feedback = np.zeros(period + 2)
    feedback[0] = 1.0
    feedback[period] = feedback[period + 1] = -0.4985
    return (0.5 * lfilter([1.0], feedback, excitation)).astype(np.float32)


TIMBRES = {"piano": piano_note, "strings": string_note, "organ": organ_note, "guitar": guitar_note}


def _triad(tonic_pc: int, mode: str, degree: int) -> list[int]:
    """MIDI notes of the scale's triad on ``degree``: close position from G3-F#4, and the root an octave down."""
    scale = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    pcs = [(tonic_pc + scale[(degree + step) % 7]) % 12 for step in (0, 2, 4)]
    root = 55 + (pcs[0] - 7) % 12
    notes = [root]
    for pc in pcs[1:]:
        note = notes[-1] + 1
        while note % 12 != pc:
            note += 1
        notes.append(note)
    return [root - 12, *notes]


def render_progression(tonic: str, progression: str, timbre: str, seconds: float = 7.0,
                       rate: int = RATE) -> np.ndarray:
    """``PROGRESSIONS[progression]`` in ``tonic`` played by ``TIMBRES[timbre]``, ``seconds`` long in all."""
    mode, degrees = PROGRESSIONS[progression]
    note = TIMBRES[timbre]
    chord_s = seconds / len(degrees)
    chord_n = int(round(chord_s * rate))
    out = np.zeros(chord_n * len(degrees))
    for i, degree in enumerate(degrees):
        for j, midi in enumerate(_triad(TONICS.index(tonic), mode, degree)):
            gain = 0.7 if j == 0 else 0.5
            out[i * chord_n : (i + 1) * chord_n] += gain * note(midi_hz(midi), chord_s, rate)[:chord_n]
    return (out / np.abs(out).max() * 0.8).astype(np.float32)


def chord_progressions(rate: int = RATE, seconds: float = 7.0, timbres=tuple(TIMBRES)):
    """Every key x progression x timbre: list of (name, samples, (tonic, mode))."""
    out = []
    for progression, (mode, _) in PROGRESSIONS.items():
        for tonic in MAJOR_KEYS if mode == "major" else MINOR_KEYS:
            for timbre in timbres:
                samples = render_progression(tonic, progression, timbre, seconds, rate)
                out.append((f"{tonic}_{mode}_{progression}_{timbre}", samples, (tonic, mode)))
    return out


# --- one-shots, tonal loops, long recordings, speech ----------------------------------------------


def one_shots(rate: int = RATE):
    """Single sounds from 2 ms to 3 s: list of (name, samples)."""
    rng = np.random.default_rng(7)

    def decaying(freq, seconds, tau):
        t = _t(seconds, rate)
        return (0.8 * np.sin(2 * np.pi * freq * t) * np.exp(-t / tau)).astype(np.float32)

    def noise(seconds, tau=None, ramp=False):
        t = _t(seconds, rate)
        envelope = np.exp(-t / tau) if tau else (t / seconds if ramp else np.ones_like(t))
        return (0.3 * rng.standard_normal(len(t)) * envelope).astype(np.float32)

    def sweep(seconds, f0, f1):
        t = _t(seconds, rate)
        freq = f0 * (f1 / f0) ** (t / seconds)
        fade = np.minimum(1.0, t / 0.05) * np.clip((seconds - t) / 0.2, 0.0, 1.0)
        return (0.6 * np.sin(2 * np.pi * np.cumsum(freq) / rate) * fade).astype(np.float32)

    click = np.zeros(int(0.002 * rate), dtype=np.float32)
    click[:2] = (0.9, -0.4)
    cycle = (0.8 * np.sin(2 * np.pi * np.arange(64) / 64)).astype(np.float32)
    t_clap = _t(0.25, rate)
    clap = np.zeros(len(t_clap))
    for offset in (0.0, 0.011, 0.022):
        start = int(offset * rate)
        clap[start:] += rng.standard_normal(len(clap) - start) * np.exp(-(t_clap[: len(clap) - start]) / 0.03)
    toms_t = _t(0.4, rate)
    tom = np.sin(2 * np.pi * np.cumsum(90.0 + 40.0 * np.exp(-toms_t / 0.05)) / rate) * np.exp(-toms_t / 0.15)
    pad = sum(string_note(midi_hz(m), 3.0, rate) for m in (60, 64, 67))
    return [
        ("click_2ms", click),
        ("single_cycle_64", cycle),
        ("kick", kick(rate)),
        ("snare", snare(rate)),
        ("closed_hat", hat(rate)),
        ("open_hat", hat(rate, seconds=0.4, seed=5, decay_s=0.12)),
        ("clap", (0.25 * clap).astype(np.float32)),
        ("tom", (0.8 * tom).astype(np.float32)),
        ("crash", (hat(rate, seconds=2.5, seed=6, decay_s=0.8))),
        ("sub_808", decaying(45.0, 1.5, 0.5)),
        ("tone_110_1500ms", decaying(110.0, 1.5, 0.4)),
        ("tone_440_500ms", decaying(440.0, 0.5, 0.12)),
        ("tone_1000_100ms", decaying(1000.0, 0.1, 0.03)),
        ("tone_220_3s", decaying(220.0, 3.0, 0.6)),
        ("noise_30ms", noise(0.03)),
        ("noise_200ms_decaying", noise(0.2, tau=0.05)),
        ("noise_1s", noise(1.0)),
        ("riser_2s", noise(2.0, ramp=True)),
        ("sweep_up_1200ms", sweep(1.2, 200.0, 5000.0)),
        ("sweep_down_600ms", sweep(0.6, 3000.0, 100.0)),
        ("piano_c4", piano_note(midi_hz(60), 2.5, rate)),
        ("guitar_e3", guitar_note(midi_hz(52), 2.0, rate)),
        ("organ_g4", organ_note(midi_hz(67), 1.0, rate)),
        ("string_pad_chord_3s", (pad / np.abs(pad).max() * 0.8).astype(np.float32)),
        ("pluck_a3_300ms", guitar_note(midi_hz(57), 0.3, rate)),
    ]


def tonal_loops(rate: int = RATE):
    """Pitched loops cut to whole bars: 8th-note plucked bass lines and off-beat chord stabs.

    List of (name, samples, bpm, bars).
    """
    out = []
    for bpm, bars in ((90, 2), (120, 2), (140, 4), (174, 4)):
        n = int(round(bars * 240.0 / bpm * rate))
        eighth = 30.0 / bpm
        bass = np.zeros(n)
        roots = (45, 45, 48, 43)  # A2 A2 C3 G2, one per bar
        for i in range(bars * 8):
            note = guitar_note(midi_hz(roots[(i // 8) % 4] + (12 if i % 4 == 2 else 0)), eighth, rate)
            start = int(round(i * eighth * rate))
            bass[start : start + len(note)] += note[: n - start]
        out.append((f"bass_line_{bpm}bpm_{bars}bar", (bass / np.abs(bass).max() * 0.8).astype(np.float32),
                    float(bpm), bars))
        stabs = np.zeros(n)
        for beat in range(bars * 4):
            start = int(round((beat + 0.5) * 2 * eighth * rate))
            for midi in (57, 60, 64):
                note = piano_note(midi_hz(midi), eighth, rate)
                stabs[start : start + len(note)] += note[: n - start]
        out.append((f"chord_stabs_{bpm}bpm_{bars}bar", (stabs / np.abs(stabs).max() * 0.8).astype(np.float32),
                    float(bpm), bars))
    return out


def long_recordings(rate: int = RATE):
    """Over 30 s and not loops: a groove cut mid-bar, and an evolving pad. List of (name, samples)."""
    groove = render_loop("backbeat", 123, 18, rate, seed=11)[: int(35.0 * rate)]
    t = _t(40.0, rate)
    pad = np.zeros(len(t))
    for i, midi in enumerate((48, 55, 60, 63, 67)):
        pad += string_note(midi_hz(midi), 40.0, rate) * (0.6 + 0.4 * np.sin(2 * np.pi * (0.05 + 0.02 * i) * t))
    return [("groove_35s_not_bars", groove), ("pad_40s", (pad / np.abs(pad).max() * 0.8).astype(np.float32))]


def speech_like(seconds: float = 3.0, rate: int = RATE, seed: int = 4) -> np.ndarray:
    """Voiced syllables at a gliding pitch (90-220 Hz) through vowel formants, with fricative noise between."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    knots = rng.uniform(90.0, 220.0, int(seconds * 4) + 2)
    f0 = np.interp(t, np.linspace(0, seconds, len(knots)), knots)
    phase = np.cumsum(f0) / rate
    source = (phase % 1.0) * 2.0 - 1.0  # sawtooth: all harmonics, like a glottal pulse train
    vowels = ((700, 1220), (300, 2300), (500, 900), (400, 1900), (650, 1700))
    out = np.zeros(n)
    syllable = int(0.22 * rate)
    for i, start in enumerate(range(0, n, syllable)):
        segment = source[start : start + syllable]
        voiced = np.zeros(len(segment))
        for formant in vowels[rng.integers(len(vowels))]:
            r = np.exp(-np.pi * 100.0 / rate)
            theta = 2 * np.pi * formant / rate
            voiced += lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], segment)
        envelope = np.hanning(len(segment)) * (1.0 if i % 3 else 0.6)
        out[start : start + len(segment)] += voiced * envelope
        hiss = rng.standard_normal(len(segment) // 4) * 0.05
        out[start : start + len(hiss)] += np.diff(np.concatenate([[0.0], hiss]))
    return (out / np.abs(out).max() * 0.8).astype(np.float32)
