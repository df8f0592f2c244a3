"""A small overview of a track's waveform, for drawing: the lowest and highest sample per column.

An import computes it from the decode it makes anyway (``engine.stages.decode``): one pass of
``minimum.reduceat``/``maximum.reduceat`` over samples already in memory, a few milliseconds for a
minute of audio (``bench/bench_waveform.py``). The import pipeline holds the file downmixed to mono at
its own rate (``engine.audio.DecodedAudio``), so that is what an import's overview shows: a sound
panned hard to one side is drawn at half height, as it is heard in mono. ``peaks`` itself also takes
(frames, channels) for callers that have the channels.

Pure numpy: nothing here imports the store, Streamlit or plotly (the figure is ``ui_waveform.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import InputError

# Columns per track. 400 is enough for a result row (a few hundred pixels wide) and the
# detail view, and costs 800 bytes a track stored.
WAVEFORM_COLUMNS = 400
# Bump when the columns, scaling or what the samples are change: an older stored overview is
# then computed again from the file when next asked for (``Library.waveform``).
WAVEFORM_VERSION = 1
# int8 level of full scale (1.0). Symmetric, so -128 is never used and a clipped square wave
# reads -127/127.
FULL_SCALE = 127


@dataclass(frozen=True)
class Waveform:
    """One track's overview: ``peaks`` spread evenly over the first ``duration`` seconds."""

    duration: float  # seconds the columns span (the analysed part of a truncated file)
    peaks: np.ndarray  # int8 (columns, 2): min and max per column, FULL_SCALE = 1.0

    @property
    def columns(self) -> int:
        return len(self.peaks)


def peaks(samples: np.ndarray, *, sample_rate: int, columns: int = WAVEFORM_COLUMNS) -> np.ndarray:
    """The minimum and maximum sample of each of ``columns`` equal slices of ``samples``.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
        Audio in [-1, 1] (values beyond are clipped to full scale). With channels, each column's
        minimum and maximum are over all channels. NaN samples are ignored; a column of only NaN
        reads 0.
    sample_rate : int > 0
        Rate of ``samples`` in Hz. The columns divide the samples evenly whatever the rate;
        it is taken so that a caller states what the samples are (and is checked).
    columns : int > 0
        How many columns to return at most.

    Returns
    -------
    peaks : np.ndarray [shape=(min(columns, n), 2)], int8
        ``peaks[:, 0]`` the minimum and ``peaks[:, 1]`` the maximum of each column, scaled so
        FULL_SCALE (127) is 1.0 and rounded to the nearest level. Column ``i`` holds samples
        ``i * n // columns`` up to ``(i + 1) * n // columns``: widths differ by at most one sample.
        With fewer samples than columns (a 2 ms click is 88 samples at 44.1 kHz) each column is
        one sample, so there are ``n`` columns; with no samples, none (shape (0, 2)).
    """
    if sample_rate <= 0:
        raise InputError(f"a sample rate of {sample_rate} Hz is not a rate.", title="Invalid waveform input")
    if columns < 1:
        raise InputError(f"a waveform needs at least one column, not {columns}.", title="Invalid waveform input")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2):
        raise InputError(f"samples of shape {samples.shape} are neither (n,) nor (n, channels).",
                         title="Invalid waveform input")
    n = samples.shape[0]
    count = min(columns, n)
    if count == 0:
        return np.zeros((0, 2), dtype=np.int8)
    # Every start is distinct because count <= n, so no slice is empty (reduceat would then
    # return the next sample instead of an empty reduction).
    starts = np.arange(count, dtype=np.int64) * n // count
    # Frames of (n, channels) lie one after another in C order, so frames [a, b) are the flat
    # range [a * channels, b * channels): one contiguous pass covers every channel (reducing
    # along axis 0 of the 2-D array strides and is several times slower).
    channels = samples.shape[1] if samples.ndim == 2 else 1
    flat = np.ascontiguousarray(samples).reshape(-1)
    # fmin/fmax skip NaN where a column has any number; a column of only NaN stays NaN, read as 0 below.
    low = np.fmin.reduceat(flat, starts * channels)
    high = np.fmax.reduceat(flat, starts * channels)
    pairs = np.nan_to_num(np.stack([low, high], axis=1), nan=0.0)
    return np.rint(np.clip(pairs, -1.0, 1.0) * FULL_SCALE).astype(np.int8)


def overview(samples: np.ndarray, *, sample_rate: int, columns: int = WAVEFORM_COLUMNS) -> Waveform:
    """``peaks`` of ``samples`` with the seconds they span (len(samples) / sample_rate)."""
    return Waveform(duration=len(samples) / sample_rate, peaks=peaks(samples, sample_rate=sample_rate,
                                                                       columns=columns))


def to_bytes(peaks: np.ndarray) -> bytes:
    """The stored form of ``peaks`` (columns, 2): int8 pairs (min, max), column after column."""
    return np.ascontiguousarray(peaks, dtype=np.int8).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    """``peaks`` (columns, 2) int8 back from :func:`to_bytes`; a copy, so the caller may write to it."""
    if len(data) % 2:
        raise InputError(f"{len(data)} bytes are not whole (min, max) pairs.", title="Invalid waveform data")
    return np.frombuffer(data, dtype=np.int8).reshape(-1, 2).copy()
