"""Zero-shot categories: a fixed sample-library vocabulary scored against CLAP embeddings.

Each category is a prompt ensemble: a few ways of describing it, embedded
by the model's text tower and averaged into one unit vector per category
(``category_vectors``). A track's scores are the softmax of its pooled
embedding's cosines with those vectors (``score``), so one matrix product
scores a whole batch, at import or from stored embeddings after a model
change. A category word in the file's path ("Kicks/", "Pad_Fmin") is a
hint: it adds HINT_LOGIT to that category before the softmax, enough to
break a near tie, not to overrule the sound.

A track belongs to its best category and to any other scoring at least
MEMBER_RATIO of it (``members``): a filter never returns a track whose
category is an afterthought.
"""

from __future__ import annotations

import numpy as np

# What a sample is besides its category (engine.describe.kind decides it).
KINDS = ("one-shot", "loop", "long")
# Bump when a name or prompt changes: stored scores of another version are recomputed.
VERSION = 1
VOCABULARY: dict[str, tuple[str, ...]] = {
    "kick": ("a kick drum hit", "a punchy bass drum one-shot", "the low thump of an electronic kick drum"),
    "snare": ("a snare drum hit", "a crisp snare drum one-shot", "a rimshot on a snare drum"),
    "clap": ("a hand clap", "an electronic clap sample", "a layered clap one-shot"),
    "hi-hat": ("a closed hi-hat", "an open hi-hat", "a short metallic hi-hat tick"),
    "cymbal": ("a crash cymbal", "a ride cymbal", "a cymbal swell and wash"),
    "tom": ("a tom drum hit", "a floor tom", "a pitched tom fill"),
    "percussion": ("a shaker", "a conga or bongo hit", "a tambourine, cowbell or woodblock"),
    "drum loop": ("a drum loop", "a drum beat with kick, snare and hi-hats", "a breakbeat"),
    "bass": ("a bass line", "a synth bass note", "an electric bass guitar"),
    "808": ("an 808 bass", "a long booming 808 sub bass", "a distorted 808 kick bass"),
    "synth lead": ("a synth lead melody", "a bright synthesizer lead", "a plucked synth arpeggio"),
    "pad": ("a soft synth pad", "an evolving atmospheric pad", "a warm sustained chord pad"),
    "keys": ("a piano", "an electric piano chord", "an organ"),
    "guitar": ("an acoustic guitar", "an electric guitar riff", "a strummed guitar chord"),
    "strings": ("a string section", "a violin", "a cello"),
    "brass and wind": ("a brass section", "a trumpet or saxophone", "a flute or woodwind"),
    "vocal": ("a singing voice", "a vocal chop", "a choir"),
    "speech": ("a person speaking", "spoken words", "a voice talking"),
    "fx": ("a riser sound effect", "an impact sound effect", "a whoosh transition effect"),
    "ambience": ("a field recording", "room ambience", "nature sounds and background atmosphere"),
    "full mix": ("a full song mix", "a complete music track with drums, bass and melody", "a mastered song"),
}
NAMES: tuple[str, ...] = tuple(VOCABULARY)
# Softmax temperature on cosines (the scale CLAP's own logits are of); a 0.02 lead in
# cosine is a factor e in probability.
LOGIT_SCALE = 50.0
HINT_LOGIT = 1.0
MEMBER_RATIO = 0.6
# What a path's category word (engine.describe.names) hints at, in this vocabulary.
HINTED = {
    "kick": ("kick",), "snare": ("snare",), "hat": ("hi-hat",), "clap": ("clap",), "tom": ("tom",),
    "cymbal": ("cymbal",), "percussion": ("percussion",), "drums": ("drum loop",), "bass": ("bass", "808"),
    "pad": ("pad",), "lead": ("synth lead",), "keys": ("keys",), "guitar": ("guitar",), "strings": ("strings",),
    "brass": ("brass and wind",), "vocal": ("vocal",), "fx": ("fx",),
}


def prompts() -> list[str]:
    """Every prompt, category by category (the order ``category_vectors`` expects)."""
    return [prompt for ensemble in VOCABULARY.values() for prompt in ensemble]


def category_vectors(prompt_vectors: np.ndarray) -> np.ndarray:
    """One unit vector per category (categories, D) from the text embeddings of ``prompts()`` (prompts, D)."""
    rows, start = [], 0
    for ensemble in VOCABULARY.values():
        mean = np.asarray(prompt_vectors[start : start + len(ensemble)], dtype=np.float64).mean(axis=0)
        rows.append(mean / max(np.linalg.norm(mean), 1e-12))
        start += len(ensemble)
    return np.stack(rows).astype(np.float32)


def score(*, vectors: np.ndarray, categories: np.ndarray, hints: list[str | None] | None = None) -> np.ndarray:
    """Category probabilities (N, categories), rows summing to 1, for unit track vectors (N, D).

    ``hints`` holds each track's path category word (``NameHints.category``) or None.
    """
    logits = LOGIT_SCALE * (np.asarray(vectors, dtype=np.float32) @ categories.T).astype(np.float64)
    for row, hint in enumerate(hints or []):
        for name in HINTED.get(hint or "", ()):
            logits[row, NAMES.index(name)] += HINT_LOGIT
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def members(scores: np.ndarray) -> list[str]:
    """The categories one track (scores (categories,)) belongs to, best first."""
    best = float(scores.max())
    order = np.argsort(-scores, kind="stable")
    return [NAMES[i] for i in order if scores[i] >= MEMBER_RATIO * best]


def ranked(scores: np.ndarray) -> list[tuple[str, float]]:
    """(category, score) for the categories a track belongs to, best first."""
    return [(name, round(float(scores[NAMES.index(name)]), 4)) for name in members(scores)]
