"""Tempo of a loop: the bar-count grid its duration allows, chosen by the audio.

Sample-library loops are cut to whole bars of 4/4, so a loop's duration
fixes its tempo up to the bar count: ``bars * 4 * 60 / duration_s``. Only a
few of those candidates fall in 60-200 BPM, and they are exact; the audio
only has to choose between them. The plain autocorrelation tempo (and its
half and double) stays in the running for material that is not cut to bars.

The audio votes with a sub-band onset envelope rather than librosa's
log-mel flux. Summed over 128 mel bands in dB, a quiet hi-hat that lights
up forty empty treble bands outweighs the kick, eighth-note hats make a
70 BPM groove look like 140, and a ghost note 9 dB down rises nearly as far
as the accent it decorates. Three broad bands (kick, snare body, air), each
counted once, in linear energy relative to the band's loudest frame, keep
the accents that carry the beat; the air band counts a quarter.

Each candidate is scored by how much onset strength a pulse train at its
beat period collects (best phase), relative to the envelope's mean. A
slower candidate that lands on every other beat collects as much as the
true tempo, or more when phased on the snares, so candidates get a
preference for the faster reading (``FASTER_BIAS``): a 140 BPM groove
is not reported at 70, and 170 BPM drum & bass not at 85.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from engine.frames import HOP, MIN_BEATS, MIN_PULSE_CLARITY, N_FFT

MIN_BPM = 60.0
MAX_BPM = 200.0
# Bar counts loops are cut to; 3, 6, 12 and 24 catch loops whose tempo a
# power-of-two count would put off by 3:2, and 48/64 the long stems.
BAR_COUNTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
BEATS_PER_BAR = 4
# Band edges in Hz of the sub-band onset envelope: kick, snare body, air.
BAND_EDGES_HZ = (0.0, 200.0, 2_500.0, None)
BAND_WEIGHTS = (1.0, 1.0, 0.25)
# An attack: a band's energy jumps this many dB in one frame, to within SHARP_RANGE_DB of its loudest.
SHARP_RISE_DB = 6.0
SHARP_RANGE_DB = 30.0
# Score exponent of tempo (see module docstring): 2 ** 0.55 = 1.46 per doubling,
# so the faster reading wins when it collects at least 68 % of the slower one's
# onset strength. Chosen on the rendered drum loops (tests/fixtures_music.py):
# 0.5-0.6 put 109-112 of 117 within 2 % on two sets of humanisation seeds,
# 0.45 and 0.65 only 98 and 105 (slow breaks doubled, fast ones halved).
FASTER_BIAS = 0.55
# An autocorrelation tempo within this fraction of a bar-count candidate is
# that candidate: the envelope's frames (23 ms) quantise the lag by up to 3 %.
SNAP_TOLERANCE = 0.03
# ... but only while the two differ by less than this many beats over the whole
# loop: a 20 s click track at 140 BPM is no 12-bar loop at 144 (1.3 beats adrift).
MAX_DRIFT_BEATS = 0.5
# A bar-count reading is kept unless a free tempo's score beats it by more than 1 / 0.85.
LOOP_PREFERENCE = 0.85


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float | None  # beats per minute; None without a steady pulse
    confidence: float  # 0 to 1
    bars: int | None  # whole 4/4 bars the duration holds at ``bpm``; None when it is not cut to bars


NO_TEMPO = TempoEstimate(bpm=None, confidence=0.0, bars=None)


def estimate_loop_tempo(
    *,
    samples: np.ndarray,
    sample_rate: int,
    duration_s: float,
    onset_envelope: np.ndarray | None = None,
    mel_power: np.ndarray | None = None,
    hop_length: int = HOP,
) -> TempoEstimate:
    """Tempo of ``samples`` (mono float32, shape (n,), ``sample_rate`` Hz) lasting ``duration_s`` seconds.

    ``mel_power`` (n_mels, frames), the mel power spectrogram with frames
    every ``hop_length`` samples (``engine.frames.frame_descriptors``
    returns it as ``"mel_power"``), saves computing one; pass it. Without it,
    ``onset_envelope`` (frames,), any onset-strength curve at that hop, is
    used as given, which skips the attack count and the sub-band weighting
    (a log-mel envelope halves and doubles more tempos). With neither, the
    mel spectrogram is computed here (one STFT, n_fft 2048).

    Returns ``TempoEstimate``: ``bpm`` in 60-200, ``bars`` when the duration
    holds a whole number of 4/4 bars at that tempo, or ``bpm=None`` when the
    onsets have no steady pulse (a one-shot, a sustained tone or pad, noise),
    there are fewer than MIN_BEATS attacks, or the signal is shorter than
    MIN_BEATS beats at 200 BPM (1.2 s).
    """
    frames_per_s = sample_rate / hop_length
    if duration_s * MAX_BPM / 60.0 < MIN_BEATS:
        return NO_TEMPO
    if mel_power is None and onset_envelope is None:
        samples = np.asarray(samples, dtype=np.float32)
        mel_power = librosa.feature.melspectrogram(y=samples, sr=sample_rate, n_fft=N_FFT, hop_length=hop_length)
    # The loop proper: frames of the first period only (the last centred frame
    # sits on the loop's end, which is its start again).
    period_frames = duration_s * frames_per_s
    if mel_power is not None:
        bands = band_energies(mel_power=mel_power, sample_rate=sample_rate)
        bands = bands[:, : max(1, min(bands.shape[1], int(round(period_frames))))]
        # Beating partials and vibrato swing a sustained pad's band energy periodically;
        # a pulse needs real attacks.
        if _sharp_onsets(bands) < MIN_BEATS:
            return NO_TEMPO
        envelope = _envelope(bands)
    else:
        envelope = np.asarray(onset_envelope, dtype=np.float64)
        envelope = envelope[: max(1, min(len(envelope), int(round(period_frames))))]
    if envelope.size < 4 or float(envelope.std()) <= 1e-9:
        return NO_TEMPO

    clarity, acf_bpm = _autocorrelation_tempo(envelope, frames_per_s)
    if clarity < MIN_PULSE_CLARITY:
        return NO_TEMPO
    # Each frame's strength, widened by a frame either side: onsets sit up to half a frame off the grid.
    widened = np.maximum(envelope, np.maximum(np.roll(envelope, 1), np.roll(envelope, -1)))
    baseline = float(widened.mean())

    # Bar-count candidates, each scored over exactly the loop with the pulse train wrapping round.
    grid: list[tuple[float, int | None, float]] = []  # (bpm, bars, biased score)
    for bars in BAR_COUNTS:
        bpm = bars * BEATS_PER_BAR * 60.0 / duration_s
        if MIN_BPM <= bpm <= MAX_BPM:
            beats = bars * BEATS_PER_BAR
            strength = _pulse_strength(widened, beat_frames=period_frames / beats, beats=beats, circular=True)
            grid.append((bpm, bars, _biased(strength / baseline, bpm)))
    # The autocorrelation reading and its octaves, each refined, for material not cut to bars.
    # When one of them already sits on the bar grid the grid speaks for them (and the
    # refinement, most of this function's cost, is skipped).
    octaves = [bpm for bpm in (acf_bpm, acf_bpm * 2.0, acf_bpm / 2.0) if MIN_BPM <= bpm <= MAX_BPM]
    on_grid = any(_same_tempo(bpm, g[0], duration_s) for bpm in octaves for g in grid)
    free: list[tuple[float, int | None, float]] = []
    for bpm in [] if on_grid else octaves:
        if MIN_BPM <= bpm <= MAX_BPM:
            bpm, strength = _refine(widened, frames_per_s, bpm)
            free.append((bpm, None, _biased(strength / baseline, bpm)))
    if not grid and not free:
        return NO_TEMPO
    best_grid = max(grid, key=lambda c: c[2], default=None)
    best_free = max(free, key=lambda c: c[2], default=None)
    # The bar grid wins unless a free tempo clearly collects more: its candidates are
    # exact, while the free ones had a 3 % search to find their best.
    if best_grid is not None and (best_free is None or best_grid[2] >= LOOP_PREFERENCE * best_free[2]):
        best_bpm, best_bars, _ = best_grid
    else:
        best_bpm, best_bars, _ = best_free
        # A free reading that matches a bar count is that bar count, exactly.
        close = [(abs(bpm / best_bpm - 1.0), bpm, bars) for bpm, bars, _ in grid
                 if _same_tempo(best_bpm, bpm, duration_s)]
        if close:
            _, best_bpm, best_bars = min(close)
    if best_bars is None and duration_s * best_bpm / 60.0 < MIN_BEATS:
        return NO_TEMPO
    confidence = min(1.0, clarity) * (1.0 if best_bars is not None else 0.75)
    return TempoEstimate(bpm=float(best_bpm), confidence=round(float(confidence), 3), bars=best_bars)


def band_energies(*, mel_power: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy per broad band (BAND_EDGES_HZ) and frame, (3, frames), from a mel power spectrogram (n_mels, frames)."""
    mel_power = np.asarray(mel_power, dtype=np.float64)
    n_mels = mel_power.shape[0]
    centres = librosa.mel_frequencies(n_mels=n_mels + 2, fmax=sample_rate / 2.0)[1:-1]
    rows = [
        (centres >= low) & (centres < (high if high is not None else np.inf))
        for low, high in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:])
    ]
    return np.stack([mel_power[r].sum(axis=0) for r in rows])


