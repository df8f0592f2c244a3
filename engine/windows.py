"""Cut a 48 kHz mono track into the 10-second windows CLAP embeds.

CLAP (HTSAT) sees exactly 10 s of 48 kHz audio. Feeding it anything else makes
the feature extractor crop or pad at random (``rand_trunc`` picks a random 10 s
crop, ``fusion`` marks a random clip as "longer"), so the same file would embed
differently from run to run. This module therefore hands the model only windows
of exactly 480,000 samples, cut by a fixed rule; no randomness anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLAP_SAMPLE_RATE = 48_000
WINDOW_SECONDS = 10
WINDOW_SAMPLES = CLAP_SAMPLE_RATE * WINDOW_SECONDS  # 480,000
# A trailing remainder shorter than this is not worth a window of its own.
MIN_TAIL_SAMPLES = CLAP_SAMPLE_RATE  # 1 s


@dataclass(frozen=True)
class Windows:
    """Windows of one track: ``audio`` is float32 (n, 480000); ``starts_s`` and
    ``ends_s`` give each window's span in seconds of the original track (the
    end of a tiled short clip is its true duration, not 10 s)."""

    audio: np.ndarray
    starts_s: list[float] = field(default_factory=list)
    ends_s: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.audio.shape[0])


def make_windows(samples_48k: np.ndarray) -> Windows:
    """Split mono 48 kHz audio into deterministic 10 s windows.

    Rules:

    * shorter than 10 s: the clip is tiled (repeated end to end, the last
      repetition cut short) to exactly 480,000 samples, so the window holds no
      silence; one window, start 0, end = the clip's true duration;
    * exactly 10 s: one window, 0 to 10;
    * longer: non-overlapping windows from 0 (0-10, 10-20, ...). A remaining
      tail of at least 1 s becomes one more window holding the *last* 10 s of
      the track (start = duration - 10, end = duration), overlapping the
      previous window, so the end of the track is searchable without padding.
      A tail shorter than 1 s is dropped: it sits right after the previous
      window, which already represents that neighbourhood, and a window that
      is 90 % a repeat of its neighbour adds cost and near-duplicate hits.

    Raises ValueError for empty or non-1-D input.
    """
    x = np.asarray(samples_48k)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("cannot window empty audio")
    x = x.astype(np.float32, copy=False)
    duration = n / CLAP_SAMPLE_RATE

    if n <= WINDOW_SAMPLES:
        reps = -(-WINDOW_SAMPLES // n)  # ceil
        tiled = np.tile(x, reps)[:WINDOW_SAMPLES]
        return Windows(audio=tiled[None, :].copy(), starts_s=[0.0], ends_s=[duration])

    full = n // WINDOW_SAMPLES
    starts = [i * WINDOW_SAMPLES for i in range(full)]
    tail = n - full * WINDOW_SAMPLES
    if tail >= MIN_TAIL_SAMPLES:
        starts.append(n - WINDOW_SAMPLES)  # end-aligned last window

    audio = np.stack([x[s : s + WINDOW_SAMPLES] for s in starts]).astype(np.float32, copy=False)
    starts_s = [s / CLAP_SAMPLE_RATE for s in starts]
    ends_s = [(s + WINDOW_SAMPLES) / CLAP_SAMPLE_RATE for s in starts]
    return Windows(audio=audio, starts_s=starts_s, ends_s=ends_s)
