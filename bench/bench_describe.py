"""Descriptions (tempo, kind, key, names) through the import pipeline: how right, and what they cost.

Two parts (pick with --parts):

* ``accuracy``: ``engine.analysis.analyse`` (the real pipeline function) on the
  rendered test material of tests/fixtures_music.py at 22,050 Hz
  (``engine.audio.FEATURE_RATE``), audio only (``name=None``):
  - tempo on ``drum_loops()``: share within 2 % of the true BPM, and of the
    true BPM or its half or double; failures by pattern, tempo and bar count;
    the same two shares for the features pass as it was before this change
    (FEATURE_VERSION 2, librosa's beat tracker; the baseline section below);
    and the same on the drum loops humanised with other seeds (the tempo
    estimator's FASTER_BIAS was tuned on the fixture's) and on ``tonal_loops()``;
  - kind per set: ``one_shots()`` "one-shot", ``drum_loops()`` and
    ``tonal_loops()`` "loop", ``long_recordings()`` "long" (as
    tests/describe/test_kind.py expects), and overall;
  - key: mean MIREX score (``engine.describe.mirex_score``) and share exact
    over ``chord_progressions()``, by timbre and mode; and the share of
    unpitched material (drum loops, the drum and noise one-shots of
    tests/describe/test_key.py, ``speech_like()``) that gets no key;
  - names: a few drum loops with a path naming their tempo
    ("Loops/140 BPM/Break_140bpm.wav": tempo_source "name", tempo right) and
    naming half their tempo (agrees within an octave: the name's tempo wins).
* ``cost``: per-file wall time on a generated library of real encoded files
  (WAV 44.1 kHz 16/24-bit, some FLAC, Ogg Vorbis and MP3; mono and stereo):
  about 60 % one-shots of 0.05-2 s, 30 % loops of 2-16 s, 10 % recordings of
  30-180 s. For each file, in each of ``--repeats`` rounds: decode
  (``engine.audio.decode`` + ``at_rate(FEATURE_RATE)``),
  features before (the baseline ``compute_features``) and analyse after
  (``engine.analysis.analyse(samples, sample_rate, name=path)``), before and
  after taking turns to go first; the median of the rounds is kept (and, as
  checks less swayed by other load, the fastest round and the main thread's
  CPU time); every path is warmed up once first
  (librosa filter banks, numba kernels, codecs). Reported per class and
  overall: median and mean ms, and the added cost (analyse - before) as a
  share of (decode + before). Then where analyse's time goes: framing, key
  evidence (inside the framing pass, timed separately), tempo, kind, key
  decision, name hints, and deciding + summarising.

The machine's load average is printed before and after: the timings are
wall clock, so other processes on the machine show up in them.

Usage:
    .venv/bin/python bench/bench_describe.py [--quick] [--parts accuracy,cost] [--files 100]
        [--repeats 5] [--seed 0] [--out results.json]

``--quick``: fewer tempos and timbres for accuracy, 20 files (one recording
of 30-60 s) and 2 repeats for cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import analysis as engine_analysis  # noqa: E402
from engine import audio  # noqa: E402
from engine import frames as engine_frames  # noqa: E402
from engine.describe import (  # noqa: E402
    NO_KEY,
    NameHints,
    classify_kind,
    estimate_loop_tempo,
    hints_from_path,
    key_evidence,
    key_from_evidence,
    mirex_score,
)
from engine.features import summarise  # noqa: E402
from tests.fixtures_audio import write_audio  # noqa: E402
from tests.fixtures_music import (  # noqa: E402
    DRUM_TEMPOS,
    PATTERNS,
    PROGRESSIONS,
    TIMBRES,
    chord_progressions,
    drum_loops,
    long_recordings,
    one_shots,
    render_loop,
    render_progression,
    speech_like,
    tonal_loops,
)

RATE = audio.FEATURE_RATE
FILE_RATE = 44_100
OTHER_SEED = 500_000  # humanisation seeds for the second set of drum loops
MAX_DURATION_S = 600.0  # engine.config.Settings.max_duration_s default
# The drum and noise one-shots tests/describe/test_key.py expects to have no key.
UNPITCHED_ONE_SHOTS = {"click_2ms", "kick", "snare", "closed_hat", "open_hat", "clap", "crash", "noise_30ms",
                       "noise_200ms_decaying", "noise_1s", "riser_2s"}


# =================================================================================================
# BASELINE: the features pass before this change, copied from
# `git show e516508:engine/features.py` (FEATURE_VERSION 2): one framing pass, then
# librosa's log-mel onset strength and beat tracker for the tempo. Kept verbatim but for
# the names of the dataclass and the module constants it used (the BASELINE_ prefix).
# =================================================================================================

BASELINE_N_FFT = 2048
BASELINE_HOP = 512
BASELINE_BLOCK_FRAMES = 512
BASELINE_SILENCE_RMS = 3e-4
BASELINE_MIN_PULSE_CLARITY = 0.3
BASELINE_MIN_BEATS = 4
BASELINE_FEATURE_VERSION = 2


@dataclass(frozen=True)
class BaselineFeatures:
    duration_s: float
    tempo_bpm: float | None
    spectral_centroid_hz: float
    zero_crossing_rate: float
    rms_energy: float


def baseline_compute_features(*, samples: np.ndarray, sample_rate: int) -> BaselineFeatures:
    """e516508's ``compute_features``."""
    frames = baseline_frame_descriptors(samples=samples, sample_rate=sample_rate)
    voiced = frames["rms"] > BASELINE_SILENCE_RMS
    centroid = frames["centroid"][voiced]
    onset_envelope = librosa.onset.onset_strength(
        S=librosa.power_to_db(frames["mel_power"], ref=np.max), sr=sample_rate
    )
    return BaselineFeatures(
        duration_s=len(samples) / sample_rate,
        tempo_bpm=baseline_estimate_tempo(onset_envelope=onset_envelope, sample_rate=sample_rate,
                                          hop_length=BASELINE_HOP)
        if voiced.any()
        else None,
        spectral_centroid_hz=float(centroid.mean()) if centroid.size else 0.0,
        zero_crossing_rate=float(frames["zcr"].mean()),
        rms_energy=float(frames["rms"].mean()),
    )