def _envelope(bands: np.ndarray) -> np.ndarray:
    """Onset strength (frames,) from band energies (3, frames): each band's rise as a fraction of
    its loudest frame, half-wave rectified, summed with BAND_WEIGHTS.

    The first frame's rise is measured from the last, as a loop's start follows its end,
    so a downbeat on sample 0 is not lost.
    """
    peaks = bands.max(axis=1, keepdims=True)
    level = np.divide(bands, peaks, out=np.zeros_like(bands), where=peaks > 0)
    rise = level - np.roll(level, 1, axis=1)
    return np.asarray(BAND_WEIGHTS) @ np.maximum(rise, 0.0)


def _sharp_onsets(bands: np.ndarray) -> int:
    """Frames where some band's energy jumps SHARP_RISE_DB or more over the frame before (circular).

    Only jumps to within SHARP_RANGE_DB of the band's loudest frame count: a
    hit's attack, not the flutter of a tail or the beating of a sustained chord.
    """
    peaks = bands.max(axis=1, keepdims=True)
    if not (peaks > 0).any():
        return 0
    peak_db = 10.0 * np.log10(np.maximum(peaks, 1e-30))
    level = np.maximum(10.0 * np.log10(np.maximum(bands, 1e-30)), peak_db - SHARP_RANGE_DB)
    jump = level - np.roll(level, 1, axis=1)
    sharp = ((jump >= SHARP_RISE_DB) & (level > peak_db - SHARP_RANGE_DB)).any(axis=0)
    # A jump spread over two frames is one attack.
    return int((sharp & ~np.roll(sharp, 1)).sum())


