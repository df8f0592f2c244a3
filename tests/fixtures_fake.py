"""A deterministic fake embedder, so ranking tests can assert exact orders.

Audio maps to the square roots of its energy in 16 log-spaced frequency bands
(20 Hz to 24 kHz), normalised. A prompt naming a frequency ("a 440 Hz tone")
maps to that frequency's band; "noise" to all bands equally. A 440 Hz sine
therefore ranks first for "440 Hz", and white noise first for "noise".
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from engine.library import Library

__all__ = ["FakeEmbedder", "fake_embedder", "fake_library"]

EDGES = np.geomspace(20, 24_000, 17)


class FakeEmbedder:
    backend = "fake"
    model_id = "fake-bands-v1"
    dim = 16
    device = "cpu"
    precision = "float32"
    batch_windows = 8

    def __init__(self):
        self.audio_calls = 0
        self.text_calls = 0

    def embed_audio(self, windows: np.ndarray) -> np.ndarray:
        self.audio_calls += 1
        spectrum = np.abs(np.fft.rfft(np.asarray(windows, dtype=np.float64), axis=1)) ** 2
        freqs = np.fft.rfftfreq(windows.shape[1], 1 / 48_000)
        band = np.clip(np.searchsorted(EDGES, freqs) - 1, 0, 15)
        energies = np.stack([spectrum[:, band == b].sum(axis=1) for b in range(16)], axis=1)
        energies[:, 0] += 1e-12  # silence: a definite direction instead of 0/0
        return _unit(np.sqrt(energies))

    def embed_text(self, texts) -> np.ndarray:
        self.text_calls += 1
        return np.stack([self._text(t) for t in texts])

    def _text(self, text: str) -> np.ndarray:
        found = re.search(r"(\d+(?:\.\d+)?)\s*(k?)hz", text.lower())
        if found:
            freq = float(found.group(1)) * (1000 if found.group(2) else 1)
            vector = np.full(16, 0.01)
            vector[int(np.clip(np.searchsorted(EDGES, freq) - 1, 0, 15))] = 1.0
            return _unit(vector[None])[0]
        if "noise" in text.lower():
            return _unit(np.sqrt(np.diff(EDGES))[None])[0]
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        return _unit(np.random.default_rng(seed).random((1, 16)))[0]

    def describe(self) -> dict:
        return {"backend": self.backend, "model_id": self.model_id, "dim": self.dim, "device": self.device,
                "precision": self.precision}


def _unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_library(settings, fake_embedder):
    library = Library(settings, embedder_provider=lambda: fake_embedder)
    yield library
    library.close()
