"""What the import pipeline measures and decides about one decoded file, from one STFT.

``analyse`` frames the signal once (``engine.frames``): the spectral means,
the loop tempo (from the mel power), the kind (from the frame RMS) and the
key (from each block's magnitude, as it goes by) all come from that pass.
Then the file's name has its say, by these rules:

- tempo: none for a one-shot. A tempo in the name wins when the audio agrees
  with it within an octave, either way: 140 named and 70 heard is 140, and
  70 named and 140 heard is 70, since whether a half-time groove counts in
  70 or 140 is the pack author's call, not a measurement. It also wins when
  the audio hears no pulse in a loop whose duration is a whole number of
  bars at the named tempo (a pad loop). Otherwise the audio's tempo stands.
- key: a key in the name wins when the audio's key is the same, a fifth
  away, relative or parallel, or when the audio hears no key (packs key
  drum loops to their kit). A name naming only a note ("Kick_C#") takes its
  mode from the audio when the audio agrees on the note.
- kind: a hint from the name is one small vote among the audio's (``classify_kind``).
- category: the name's category word is kept for the model's categories (``engine.categories``).

Each decision records where it came from (``tempo_source``, ``key_source``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.describe import (
    NO_KEY,
    KeyEstimate,
    KeyEvidence,
    NameHints,
    classify_kind,
    estimate_loop_tempo,
    hints_from_path,
    key_evidence,
    key_from_evidence,
    mirex_score,
)
from engine.describe.tempo import BAR_COUNTS, BEATS_PER_BAR
from engine.features import Features, summarise
from engine.frames import N_FFT, frame_descriptors
from engine.store.types import Description

# 1: kind, tempo with its source, key with its source, the name's category.
DESCRIPTION_VERSION = 1
# How close a named tempo must be to the audio's (or its half or double), and to a whole bar count.
TEMPO_AGREEMENT = 0.03


@dataclass(frozen=True)
class Analysis:
    features: Features  # its tempo_bpm is the decided tempo (see the module docstring)
    description: Description


def analyse(*, samples: np.ndarray, sample_rate: int, name: str | None = None) -> Analysis:
    """Features and description of ``samples`` (mono float32, shape (n,), ``sample_rate`` Hz).

    ``name`` is the file's path (or an upload's name): its file and folder
    names are hints (``hints_from_path``); None reads no hints.
    """
    samples = np.asarray(samples, dtype=np.float32)
    duration_s = len(samples) / sample_rate
    evidence: list[KeyEvidence] = []
    frames = frame_descriptors(
        samples=samples, sample_rate=sample_rate,
        on_magnitude=lambda magnitude, first: evidence.append(
            key_evidence(magnitude=magnitude, sample_rate=sample_rate, n_fft=N_FFT, first_frame=first)),
    )
    hints = hints_from_path(name) if name else NameHints(tempo=None, key=None, kind=None, category=None)
    heard = estimate_loop_tempo(samples=samples, sample_rate=sample_rate, duration_s=duration_s,
                                mel_power=frames["mel_power"])
    kind = classify_kind(samples=samples, sample_rate=sample_rate, duration_s=duration_s, tempo=heard,
                         name_hint=hints.kind, rms=frames["rms"])
    tempo, tempo_source, bars = _decide_tempo(kind.kind, heard.bpm, heard.bars, hints.tempo, duration_s)
    audio_key = key_from_evidence(sum(evidence[1:], evidence[0])) if evidence else NO_KEY
    tonic, mode, key_confidence, key_source = _decide_key(audio_key, hints.key)
    description = Description(
        kind=kind.kind, kind_confidence=kind.confidence, tempo_source=tempo_source, bars=bars,
        key_tonic=tonic, key_mode=mode, key_confidence=key_confidence, key_source=key_source,
        name_category=hints.category, version=DESCRIPTION_VERSION,
    )
    return Analysis(summarise(frames=frames, duration_s=duration_s, tempo_bpm=tempo), description)


def _decide_tempo(kind: str, heard: float | None, bars: int | None, named: float | None,
                  duration_s: float) -> tuple[float | None, str | None, int | None]:
    if kind == "one-shot":
        return None, None, None
    if named is not None:
        if heard is not None and any(abs(named * factor / heard - 1.0) <= TEMPO_AGREEMENT
                                     for factor in (0.5, 1.0, 2.0)):
            return named, "name", _whole_bars(named, duration_s)
        if heard is None and kind == "loop" and _whole_bars(named, duration_s) is not None:
            return named, "name", _whole_bars(named, duration_s)
    if heard is None:
        return None, None, None
    return heard, "audio", bars


def _whole_bars(bpm: float, duration_s: float) -> int | None:
    """The bar count (of BAR_COUNTS) ``duration_s`` holds at ``bpm``, if it holds a whole one."""
    bars = duration_s * bpm / (60.0 * BEATS_PER_BAR)
    nearest = int(round(bars))
    return nearest if nearest in BAR_COUNTS and abs(bars / nearest - 1.0) <= TEMPO_AGREEMENT else None


def _decide_key(heard: KeyEstimate, named: tuple[str, str | None] | None
                ) -> tuple[str | None, str | None, float | None, str | None]:
    audio = (heard.tonic, heard.mode, heard.confidence, "audio") if heard.tonic else (None, None, None, None)
    if named is None:
        return audio
    tonic, mode = named
    if heard.tonic is None:
        return tonic, mode, None, "name"
    if mode is None:
        return (tonic, heard.mode, heard.confidence, "name") if tonic == heard.tonic else audio
    if mirex_score((heard.tonic, heard.mode), (tonic, mode)) > 0.0:
        return tonic, mode, heard.confidence, "name"
    return audio
