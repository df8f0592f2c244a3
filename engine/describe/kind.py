"""One-shot, loop or long recording, from the audio first and the name second.

Evidence, each a signed vote (positive: loop, negative: one-shot), summed:

- duration: under 0.6 s is a hit; a one-bar loop at 200 BPM lasts 1.2 s;
- pulse: a steady tempo whose bar count the duration fits is the mark of a
  loop; a pulse without a bar fit counts less; no pulse counts against;
- onsets: one or two onsets are a hit, four or more a pattern;
- decay: a one-shot dies away (its last quarter 30 dB or more under its
  first), a loop keeps its level to the end, since its end is its start.

Name hints ("Loops/", "one shot", "Kick") add a small vote, less than any
one piece of audio evidence, so they only break ties. Material over
LONG_S seconds that is not a clean loop is "long" (a song, a stem, a field
recording).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.describe.tempo import TempoEstimate
from engine.frames import HOP, N_FFT, SILENCE_RMS

LONG_S = 30.0
SHORT_S = 0.6  # under this a sample is a hit; a half-bar loop at 200 BPM lasts 0.6 s
# An onset is a rise of this many dB in frame energy (RMS frames of N_FFT every HOP) over the previous frame.
ONSET_RISE_DB = 6.0
HINT_VOTE = 0.3


@dataclass(frozen=True)
class KindEstimate:
    kind: str  # "one-shot", "loop" or "long"
    confidence: float  # 0 to 1
    reasons: list[str] = field(default_factory=list)  # the evidence, in words


def classify_kind(
    *,
    samples: np.ndarray,
    sample_rate: int,
    duration_s: float,
    tempo: TempoEstimate | None,
    name_hint: str | None = None,
    rms: np.ndarray | None = None,
) -> KindEstimate:
    """Kind of the sound ``samples`` (mono float32, shape (n,), ``sample_rate`` Hz), ``duration_s`` long.

    ``tempo`` is ``estimate_loop_tempo``'s answer for the same audio (None
    when not measured: counts as no pulse). ``name_hint`` is "loop" or
    "one-shot" from the file's name (``hints_from_path(...).kind``), or None.
    ``rms`` (frames,), per-frame RMS with frames of 2048 every 512 samples
    (``frame_descriptors(...)["rms"]``), saves computing it.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if rms is None:
        rms = frame_rms(samples=samples)
    rms = np.asarray(rms, dtype=np.float64)
    reasons: list[str] = []
    if samples.size == 0 or float(rms.max(initial=0.0)) < SILENCE_RMS:
        return KindEstimate(kind="long" if duration_s > LONG_S else "one-shot", confidence=0.3,
                            reasons=["silent"])

    vote = 0.0
    if duration_s < SHORT_S:
        vote -= 2.0
        reasons.append(f"{duration_s * 1000:.0f} ms: shorter than any loop")
    elif duration_s < 1.2:
        vote -= 0.7
        reasons.append(f"{duration_s:.2f} s: shorter than a bar at 200 BPM")

    clean_loop = tempo is not None and tempo.bpm is not None and tempo.bars is not None
    if clean_loop:
        vote += 1.0 + tempo.confidence
        reasons.append(f"steady pulse at {tempo.bpm:.1f} BPM; {tempo.bars} whole bar(s)")
    elif tempo is not None and tempo.bpm is not None:
        vote += 0.4
        reasons.append(f"steady pulse at {tempo.bpm:.1f} BPM, not a whole number of bars")
    else:
        vote -= 0.8
        reasons.append("no steady pulse")

    onsets = count_onsets(rms=rms)
    if onsets <= 2:
        vote -= 1.0 if onsets <= 1 else 0.4
        reasons.append(f"{onsets} onset(s)")
    elif onsets >= 4:
        vote += 0.5
        reasons.append(f"{onsets} onsets")

    drop_db = decay_db(samples=samples)
    if drop_db >= 30.0:
        vote -= 0.8
        reasons.append(f"dies away ({drop_db:.0f} dB from first to last quarter)")
    elif drop_db <= 12.0:
        vote += 0.3
        reasons.append(f"keeps its level to the end ({drop_db:.0f} dB)")

    if name_hint in ("loop", "one-shot"):
        vote += HINT_VOTE if name_hint == "loop" else -HINT_VOTE
        reasons.append(f"name says {name_hint}")

    if duration_s > LONG_S and not (clean_loop and vote > 1.5):
        reasons.append(f"{duration_s:.0f} s and not a clean loop")
        return KindEstimate(kind="long", confidence=round(min(1.0, 0.6 + (duration_s - LONG_S) / 60.0), 3),
                            reasons=reasons)
    kind = "loop" if vote > 0 else "one-shot"
    # |vote| of 2 or more is as sure as this gets.
    return KindEstimate(kind=kind, confidence=round(min(1.0, 0.5 + abs(vote) / 4.0), 3), reasons=reasons)


def frame_rms(*, samples: np.ndarray, frame_length: int = N_FFT, hop_length: int = HOP) -> np.ndarray:
    """RMS per centred frame (frames,), 1 + n // hop_length frames, counting only real samples.

    The same framing as ``engine.frames.frame_descriptors``'s ``rms``,
    from running sums: O(n), no framed copy of the signal.
    """
    samples = np.asarray(samples, dtype=np.float32)
    n = len(samples)
    starts = np.arange(1 + n // hop_length) * hop_length - frame_length // 2
    lo = np.clip(starts, 0, n)
    hi = np.clip(starts + frame_length, 0, n)
    energy = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
    support = hi - lo
    power = np.maximum(energy[hi] - energy[lo], 0.0)
    return np.sqrt(np.divide(power, support, out=np.zeros_like(power), where=support > 0))


def count_onsets(*, rms: np.ndarray) -> int:
    """Onsets in a frame RMS curve (frames,): rises of ONSET_RISE_DB or more that are local maxima.

    The first frame counts as an onset when it has signal (a one-shot starts
    on its first sample). Frames quieter than 40 dB under the loudest never
    start an onset: a tail's flutter is not a hit.
    """
    rms = np.asarray(rms, dtype=np.float64)
    peak = float(rms.max(initial=0.0))
    if peak <= 0.0:
        return 0
    level = 20.0 * np.log10(np.maximum(rms, peak * 1e-3))
    rise = np.diff(level, prepend=level[0] - 60.0 if rms[0] > SILENCE_RMS else level[0])
    loud = level > 20.0 * np.log10(peak) - 40.0
    is_peak = rise >= ONSET_RISE_DB
    # A rise spread over two frames is one onset: keep the first frame of each run.
    starts = is_peak & ~np.concatenate([[False], is_peak[:-1]])
    return int((starts & loud).sum())


def decay_db(*, samples: np.ndarray) -> float:
    """How far the last quarter's energy lies under the first quarter's, in dB (0 or more; 120 for silence)."""
    samples = np.asarray(samples, dtype=np.float32)
    quarter = max(1, len(samples) // 4)
    first = float(np.mean(np.square(samples[:quarter], dtype=np.float64)))
    last = float(np.mean(np.square(samples[-quarter:], dtype=np.float64)))
    if first <= 0.0:
        return 0.0
    return float(min(120.0, max(0.0, 10.0 * np.log10(first / max(last, first * 1e-12)))))
