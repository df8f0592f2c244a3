"""What a sample is: loop tempo, kind, key, and what its name says.

Pure functions, keyword-only arguments, numpy in and small frozen
dataclasses out, like ``engine.features``. Each can reuse what the features
pass already computed for the same audio (the mel power spectrogram, the
frame RMS, an STFT magnitude) instead of taking its own STFT.

Modules:

- ``tempo``: ``estimate_loop_tempo`` -> ``TempoEstimate(bpm, confidence, bars)``; a loop's
  duration allows a few exact bar-count tempos, the audio picks one.
- ``kind``: ``classify_kind`` -> ``KindEstimate(kind, confidence, reasons)``; "one-shot",
  "loop" or "long" from duration, pulse, onsets and decay, name hints as tie-breakers.
- ``key``: ``estimate_key`` -> ``KeyEstimate(tonic, mode, confidence, camelot)``; chroma
  against harmonic Krumhansl-Kessler templates, None for unpitched sound; ``key_evidence``
  (additive over blocks of STFT frames) and ``key_from_evidence`` for a block-wise pass; ``camelot``,
  ``parse_key``, ``compatible_keys``, ``relative_key``, ``mirex_score``.
- ``names``: ``hints_from_path`` -> ``NameHints(tempo, key, kind, category)``; what file and
  folder names state unambiguously.
"""

from engine.describe.key import (
    NO_KEY,
    KeyEstimate,
    KeyEvidence,
    camelot,
    compatible_keys,
    estimate_key,
    key_evidence,
    key_from_evidence,
    mirex_score,
    parse_key,
    relative_key,
)
from engine.describe.kind import KindEstimate, classify_kind
from engine.describe.names import NameHints, hints_from_path
from engine.describe.tempo import NO_TEMPO, TempoEstimate, estimate_loop_tempo

__all__ = [
    "TempoEstimate", "NO_TEMPO", "estimate_loop_tempo",
    "KindEstimate", "classify_kind",
    "KeyEstimate", "NO_KEY", "estimate_key", "KeyEvidence", "key_evidence", "key_from_evidence",
    "camelot", "parse_key", "compatible_keys", "relative_key",
    "mirex_score",
    "NameHints", "hints_from_path",
]
