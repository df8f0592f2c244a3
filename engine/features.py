"""Audio features: pure functions, numpy in, plain floats out.

All functions take keyword-only arguments. ``compute_features`` frames the
signal once (``engine.frames``) and shares one STFT between the spectral
descriptors and the tempo.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from engine.describe.tempo import estimate_loop_tempo
from engine.frames import HOP, MIN_BEATS, MIN_PULSE_CLARITY, N_FFT, SILENCE_RMS, frame_descriptors

__all__ = ["FEATURE_VERSION", "Features", "compute_features", "summarise", "spectral_centroid",
           "zero_crossing_rate", "warm_up", "HOP", "MIN_BEATS", "MIN_PULSE_CLARITY", "N_FFT", "SILENCE_RMS",
           "frame_descriptors"]

# 2: RMS and zero-crossing rate are measured over the samples each frame
# really holds, not its zero padding (a 32-sample click read 18 dB too quiet).
# 3: tempo from the bar-count estimator (engine.describe.tempo), None for one-shots.
FEATURE_VERSION = 3


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
    samples). The tempo is the audio's own (``estimate_loop_tempo``); the
    import pipeline (``engine.analysis``) also weighs what the sample is and
    what its name says.
    """
    frames = frame_descriptors(samples=samples, sample_rate=sample_rate)
    duration_s = len(samples) / sample_rate
    tempo = estimate_loop_tempo(samples=samples, sample_rate=sample_rate, duration_s=duration_s,
                                mel_power=frames["mel_power"])
    return summarise(frames=frames, duration_s=duration_s, tempo_bpm=tempo.bpm)


def summarise(*, frames: dict[str, np.ndarray], duration_s: float, tempo_bpm: float | None) -> Features:
    """Features from ``frame_descriptors``'s output and a tempo measured elsewhere."""
    voiced = frames["rms"] > SILENCE_RMS
    centroid = frames["centroid"][voiced]
    return Features(
        duration_s=duration_s,
        tempo_bpm=tempo_bpm if voiced.any() else None,
        spectral_centroid_hz=float(centroid.mean()) if centroid.size else 0.0,
        zero_crossing_rate=float(frames["zcr"].mean()),
        rms_energy=float(frames["rms"].mean()),
    )


def spectral_centroid(*, samples: np.ndarray, sample_rate: int) -> float:
    """Mean spectral centroid in Hz over frames with signal; 0.0 for silence."""
    frames = frame_descriptors(samples=samples, sample_rate=sample_rate)
    centroid = frames["centroid"][frames["rms"] > SILENCE_RMS]
    return float(centroid.mean()) if centroid.size else 0.0


def zero_crossing_rate(*, samples: np.ndarray, sample_rate: int = 22_050) -> float:
    """Mean fraction of adjacent sample pairs that change sign, per 2048-sample frame (0 to 1)."""
    return float(frame_descriptors(samples=samples, sample_rate=sample_rate)["zcr"].mean())


_warm = threading.Lock()
_warmed = False


def warm_up() -> None:
    """Run every descriptor once on a short click track, once per process.

    librosa builds its filter banks and, on some paths, numba kernels on
    first use; doing it up front keeps that cost out of every file's timing
    and progress.
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
