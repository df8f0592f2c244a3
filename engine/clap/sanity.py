"""A model that checks itself: does each tower tell unrelated inputs apart?

Published CLAP checkpoints can be broken in a way no load error shows: the
text tower of ``laion/larger_clap_music`` returns nearly the same vector for
every prompt (mean cosine 0.9993 between unrelated captions, mteb #5069), so
every text search with it is noise. Working checkpoints measure 0.18 to 0.29.
When a model loads, a fixed set of unrelated probe prompts and probe signals
is embedded; a tower whose probes average above ``COLLAPSED_COSINE`` is
reported, with better checkpoints named. The check warns; it blocks nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES

COLLAPSED_COSINE = 0.95
PROBE_PROMPTS = (
    "a dog barking in a park",
    "a grand piano playing a slow chord",
    "heavy rain falling on a tin roof",
    "a man giving a speech to a crowd",
    "a distorted electric guitar riff",
    "a car engine starting on a cold morning",
    "birds singing at dawn",
    "a punchy kick drum",
)
BETTER_CHECKPOINTS = "laion/larger_clap_music_and_speech (the default) or laion/larger_clap_general"


@dataclass(frozen=True)
class Sanity:
    ok: bool
    text_mean_cosine: float  # between unrelated probe prompts
    audio_mean_cosine: float  # between unrelated probe signals
    collapsed_cosine: float  # the limit either may not exceed
    problems: tuple[str, ...]  # what is wrong, in words, for the health view and `model`

    def to_dict(self) -> dict:
        return {**asdict(self), "problems": list(self.problems)}


def mean_pairwise_cosine(rows: np.ndarray) -> float:
    """Mean cosine over every pair of distinct rows of ``rows`` (n, D), n >= 2."""
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    gram = unit @ unit.T
    n = len(rows)
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def probe_signals() -> np.ndarray:
    """Five unrelated 10 s windows at 48 kHz, float32 (5, 480000): noise, a tone, clicks, a
    speech-like voice (a 120 Hz pulse train through moving formants, syllables at 4 Hz) and a chord."""
    t = np.arange(WINDOW_SAMPLES) / CLAP_SAMPLE_RATE
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(WINDOW_SAMPLES) * 0.2
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    clicks = np.zeros(WINDOW_SAMPLES)
    clicks[:: CLAP_SAMPLE_RATE // 4] = 0.9
    pulses = (np.sin(2 * np.pi * 120 * t) > 0.95).astype(float)
    formant = np.sin(2 * np.pi * (500 + 400 * np.sin(2 * np.pi * 1.3 * t)) * t)
    voice = 0.4 * np.convolve(pulses, np.hanning(64), mode="same") * formant * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    chord = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * np.exp(-t / 4)
    return np.stack([noise, tone, clicks, voice, chord]).astype(np.float32)


def check(embedder) -> Sanity:
    """Embed the probes with ``embedder`` (an engine.clap Embedder) and judge both towers."""
    text = mean_pairwise_cosine(embedder.embed_text(list(PROBE_PROMPTS)))
    audio = mean_pairwise_cosine(embedder.embed_audio(probe_signals()))
    problems = []
    for tower, cosine, probes in (("text", text, "prompts"), ("audio", audio, "sounds")):
        if cosine > COLLAPSED_COSINE:
            problems.append(
                f"This checkpoint's {tower} tower gives nearly the same vector for every input (mean cosine "
                f"{cosine:.3f} between unrelated {probes}, above {COLLAPSED_COSINE}), so "
                f"{'searching by text' if tower == 'text' else 'searching by sound'} with it gives meaningless "
                f"results. Use {BETTER_CHECKPOINTS} (TRAUM_CLAP_MODEL)."
            )
    return Sanity(not problems, round(text, 4), round(audio, 4), COLLAPSED_COSINE, tuple(problems))
