"""Test signals and names shared by the CLAP tests."""

from __future__ import annotations

import numpy as np

from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES

SR = CLAP_SAMPLE_RATE
T = np.arange(WINDOW_SAMPLES) / SR
NO_SUCH_REPO = "traum-engine-tests/no-such-clap-model"  # never cached, never on the hub


def tone(freq: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * T)).astype(np.float32)


def noise(seed: int, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(WINDOW_SAMPLES)).astype(np.float32)


def clicks(every_s: float) -> np.ndarray:
    x = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    x[:: int(every_s * SR)] = 1.0
    return x
