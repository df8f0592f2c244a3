"""Framing shared by every descriptor: frames of N_FFT samples every HOP, centred.

``frame_descriptors`` works through a signal in blocks of frames, so a
10-minute file never holds a full-length spectrogram (about 320 MB at
22,050 Hz) in memory; the blocks are frame-aligned, so the result is the
same as one big STFT. The features (``engine.features``) and the
descriptions (``engine.describe``) are all computed from its output.
"""

from __future__ import annotations

from typing import Callable

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


def frame_descriptors(
    *, samples: np.ndarray, sample_rate: int, on_magnitude: Callable[[np.ndarray, int], None] | None = None
) -> dict[str, np.ndarray]:
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
        if on_magnitude is not None:
            on_magnitude(magnitude, first)
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
