"""Fixtures shared by the CLAP tests (the tiny model itself comes from tests/fixtures_clap.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.clap.helpers import T, clicks, noise, tone


@pytest.fixture(scope="module")
def varied_windows() -> np.ndarray:
    chirp = (0.4 * np.sin(2 * np.pi * (200 + 400 * T) * T)).astype(np.float32)
    am = (tone(110) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * T))).astype(np.float32)
    return np.stack([tone(440), noise(0), tone(3000), clicks(0.5), chirp, am, noise(1, 0.3)])