def baseline_frame_descriptors(*, samples: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """e516508's ``frame_descriptors`` (no ``on_magnitude`` callback)."""
    n_fft, hop = BASELINE_N_FFT, BASELINE_HOP
    samples = np.asarray(samples, dtype=np.float32)
    n = len(samples)
    n_frames = 1 + n // hop
    mel_basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    parts: dict[str, list[np.ndarray]] = {"rms": [], "zcr": [], "centroid": [], "mel_power": [], "support": []}
    for first in range(0, n_frames, BASELINE_BLOCK_FRAMES):
        last = min(first + BASELINE_BLOCK_FRAMES, n_frames)
        offset = first * hop - n_fft // 2
        block = _baseline_padded_slice(samples, offset, (last - 1) * hop + n_fft // 2)
        starts = np.arange(last - first) * hop
        lo = np.clip(starts, -offset, None)
        hi = np.clip(starts + n_fft, None, n - offset)
        support = np.maximum(hi - lo, 0)
        energy = np.concatenate([[0.0], np.cumsum(np.square(block, dtype=np.float64))])
        power = np.maximum(energy[starts + n_fft] - energy[starts], 0.0)
        parts["rms"].append(np.sqrt(np.divide(power, support, out=np.zeros_like(power), where=support > 0)))
        signs = np.signbit(block)
        changes = np.concatenate([[0], np.cumsum(signs[1:] != signs[:-1])])
        pairs = np.maximum(support - 1, 0)
        crossings = (changes[np.maximum(hi - 1, lo)] - changes[lo]).astype(np.float64)
        parts["zcr"].append(np.divide(crossings, pairs, out=np.zeros_like(crossings), where=pairs > 0))
        parts["support"].append(support)
        magnitude = np.abs(librosa.stft(block, n_fft=n_fft, hop_length=hop, center=False))
        total = magnitude.sum(axis=0)
        parts["centroid"].append(np.divide(freqs @ magnitude, total, out=np.zeros_like(total), where=total > 0))
        parts["mel_power"].append(mel_basis @ (magnitude * magnitude))
    return {key: np.concatenate(value, axis=-1) for key, value in parts.items()}


def _baseline_padded_slice(samples: np.ndarray, start: int, stop: int) -> np.ndarray:
    """e516508's ``_padded_slice``."""
    if start >= 0 and stop <= len(samples):
        return samples[start:stop]
    out = np.zeros(stop - start, dtype=samples.dtype)
    lo, hi = max(start, 0), min(stop, len(samples))
    if hi > lo:
        out[lo - start : hi - start] = samples[lo:hi]
    return out


def baseline_estimate_tempo(*, onset_envelope: np.ndarray, sample_rate: int, hop_length: int) -> float | None:
    """e516508's ``estimate_tempo``: autocorrelation period with a 120 BPM prior, then librosa's beat tracker."""
    lags, autocorr = _baseline_pulse_autocorrelation(onset_envelope, sample_rate, hop_length)
    if autocorr.size == 0 or autocorr.max() < BASELINE_MIN_PULSE_CLARITY:
        return None
    bpm_at_lag = 60.0 * sample_rate / (hop_length * lags)
    prior = np.exp(-0.5 * np.log2(bpm_at_lag / 120.0) ** 2)
    prior_bpm = float(bpm_at_lag[np.argmax(np.clip(autocorr, 0, None) * prior)])
    _, beats = librosa.beat.beat_track(
        onset_envelope=onset_envelope, sr=sample_rate, hop_length=hop_length, bpm=prior_bpm, units="time"
    )
    if len(beats) < BASELINE_MIN_BEATS:
        return None
    return float(60.0 * (len(beats) - 1) / (beats[-1] - beats[0]))


def _baseline_pulse_autocorrelation(envelope: np.ndarray, sample_rate: int, hop_length: int):
    """e516508's ``_pulse_autocorrelation``."""
    envelope = envelope - envelope.mean()
    energy = float(np.dot(envelope, envelope))
    frames_per_s = sample_rate / hop_length
    shortest, longest = int(frames_per_s * 60 / 240), int(frames_per_s * 60 / 40)
    longest = min(longest, len(envelope) - 1)
    if energy <= 1e-12 or longest <= shortest:
        return np.empty(0), np.empty(0)
    autocorr = librosa.autocorrelate(envelope, max_size=longest + 1)
    lags = np.arange(shortest, longest + 1)
    return lags, autocorr[shortest : longest + 1] / energy


def baseline_warm_up() -> None:
    """e516508's ``_warm_up``: a 3 s click track at 120 BPM (compiles the beat tracker's numba kernels)."""
    clicks = np.zeros(RATE * 3, dtype=np.float32)
    clicks[:: RATE // 2] = 1.0
    baseline_compute_features(samples=clicks, sample_rate=RATE)


# =================================================================================================
# END OF BASELINE
# =================================================================================================


def analyse_in_pieces(*, samples: np.ndarray, sample_rate: int, name: str | None = None):
    """``engine.analysis.analyse`` step by step, timing each step: (Analysis, {piece: seconds}, internals).

    Mirrors analysis.analyse; callers check its result equals analyse's, so a
    change there that this copy misses shows up as a mismatch, not a wrong figure.
    """
    times: dict[str, float] = defaultdict(float)
    samples = np.asarray(samples, dtype=np.float32)
    duration_s = len(samples) / sample_rate
    evidence = []

    def on_magnitude(magnitude, first):
        start = time.perf_counter()
        evidence.append(key_evidence(magnitude=magnitude, sample_rate=sample_rate, n_fft=engine_frames.N_FFT,
                                     first_frame=first))
        times["key evidence"] += time.perf_counter() - start

    start = time.perf_counter()
    frames = engine_frames.frame_descriptors(samples=samples, sample_rate=sample_rate, on_magnitude=on_magnitude)
    times["framing"] = time.perf_counter() - start - times["key evidence"]

    start = time.perf_counter()
    hints = hints_from_path(name) if name else NameHints(tempo=None, key=None, kind=None, category=None)
    times["names"] = time.perf_counter() - start

    start = time.perf_counter()
    heard = estimate_loop_tempo(samples=samples, sample_rate=sample_rate, duration_s=duration_s,
                                mel_power=frames["mel_power"])
    times["tempo"] = time.perf_counter() - start

    start = time.perf_counter()
    kind = classify_kind(samples=samples, sample_rate=sample_rate, duration_s=duration_s, tempo=heard,
                         name_hint=hints.kind, rms=frames["rms"])
    times["kind"] = time.perf_counter() - start

    start = time.perf_counter()
    audio_key = key_from_evidence(sum(evidence[1:], evidence[0])) if evidence else NO_KEY
    times["key decision"] = time.perf_counter() - start

    start = time.perf_counter()
    tempo, tempo_source, bars = engine_analysis._decide_tempo(kind.kind, heard.bpm, heard.bars, hints.tempo,
                                                              duration_s)
    tonic, mode, key_confidence, key_source = engine_analysis._decide_key(audio_key, hints.key)
    decided = {"kind": kind.kind, "kind_confidence": kind.confidence, "tempo_source": tempo_source, "bars": bars,
               "key_tonic": tonic, "key_mode": mode, "key_confidence": key_confidence, "key_source": key_source,
               "name_category": hints.category}
    features = summarise(frames=frames, duration_s=duration_s, tempo_bpm=tempo)
    times["decide + summarise"] = time.perf_counter() - start
    return (features, decided), dict(times), {"heard": heard, "kind": kind, "audio_key": audio_key, "hints": hints}


def _mirrors(mirrored, result) -> bool:
    """Whether ``analyse_in_pieces``'s (features, decided) is what ``analyse`` returned."""
    features, decided = mirrored
    return features == result.features and all(getattr(result.description, k) == v for k, v in decided.items())


def _tempo(result) -> float | None:
    """The decided tempo: Analysis.features.tempo_bpm (the Description may or may not repeat it)."""
    return result.features.tempo_bpm


def _analyse(samples: np.ndarray, name: str | None = None):
    return engine_analysis.analyse(samples=samples, sample_rate=RATE, name=name)


def _share(flags) -> float | None:
    flags = list(flags)
    return round(float(np.mean(flags)), 4) if flags else None


def _within(bpm: float | None, truth: float, tolerance: float = 0.02) -> bool:
    return bpm is not None and abs(bpm / truth - 1.0) <= tolerance


def _within_octave(bpm: float | None, truth: float, tolerance: float = 0.02) -> bool:
    return bpm is not None and any(abs(bpm / (truth * f) - 1.0) <= tolerance for f in (0.5, 1.0, 2.0))


# --- accuracy --------------------------------------------------------------------------------------


def _tempo_sweep(items) -> dict:
    """Tempo accuracy on (name, samples, bpm, bars) items, after (analyse) and before (baseline)."""
    rows = []
    for name, samples, bpm, bars in items:
        result = _analyse(samples)
        d = result.description
        before = baseline_compute_features(samples=samples, sample_rate=RATE).tempo_bpm
        rows.append({"name": name, "pattern": name.split(f"_{int(bpm)}bpm")[0], "bpm": bpm, "bars": bars,
                     "got": _tempo(result), "got_bars": d.bars, "kind": d.kind, "key": d.key, "before": before})
    strict = [r for r in rows if not _within(r["got"], r["bpm"])]
    octave = [r for r in rows if not _within_octave(r["got"], r["bpm"])]
    by = {}
    for field in ("pattern", "bpm", "bars"):
        totals = Counter(r[field] for r in rows)
        misses = Counter(r[field] for r in strict)
        by[field] = {f"{k:g}" if isinstance(k, float) else str(k): f"{misses[k]}/{totals[k]}" for k in totals}
    return {
        "loops": len(rows),
        "within_2pct": _share(_within(r["got"], r["bpm"]) for r in rows),
        "within_2pct_or_octave": _share(_within_octave(r["got"], r["bpm"]) for r in rows),
        "right_bar_count_when_right": _share(r["got_bars"] == r["bars"] for r in rows if _within(r["got"], r["bpm"])),
        "before_within_2pct": _share(_within(r["before"], r["bpm"]) for r in rows),
        "before_within_2pct_or_octave": _share(_within_octave(r["before"], r["bpm"]) for r in rows),
        "misses_by": by,
        "misses": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                    if k in ("name", "got", "got_bars", "kind", "before")} for r in strict],
        "octave_misses": [r["name"] for r in octave],
    }


def accuracy(quick: bool) -> dict:
    tempos = (70, 100, 120, 140, 174) if quick else DRUM_TEMPOS
    timbres = ("piano", "guitar") if quick else tuple(TIMBRES)
    loops = drum_loops(RATE, tempos=tempos)
    out: dict = {}

    # Tempo, after (analyse) and before (baseline features): the fixture's drum loops, the same
    # patterns, tempos and bar counts humanised with other seeds (FASTER_BIAS was tuned on the
    # fixture's), and the tonal loops.
    other_seeds = [(f"{name}_seed+{OTHER_SEED}", render_loop(name.split(f"_{int(bpm)}bpm")[0], bpm, bars, RATE,
                                                            seed=OTHER_SEED + p * 1000 + int(bpm) * 10 + bars),
                    bpm, bars)
                   for p, (name, _, bpm, bars) in enumerate(loops)]
    out["tempo"] = {
        "drum loops": _tempo_sweep(loops),
        "drum loops, other seeds": _tempo_sweep(other_seeds),
        "tonal loops": _tempo_sweep(tonal_loops(RATE)),
    }

    # Kind per set.
    sets = {
        "one-shots": ("one-shot", [(n, s) for n, s in one_shots(RATE)]),
        "drum loops": ("loop", [(n, s) for n, s, _, _ in loops]),
        "tonal loops": ("loop", [(n, s) for n, s, _, _ in tonal_loops(RATE)]),
        "long recordings": ("long", list(long_recordings(RATE))),
    }
    kind_out, right_all = {}, []
    for set_name, (expected, items) in sets.items():
        wrong = []
        for name, samples in items:
            got = _analyse(samples).description.kind
            right_all.append(got == expected)
            if got != expected:
                _, _, internals = analyse_in_pieces(samples=samples, sample_rate=RATE)
                wrong.append({"name": name, "got": got, "seconds": round(len(samples) / RATE, 2),
                              "reasons": internals["kind"].reasons})
        kind_out[set_name] = {"expected": expected, "right": f"{len(items) - len(wrong)}/{len(items)}",
                              "share": _share([True] * (len(items) - len(wrong)) + [False] * len(wrong)),
                              "wrong": wrong}
    kind_out["overall"] = {"share": _share(right_all), "right": f"{sum(right_all)}/{len(right_all)}"}
    out["kind"] = kind_out

    # Key on chord progressions.
    progs = chord_progressions(RATE, timbres=timbres)
    key_rows = []
    for name, samples, truth in progs:
        d = _analyse(samples).description
        est = (d.key_tonic, d.key_mode)
        key_rows.append({"name": name, "truth": f"{truth[0]} {truth[1]}", "got": d.key,
                         "confidence": d.key_confidence,
                         "score": mirex_score(est if d.key_tonic else None, truth), "timbre": name.rsplit("_", 1)[1],
                         "mode": truth[1], "progression": name.split("_")[2]})
    groups = {}
    for field in ("timbre", "mode", "progression"):
        groups[field] = {k: round(float(np.mean([r["score"] for r in key_rows if r[field] == k])), 3)
                         for k in dict.fromkeys(r[field] for r in key_rows)}
    out["key"] = {
        "progressions": len(key_rows),
        "mean_mirex": round(float(np.mean([r["score"] for r in key_rows])), 4),
        "exact": _share(r["score"] == 1.0 for r in key_rows),
        "no_key": _share(r["got"] is None for r in key_rows),
        "mean_mirex_by": groups,
        "misses": [{k: r[k] for k in ("name", "got", "confidence", "score")} for r in key_rows if r["score"] < 1.0],
    }

    # Unpitched material: no key.
    unpitched = {
        "drum loops": [(n, s) for n, s, _, _ in loops],
        "drum/noise one-shots": [(n, s) for n, s in one_shots(RATE) if n in UNPITCHED_ONE_SHOTS],
        "speech-like": [(f"speech_{seconds:g}s_seed{seed}", speech_like(seconds, RATE, seed=seed))
                        for seconds, seed in ((3.0, 4), (3.0, 5), (6.0, 6), (1.5, 7), (10.0, 8))],
    }
    un_out, flags = {}, []
    for set_name, items in unpitched.items():
        keyed = []
        for name, samples in items:
            d = _analyse(samples).description
            flags.append(d.key is None)
            if d.key is not None:
                keyed.append({"name": name, "got": d.key, "confidence": d.key_confidence})
        un_out[set_name] = {"no_key": f"{len(items) - len(keyed)}/{len(items)}",
                            "share": _share([True] * (len(items) - len(keyed)) + [False] * len(keyed)),
                            "keyed": keyed}
    un_out["overall"] = {"share": _share(flags), "no_key": f"{sum(flags)}/{len(flags)}"}
    out["unpitched"] = un_out

    # Names: a path naming the tempo, and one naming half of it.
    name_rows = []
    for pattern in PATTERNS:
        for bpm in (90, 140, 174):
            samples = render_loop(pattern, bpm, 2, RATE, seed=list(PATTERNS).index(pattern) * 1000 + bpm + 7)
            for named, path in (
                (bpm, f"Loops/{bpm} BPM/Break_{bpm}bpm.wav"),
                (bpm / 2, f"Loops/Break_{bpm / 2:g}bpm.wav"),
            ):
                result = _analyse(samples, name=path)
                d, got = result.description, _tempo(result)
                heard = _tempo(_analyse(samples))
                ok = d.tempo_source == "name" and got is not None and abs(got / named - 1.0) <= 1e-6
                name_rows.append({"pattern": pattern, "path": path, "true_bpm": bpm, "named": named, "heard": heard,
                                  "got": got, "bars": d.bars,
                                  "source": d.tempo_source, "kind": d.kind, "name_wins": ok})
    out["names"] = {
        "tempo_named": _share(r["name_wins"] for r in name_rows if r["named"] == r["true_bpm"]),
        "half_tempo_named": _share(r["name_wins"] for r in name_rows if r["named"] != r["true_bpm"]),
        "rows": name_rows,
    }
    return out


# --- cost ------------------------------------------------------------------------------------------


def _fit(sound: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """``sound`` cut (5 ms fade) or padded with silence to ``seconds``."""
    n = max(32, int(round(seconds * rate)))
    out = np.zeros(n, dtype=np.float32)
    take = min(n, len(sound))
    out[:take] = sound[:take]
    if len(sound) > n:
        fade = min(take, int(0.005 * rate))
        out[take - fade : take] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def _stereo(mono: np.ndarray, rng) -> np.ndarray:
    """Two channels, the right panned down a little. No inter-channel delay: the downmix of a
    delayed copy comb-filters the kick (200 samples at 44.1 kHz notch 110 Hz), which real
    mixes, with the kick and bass centred, do not."""
    right = mono * np.float32(rng.uniform(0.7, 1.0))
    return np.stack([mono, right], axis=1)


def _format(rng, allow_ogg: bool = True) -> tuple[str, dict]:
    roll = rng.random()
    if roll < 0.55:
        return "wav", {}
    if roll < 0.70:
        return "wav", {"subtype": "PCM_24"}
    if roll < 0.80:
        return "flac", {}
    if roll < 0.90 and allow_ogg:
        return "ogg", {}
    return "mp3", {}


def build_library(root: Path, n_files: int, quick: bool, seed: int) -> list[dict]:
    """Write the cost set under ``root``: list of {path, cls, seconds, ext, channels, truth_bpm}."""
    rng = np.random.default_rng(seed)
    n_long = max(1, round(0.1 * n_files))
    n_loops = max(1, round(0.3 * n_files))
    n_shots = n_files - n_long - n_loops
    shots = one_shots(FILE_RATE)
    tonal = tonal_loops(FILE_RATE)
    files = []

    def write(cls, index, signal, source, truth_bpm=None, allow_ogg=True):
        ext, kwargs = _format(rng, allow_ogg)
        folder = {"one-shot": "One Shots", "loop": "Loops", "long": "Recordings"}[cls]
        path = root / folder / f"{cls}_{index:03d}.{ext}"
        write_audio(path, signal, FILE_RATE, **kwargs)
        files.append({"path": path, "cls": cls, "source": source, "seconds": len(signal) / FILE_RATE, "ext": ext,
                      "channels": 1 if signal.ndim == 1 else 2, "truth_bpm": truth_bpm})

    for i in range(n_shots):
        name, sound = shots[int(rng.integers(len(shots)))]
        seconds = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        signal = _fit(np.asarray(sound, dtype=np.float32), seconds, FILE_RATE)
        write("one-shot", i, _stereo(signal, rng) if rng.random() < 0.4 else signal, name)
    for i in range(n_loops):
        if rng.random() < 0.7:
            while True:
                pattern = list(PATTERNS)[int(rng.integers(len(PATTERNS)))]
                bpm = float(DRUM_TEMPOS[int(rng.integers(len(DRUM_TEMPOS)))])
                bars = int(rng.choice((1, 2, 4, 8)))
                if 2.0 <= bars * 240.0 / bpm <= 16.0:
                    break
            signal = render_loop(pattern, bpm, bars, FILE_RATE, seed=int(rng.integers(1 << 30)))
            source = f"{pattern}_{bpm:g}bpm_{bars}bar"
        else:
            source, signal, bpm, bars = tonal[int(rng.integers(len(tonal)))]
        write("loop", i, _stereo(signal, rng) if rng.random() < 0.7 else signal, source, truth_bpm=bpm)
    for i in range(n_long):
        seconds = float(rng.uniform(30.0, 60.0 if quick else 180.0))
        n = int(round(seconds * FILE_RATE))
        if rng.random() < 0.7:  # a song-like stem: a groove over a progression, both tiled
            bpm = float(rng.uniform(80.0, 170.0))
            source = f"groove {bpm:.1f} BPM over chords, {seconds:.0f} s"
            groove = render_loop(list(PATTERNS)[i % len(PATTERNS)], bpm, 8, FILE_RATE, seed=i)
            progression = list(PROGRESSIONS)[i % len(PROGRESSIONS)]
            chords = render_progression("A", progression, "piano" if i % 2 else "organ", seconds=12.0,
                                        rate=FILE_RATE)
            mix = 0.6 * np.resize(groove, n) + 0.4 * np.resize(chords, n)
        else:  # field-recording-like: slowly swelling noise with a drifting tone
            t = np.arange(n) / FILE_RATE
            noise = np.random.default_rng(i).standard_normal(n) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.07 * t))
            tone = np.sin(2 * np.pi * np.cumsum(300.0 + 50.0 * np.sin(2 * np.pi * 0.03 * t)) / FILE_RATE)
            mix = 0.2 * noise + 0.3 * tone
            source = f"noise and drifting tone, {seconds:.0f} s"
        signal = (mix / np.abs(mix).max() * 0.8).astype(np.float32)
        write("long", i, _stereo(signal, rng), source, allow_ogg=False)  # long Ogg writes can crash libsndfile
    return files


