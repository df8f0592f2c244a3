"""Audio descriptors: pure functions, numpy in, plain floats out.

All functions take keyword-only arguments. ``compute_features`` frames the
signal once and shares one STFT between the spectral descriptors and the
onset envelope used for tempo. It works through the signal in blocks of
frames, so a 10-minute file never holds a full-length spectrogram (about
320 MB at 22,050 Hz) in memory; the blocks are frame-aligned, so the result
is the same as one big STFT.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import librosa
import numpy as np

N_FFT = 2048
HOP = 512
BLOCK_FRAMES = 512  # about 12 s at 22,050 Hz per block
# Frames quieter than this (linear RMS, full scale 1.0; about -70 dBFS) carry
# no tone; they are left out of the spectral means so a one-shot's silent
# tail does not drag its centroid towards zero.
SILENCE_RMS = 3e-4
# Below this normalised autocorrelation peak the onset envelope has no
# repeating pulse (white noise and sustained tones score near 0.1; click
# tracks and drum loops above 0.5).
MIN_PULSE_CLARITY = 0.3
MIN_BEATS = 4
# 2: RMS and zero-crossing rate are measured over the samples each frame
# really holds, not its zero padding (a 32-sample click read 18 dB too quiet).
FEATURE_VERSION = 2


@dataclass(frozen=True)
class Features:
    duration_s: float  # seconds analysed
    tempo_bpm: float | None  # beats per minute; None without a steady pulse (a one-shot, noise)
    spectral_centroid_hz: float  # Hz, mean over frames with signal
    zero_crossing_rate: float  # fraction of sign changes per frame, 0 to 1
    rms_energy: float  # linear RMS amplitude, full scale 1.0, mean over frames

    def to_dict(self) -> dict:
        return asdict(self)


def compute_features(*, samples: np.ndarray, sample_rate: int) -> Features:
    """All descriptors of a mono float32 signal ``samples`` (shape (n,)) at ``sample_rate`` Hz.

    Defined for any non-empty signal, including one far shorter than an
    analysis frame (a 32-sample click is one frame, measured over its 32
    samples); the tempo of a signal too short to hold MIN_BEATS beats is None.
    """
    frames = frame_descriptors(samples=samples, sample_rate=sample_rate)
    voiced = frames["rms"] > SILENCE_RMS
    centroid = frames["centroid"][voiced]
    onset_envelope = librosa.onset.onset_strength(
        S=librosa.power_to_db(frames["mel_power"], ref=np.max), sr=sample_rate
    )
    return Features(
        duration_s=len(samples) / sample_rate,
        tempo_bpm=estimate_tempo(onset_envelope=onset_envelope, sample_rate=sample_rate, hop_length=HOP)
        if voiced.any()
        else None,
        spectral_centroid_hz=float(centroid.mean()) if centroid.size else 0.0,
        zero_crossing_rate=float(frames["zcr"].mean()),
        rms_energy=float(frames["rms"].mean()),
    )


def frame_descriptors(*, samples: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Per-frame descriptors of ``samples``, frames of 2048 samples every 512, centred.

    Returns ``rms`` (frames,), ``zcr`` (frames,), ``centroid`` (frames,) in Hz
    and ``mel_power`` (128, frames), the mel power spectrogram for onsets.
    The spectra see each frame zero-padded past the signal's ends, as
    librosa's centred frames do; RMS and zero-crossing rate count only the
    samples a frame really holds (``support``, (frames,)), so the ends of a
    track and a clip shorter than a frame are not diluted by the padding.
    """
    samples = np.asarray(samples, dtype=np.float32)
    n = len(samples)
    n_frames = 1 + n // HOP
    mel_basis = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=N_FFT)
    parts: dict[str, list[np.ndarray]] = {"rms": [], "zcr": [], "centroid": [], "mel_power": [], "support": []}
    for first in range(0, n_frames, BLOCK_FRAMES):
        last = min(first + BLOCK_FRAMES, n_frames)
        offset = first * HOP - N_FFT // 2  # where the block starts in the signal (negative: padding)
        block = _padded_slice(samples, offset, (last - 1) * HOP + N_FFT // 2)
        starts = np.arange(last - first) * HOP
        # Each frame's real samples, block-relative: [lo, hi).
        lo = np.clip(starts, -offset, None)
        hi = np.clip(starts + N_FFT, None, n - offset)
        support = np.maximum(hi - lo, 0)
        # RMS and zero crossings per frame from running sums: O(samples), no (2048, frames) temporaries.
        # Padding adds no energy, so the frame's sum of squares is over its real samples already.
        energy = np.concatenate([[0.0], np.cumsum(np.square(block, dtype=np.float64))])
        power = np.maximum(energy[starts + N_FFT] - energy[starts], 0.0)
        parts["rms"].append(np.sqrt(np.divide(power, support, out=np.zeros_like(power), where=support > 0)))
        signs = np.signbit(block)
        changes = np.concatenate([[0], np.cumsum(signs[1:] != signs[:-1])])
        # Sign changes between adjacent real samples only: a negative sample next to the padding is no crossing.
        pairs = np.maximum(support - 1, 0)
        crossings = (changes[np.maximum(hi - 1, lo)] - changes[lo]).astype(np.float64)
        parts["zcr"].append(np.divide(crossings, pairs, out=np.zeros_like(crossings), where=pairs > 0))
        parts["support"].append(support)
        magnitude = np.abs(librosa.stft(block, n_fft=N_FFT, hop_length=HOP, center=False))
        total = magnitude.sum(axis=0)
        parts["centroid"].append(np.divide(freqs @ magnitude, total, out=np.zeros_like(total), where=total > 0))
        parts["mel_power"].append(mel_basis @ (magnitude * magnitude))
    return {key: np.concatenate(value, axis=-1) for key, value in parts.items()}


def _padded_slice(samples: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``samples[start:stop]`` with zeros where the range runs past either end.

    The same as slicing a zero-padded copy (librosa's centred frames), without
    making that copy of the whole signal.
    """
    if start >= 0 and stop <= len(samples):
        return samples[start:stop]
    out = np.zeros(stop - start, dtype=samples.dtype)
    lo, hi = max(start, 0), min(stop, len(samples))
    if hi > lo:
        out[lo - start : hi - start] = samples[lo:hi]
    return out


def spectral_centroid(*, samples: np.ndarray, sample_rate: int) -> float:
    """Mean spectral centroid in Hz over frames with signal; 0.0 for silence."""
    frames = frame_descriptors(samples=samples, sample_rate=sample_rate)
    centroid = frames["centroid"][frames["rms"] > SILENCE_RMS]
    return float(centroid.mean()) if centroid.size else 0.0


def zero_crossing_rate(*, samples: np.ndarray, sample_rate: int = 22_050) -> float:
    """Mean fraction of adjacent sample pairs that change sign, per 2048-sample frame (0 to 1)."""
    return float(frame_descriptors(samples=samples, sample_rate=sample_rate)["zcr"].mean())


def estimate_tempo(*, onset_envelope: np.ndarray, sample_rate: int, hop_length: int) -> float | None:
    """Tempo in BPM from an onset envelope (frames,), or None without a steady pulse.

    The beat period comes from the envelope's global autocorrelation weighted
    by librosa's tempo prior (log-normal around 120 BPM, one octave wide);
    ``beat_track`` then places beats with that period. We pass the period in
    rather than letting ``beat_track`` estimate it, because its tempogram
    costs about 400 MB on a 10-minute file. The reported tempo is the mean
    spacing of the tracked beats: ``beat_track``'s own figure is quantised
    to whole frames (an exact 120 BPM click reads 117.45 at hop 512).
    """
    lags, autocorr = _pulse_autocorrelation(onset_envelope, sample_rate, hop_length)
    if autocorr.size == 0 or autocorr.max() < MIN_PULSE_CLARITY:
        return None
    bpm_at_lag = 60.0 * sample_rate / (hop_length * lags)
    prior = np.exp(-0.5 * np.log2(bpm_at_lag / 120.0) ** 2)
    prior_bpm = float(bpm_at_lag[np.argmax(np.clip(autocorr, 0, None) * prior)])
    _, beats = librosa.beat.beat_track(
        onset_envelope=onset_envelope, sr=sample_rate, hop_length=hop_length, bpm=prior_bpm, units="time"
    )
    if len(beats) < MIN_BEATS:
        return None
    return float(60.0 * (len(beats) - 1) / (beats[-1] - beats[0]))


def pulse_clarity(*, onset_envelope: np.ndarray, sample_rate: int, hop_length: int) -> float:
    """Peak of the onset envelope's normalised autocorrelation between 40 and 240 BPM (0 to 1)."""
    _, autocorr = _pulse_autocorrelation(onset_envelope, sample_rate, hop_length)
    return float(autocorr.max()) if autocorr.size else 0.0


def _pulse_autocorrelation(envelope: np.ndarray, sample_rate: int, hop_length: int):
    """Lags (frames) for 40 to 240 BPM and the envelope's autocorrelation there, normalised by lag 0."""
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


_warm = threading.Lock()
_warmed = False


def warm_up() -> None:
    """Run every descriptor once on a short click track, once per process.

    librosa's beat tracker is compiled by numba on first use (about 6 s in a
    fresh environment, about 1 s from numba's disk cache later); doing it up
    front keeps that cost out of every file's timing and progress.
    """
    global _warmed
    with _warm:
        if _warmed:
            return
        _warm_up()
        _warmed = True


def _warm_up() -> None:
    rate = 22_050
    clicks = np.zeros(rate * 3, dtype=np.float32)
    clicks[:: rate // 2] = 1.0
    compute_features(samples=clicks, sample_rate=rate)