def _autocorrelation_tempo(envelope: np.ndarray, frames_per_s: float) -> tuple[float, float]:
    """Pulse clarity (0 to 1) and the autocorrelation tempo in BPM of ``envelope``.

    Clarity is the larger of the linear and the circular autocorrelation
    peaks (normalised by lag 0) between 60 and 200 BPM: a one-bar loop holds
    only four beats, and only the circular reading sees its last beat as
    followed by its first. The tempo is the linear peak weighted by a
    log-normal prior around 120 BPM, one octave wide, refined to a
    fractional lag by a parabola through the peak and its neighbours.
    """
    centred = envelope - envelope.mean()
    n = len(centred)
    energy = float(np.dot(centred, centred))
    spectrum = np.fft.rfft(centred, n=2 * n)
    linear = np.fft.irfft(np.abs(spectrum) ** 2)[:n] / energy
    circular = np.fft.irfft(np.abs(np.fft.rfft(centred)) ** 2, n=n) / energy
    shortest = max(1, int(np.floor(frames_per_s * 60.0 / MAX_BPM)))
    longest = min(n - 1, int(np.ceil(frames_per_s * 60.0 / MIN_BPM)))
    if longest <= shortest:
        return 0.0, 0.0
    lags = np.arange(shortest, longest + 1)
    clarity = float(max(linear[lags].max(), circular[lags].max()))
    prior = np.exp(-0.5 * np.log2(frames_per_s * 60.0 / lags / 120.0) ** 2)
    best = int(lags[np.argmax(np.clip(linear[lags], 0.0, None) * prior)])
    lag = float(best)
    if 0 < best < n - 1:
        a, b, c = linear[best - 1], linear[best], linear[best + 1]
        curvature = a - 2.0 * b + c
        if curvature < 0:
            lag += 0.5 * (a - c) / curvature
    return clarity, frames_per_s * 60.0 / lag


def _same_tempo(free_bpm: float, grid_bpm: float, duration_s: float) -> bool:
    """Whether a free reading is the bar-count tempo ``grid_bpm``: within SNAP_TOLERANCE, and
    adrift from it by under MAX_DRIFT_BEATS over ``duration_s``."""
    difference = abs(free_bpm - grid_bpm)
    return difference <= SNAP_TOLERANCE * grid_bpm and difference * duration_s / 60.0 <= MAX_DRIFT_BEATS


def _biased(score: float, bpm: float) -> float:
    """``score`` times the preference for faster readings (FASTER_BIAS), 1 at 120 BPM."""
    return score * (bpm / 120.0) ** FASTER_BIAS


def _pulse_strength(widened: np.ndarray, *, beat_frames: float, beats: int | None = None,
                    circular: bool = False) -> float:
    """Mean onset strength a pulse train every ``beat_frames`` frames collects, at its best phase.

    ``circular``: the envelope is one loop period and the train wraps (``beats``
    pulses exactly span it); otherwise the train runs to the envelope's end.
    """
    n = len(widened)
    phases = np.arange(int(np.ceil(beat_frames)))
    if circular:
        count = beats
    else:
        count = max(1, int((n - 1 - phases[-1]) // beat_frames) + 1)
    positions = phases[:, None] + beat_frames * np.arange(count)[None, :]
    index = np.rint(positions).astype(np.int64) % n
    return float(widened[index].mean(axis=1).max())


def _refine(widened: np.ndarray, frames_per_s: float, bpm: float) -> tuple[float, float]:
    """The tempo within 3 % of ``bpm`` (0.2 % steps) whose pulse train collects the most, and that strength."""
    best_bpm, best = bpm, -1.0
    for trial in bpm * (1.0 + np.arange(-0.03, 0.0301, 0.002)):
        strength = _pulse_strength(widened, beat_frames=frames_per_s * 60.0 / trial)
        if strength > best:
            best_bpm, best = float(trial), strength
    return best_bpm, best