def _timed(fn, cpu: list[float] | None = None) -> tuple[float, object]:
    """Wall seconds of ``fn()`` and its result; appends the calling thread's CPU seconds to ``cpu``.

    The thread's, not the process's: OpenBLAS's helper threads spin for a while after each
    matrix product, and process CPU time would charge that to whatever runs next.
    """
    start, start_cpu = time.perf_counter(), time.thread_time()
    result = fn()
    wall = time.perf_counter() - start
    if cpu is not None:
        cpu.append(time.thread_time() - start_cpu)
    return wall, result


def cost(n_files: int, repeats: int, quick: bool, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_describe_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        files = build_library(root, n_files, quick, seed)
        build_s = time.perf_counter() - start

        # Warm-up: every codec once, and each analysis path once (numba, filter banks).
        start = time.perf_counter()
        seen = set()
        for f in files:
            if f["ext"] not in seen:
                seen.add(f["ext"])
                audio.decode(f["path"], max_duration_s=MAX_DURATION_S).at_rate(RATE)
        baseline_warm_up()
        warm_before_s = time.perf_counter() - start
        start = time.perf_counter()
        clicks = np.zeros(RATE * 3, dtype=np.float32)
        clicks[:: RATE // 2] = 1.0
        engine_analysis.analyse(samples=clicks, sample_rate=RATE, name="Loops/clicks_120bpm.wav")
        warm_after_s = time.perf_counter() - start

        rows = []
        for f in files:
            path = f["path"]
            display = str(path.relative_to(root))
            # Interleaved: each round decodes, then runs before and after (alternating which goes
            # first) and the pieces, so a burst of load from elsewhere hits both paths alike.
            runs: dict[str, list[float]] = {"decode": [], "before": [], "after": []}
            cpu: dict[str, list[float]] = {"decode": [], "before": [], "after": []}
            piece_runs = []
            for round_ in range(repeats):
                t, samples = _timed(lambda: audio.decode(path, max_duration_s=MAX_DURATION_S,
                                                         display_name=display).at_rate(RATE), cpu["decode"])
                runs["decode"].append(t)
                order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                for which in order:
                    if which == "before":
                        t, before = _timed(lambda: baseline_compute_features(samples=samples, sample_rate=RATE),
                                           cpu["before"])
                    else:
                        t, after = _timed(lambda: engine_analysis.analyse(samples=samples, sample_rate=RATE,
                                                                          name=display), cpu["after"])
                    runs[which].append(t)
                mirrored, pieces, _ = analyse_in_pieces(samples=samples, sample_rate=RATE, name=display)
                piece_runs.append(pieces)
            decode_s, before_s, after_s = (statistics.median(runs[k]) for k in ("decode", "before", "after"))
            minimum = {k: min(v) * 1000 for k, v in runs.items()}
            cpu_ms = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
            if not _mirrors(mirrored, after):
                raise SystemExit(f"analyse_in_pieces no longer mirrors engine.analysis.analyse ({display}): "
                                 f"{mirrored} != {after}")
            d = after.description
            rows.append({
                **{k: v for k, v in f.items() if k != "path"}, "name": display,
                "decode_ms": decode_s * 1000, "before_ms": before_s * 1000, "after_ms": after_s * 1000,
                "min_ms": minimum, "cpu_ms": cpu_ms,
                "pieces_ms": {k: statistics.median(run[k] for run in piece_runs) * 1000 for k in piece_runs[0]},
                "before_tempo": before.tempo_bpm, "after_tempo": _tempo(after), "after_tempo_source": d.tempo_source,
                "after_kind": d.kind, "after_key": d.key,
            })

    classes = {"one-shot": [r for r in rows if r["cls"] == "one-shot"],
               "loop": [r for r in rows if r["cls"] == "loop"],
               "long": [r for r in rows if r["cls"] == "long"], "all": rows}
    summary = {}
    for cls, rs in classes.items():
        if not rs:
            continue
        col = {k: [r[k] for r in rs] for k in ("decode_ms", "before_ms", "after_ms", "seconds")}
        base_total = sum(col["decode_ms"]) + sum(col["before_ms"])
        added = sum(col["after_ms"]) - sum(col["before_ms"])
        per_file = [(r["after_ms"] - r["before_ms"]) / (r["decode_ms"] + r["before_ms"]) for r in rs]
        pieces = list(rs[0]["pieces_ms"])
        summary[cls] = {
            "files": len(rs),
            "audio_s_median": statistics.median(col["seconds"]),
            **{f"{k[:-3]}_{stat}_ms": round(fn(col[k]), 2)
               for k in ("decode_ms", "before_ms", "after_ms")
               for stat, fn in (("median", statistics.median), ("mean", statistics.fmean))},
            "added_pct_of_totals": round(100.0 * added / base_total, 1),
            "added_pct_median_per_file": round(100.0 * statistics.median(per_file), 1),
            # The same share from each file's fastest run of each path: less swayed by other load.
            "added_pct_of_totals_from_minimums": round(100.0 * (
                sum(r["min_ms"]["after"] - r["min_ms"]["before"] for r in rs)
                / sum(r["min_ms"]["decode"] + r["min_ms"]["before"] for r in rs)), 1),
            "min_totals_ms": {k: round(sum(r["min_ms"][k] for r in rs), 1) for k in ("decode", "before", "after")},
            # And from the calling thread's CPU time (median of the rounds): what other processes' load
            # sways least (BLAS helper threads' share of the matrix products is not counted).
            "added_pct_of_totals_cpu": round(100.0 * (
                sum(r["cpu_ms"]["after"] - r["cpu_ms"]["before"] for r in rs)
                / sum(r["cpu_ms"]["decode"] + r["cpu_ms"]["before"] for r in rs)), 1),
            "cpu_mean_ms": {k: round(statistics.fmean(r["cpu_ms"][k] for r in rs), 2)
                            for k in ("decode", "before", "after")},
            "pieces_mean_ms": {p: round(statistics.fmean(r["pieces_ms"][p] for r in rs), 3) for p in pieces},
        }
        summary[cls]["pieces_mean_ms"]["sum of pieces"] = round(sum(summary[cls]["pieces_mean_ms"].values()), 3)
        # The baseline's framing is the same code as analyse's without the key callback, so what
        # the baseline spends beyond it is its tempo (log-mel onset strength + beat tracker).
        summary[cls]["pieces_mean_ms"]["before: all but framing"] = round(
            statistics.fmean(r["before_ms"] - r["pieces_ms"]["framing"] for r in rs), 3)
    loops = [r for r in rows if r["cls"] == "loop"]
    tempo_check = {
        "loops": len(loops),
        "before_within_2pct": _share(_within(r["before_tempo"], r["truth_bpm"]) for r in loops),
        "after_within_2pct": _share(_within(r["after_tempo"], r["truth_bpm"]) for r in loops),
        "after_source_name": _share(r["after_tempo_source"] == "name" for r in loops),
        "kinds_by_class": {cls: dict(Counter(r["after_kind"] for r in rs))
                           for cls, rs in classes.items() if cls != "all"},
        "after_misses": [{"name": r["name"], "source": r["source"], "truth": r["truth_bpm"],
                          "file_s": round(r["seconds"], 4),
                          "after": r["after_tempo"], "before": r["before_tempo"], "kind": r["after_kind"]}
                         for r in loops if not _within(r["after_tempo"], r["truth_bpm"])],
    }
    formats = dict(Counter(f"{r['ext']}" for r in rows))
    return {"build_s": round(build_s, 1), "warm_up_before_s": round(warm_before_s, 2),
            "warm_up_after_s": round(warm_after_s, 2), "repeats": repeats, "formats": formats,
            "summary": summary, "on_the_cost_set": tempo_check,
            "slowest_added": sorted(({"name": r["name"], "seconds": round(r["seconds"], 2),
                                      "before_ms": round(r["before_ms"], 1), "after_ms": round(r["after_ms"], 1)}
                                     for r in rows), key=lambda r: r["before_ms"] - r["after_ms"])[:5]}


# --- output ----------------------------------------------------------------------------------------


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def print_accuracy(acc: dict) -> None:
    print(f"\n## Accuracy (engine.analysis.analyse, name=None, {RATE} Hz)\n")
    print("| tempo: set | loops | within 2 % after | before (v2 beat tracker) | within 2 % or half/double after "
          "| before | right bar count when right |")
    print("|---|---|---|---|---|---|---|")
    for set_name, t in acc["tempo"].items():
        print(f"| {set_name} | {t['loops']} | {_pct(t['within_2pct'])} | {_pct(t['before_within_2pct'])} "
              f"| {_pct(t['within_2pct_or_octave'])} | {_pct(t['before_within_2pct_or_octave'])} "
              f"| {_pct(t['right_bar_count_when_right'])} |")
    for set_name, t in acc["tempo"].items():
        print(f"\nTempo misses (strict 2 %), {set_name}, by pattern / tempo / bars:")
        for field, counts in t["misses_by"].items():
            print(f"  {field}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for m in t["misses"]:
            print(f"  miss: {m['name']}: got {m['got']} ({m['got_bars']} bars, kind {m['kind']}); "
                  f"before {m['before']}")
        if t["octave_misses"]:
            print(f"  not even within an octave: {', '.join(t['octave_misses'])}")

    print("\n| kind: set | expected | right | share |")
    print("|---|---|---|---|")
    for set_name, k in acc["kind"].items():
        if set_name == "overall":
            continue
        print(f"| {set_name} | {k['expected']} | {k['right']} | {_pct(k['share'])} |")
    o = acc["kind"]["overall"]
    print(f"| overall | | {o['right']} | {_pct(o['share'])} |")
    for set_name, k in acc["kind"].items():
        for w in k.get("wrong", []):
            print(f"  wrong: {set_name} {w['name']} ({w['seconds']} s) -> {w['got']}: {'; '.join(w['reasons'])}")

    k = acc["key"]
    print(f"\nKey over {k['progressions']} chord progressions: mean MIREX {k['mean_mirex']:.3f}, "
          f"exact {_pct(k['exact'])}, no key {_pct(k['no_key'])}")
    for field, groups in k["mean_mirex_by"].items():
        print(f"  MIREX by {field}: " + ", ".join(f"{g} {s:.3f}" for g, s in groups.items()))
    for m in k["misses"]:
        print(f"  miss: {m['name']} -> {m['got']} (confidence {m['confidence']}, score {m['score']})")

    print("\n| unpitched set | no key | share |")
    print("|---|---|---|")
    for set_name, u in acc["unpitched"].items():
        print(f"| {set_name} | {u['no_key']} | {_pct(u['share'])} |")
    for set_name, u in acc["unpitched"].items():
        for w in u.get("keyed", []):
            print(f"  keyed: {set_name} {w['name']} -> {w['got']} (confidence {w['confidence']})")

    n = acc["names"]
    print(f"\nNames: path names the true tempo: name wins {_pct(n['tempo_named'])}; "
          f"names half the tempo: name wins {_pct(n['half_tempo_named'])}")
    print("| pattern (2 bars) | path | true | heard (no name) | got | bars | source | kind |")
    print("|---|---|---|---|---|---|---|---|")
    for r in n["rows"]:
        heard = "-" if r["heard"] is None else f"{r['heard']:.2f}"
        got = "-" if r["got"] is None else f"{r['got']:g}"
        print(f"| {r['pattern']} | {r['path']} | {r['true_bpm']} | {heard} | {got} | {r['bars']} "
              f"| {r['source']} | {r['kind']} |")


def print_cost(c: dict) -> None:
    print(f"\n## Cost per file (wall ms, median of {c['repeats']} interleaved runs each; "
          f"library built in {c['build_s']} s; "
          f"formats {c['formats']})\n")
    print(f"Warm-up: codecs + baseline {c['warm_up_before_s']} s, analyse {c['warm_up_after_s']} s "
          "(once per process)\n")
    print("| class | files | median audio s | decode med / mean | features before med / mean "
          "| analyse after med / mean | added, % of decode+before (totals) | added, median per file |")
    print("|---|---|---|---|---|---|---|---|")
    for cls, s in c["summary"].items():
        print(f"| {cls} | {s['files']} | {s['audio_s_median']:.2f} "
              f"| {s['decode_median_ms']:.1f} / {s['decode_mean_ms']:.1f} "
              f"| {s['before_median_ms']:.1f} / {s['before_mean_ms']:.1f} "
              f"| {s['after_median_ms']:.1f} / {s['after_mean_ms']:.1f} "
              f"| {s['added_pct_of_totals']:+.1f} % | {s['added_pct_median_per_file']:+.1f} % |")
    print("\nLess swayed by other load: added, % of decode+before (totals), from each file's fastest wall-clock "
          "run: " + ", ".join(f"{cls} {s['added_pct_of_totals_from_minimums']:+.1f} %"
                              for cls, s in c["summary"].items()))
    print("  from the main thread's CPU time (median of the rounds; BLAS helper threads not counted): " + ", ".join(
        f"{cls} {s['added_pct_of_totals_cpu']:+.1f} % (CPU ms mean: decode {s['cpu_mean_ms']['decode']:.1f}, "
        f"before {s['cpu_mean_ms']['before']:.1f}, after {s['cpu_mean_ms']['after']:.1f})"
        for cls, s in c["summary"].items()))
    pieces = list(next(iter(c["summary"].values()))["pieces_mean_ms"])
    print("\nWhere analyse's time goes (mean ms per file):\n")
    print("| class | " + " | ".join(pieces) + " |")
    print("|---|" + "---|" * len(pieces))
    for cls, s in c["summary"].items():
        print(f"| {cls} | " + " | ".join(f"{s['pieces_mean_ms'][p]:.2f}" for p in pieces) + " |")
    t = c["on_the_cost_set"]
    print(f"\nOn the cost set's {t['loops']} loops: tempo within 2 % before {_pct(t['before_within_2pct'])}, "
          f"after {_pct(t['after_within_2pct'])} (tempo from the name: {_pct(t['after_source_name'])}); "
          f"kinds by class: {t['kinds_by_class']}")
    for m in t["after_misses"]:
        print(f"  loop miss: {m['name']} = {m['source']} ({m['file_s']} s in the file): "
              f"true {m['truth']}, after {m['after']}, "
              f"before {m['before']}, kind {m['kind']}")
    print("Most added per file: " + "; ".join(f"{r['name']} ({r['seconds']} s) {r['before_ms']} -> {r['after_ms']} ms"
                                                 for r in c["slowest_added"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--parts", default="accuracy,cost")
    parser.add_argument("--files", type=int, help="files in the cost set (default 100, 20 with --quick)")
    parser.add_argument("--repeats", type=int, help="timed runs per file and path (default 5, 2 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the full results as JSON here")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    n_files = args.files or (20 if args.quick else 100)
    repeats = args.repeats or (2 if args.quick else 5)

    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(), "threads": threading.active_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "quick": args.quick, "baseline": f"e516508 engine/features.py, FEATURE_VERSION {BASELINE_FEATURE_VERSION}",
        "soundfile": f"libsndfile {sf.__libsndfile_version__}", "librosa": librosa.__version__,
    }
    start = time.perf_counter()
    print(f"machine {results['machine']}, {results['cpus']} CPUs, load average before "
          f"{results['load_before']}, {'quick' if args.quick else 'full'} run")
    if "accuracy" in parts:
        baseline_warm_up()
        engine_analysis.analyse(samples=np.zeros(RATE, dtype=np.float32), sample_rate=RATE)
        results["accuracy"] = accuracy(args.quick)
        print_accuracy(results["accuracy"])
    if "cost" in parts:
        results["cost"] = cost(n_files, repeats, args.quick, args.seed)
        print_cost(results["cost"])
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["total_s"] = round(time.perf_counter() - start, 1)
    print(f"\nload average after {results['load_after']}; total {results['total_s']} s")
    if args.out:
        args.out.write_text(json.dumps(
            results, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))


if __name__ == "__main__":
    main()
