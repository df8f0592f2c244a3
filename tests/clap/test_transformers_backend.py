"""The transformers backend against the tiny CLAP model from tests/fixtures_clap.py:
determinism, batch independence, precisions, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from engine.clap import get_embedder
from tests.clap.helpers import clicks, noise, tone
from tests.fixtures_clap import build_tiny_clap

pytestmark = pytest.mark.usefixtures("fresh_embedders")


@pytest.fixture
def f32_settings(tiny_clap_settings):
    return tiny_clap_settings.model_copy(update={"clap_precision": "float32"})


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_audio_is_deterministic_and_batch_independent(f32_settings, varied_windows):
    e = get_embedder(f32_settings)
    n = len(varied_windows)
    e.batch_windows = 4
    ref = e.embed_audio(varied_windows)
    assert cos_rows(ref, e.embed_audio(varied_windows)).min() >= 1 - 1e-6  # same call twice

    for size in (1, 3, 8):
        e.batch_windows = size
        assert cos_rows(ref, e.embed_audio(varied_windows)).min() >= 1 - 1e-6, size

    order = np.random.default_rng(5).permutation(n)
    shuffled = e.embed_audio(varied_windows[order])
    assert cos_rows(ref[order], shuffled).min() >= 1 - 1e-6

    for i in range(n):  # each window alone vs inside a batch of others
        alone = e.embed_audio(varied_windows[i : i + 1])
        assert float(alone[0] @ ref[i]) >= 1 - 1e-6


def test_bfloat16_is_deterministic_too(tiny_clap_settings, varied_windows):
    e = get_embedder(tiny_clap_settings.model_copy(update={"clap_precision": "bfloat16"}))
    e.batch_windows = 8
    ref = e.embed_audio(varied_windows)
    e.batch_windows = 1
    assert cos_rows(ref, e.embed_audio(varied_windows)).min() >= 1 - 1e-5


def test_different_signals_embed_differently(f32_settings):
    e = get_embedder(f32_settings)
    out = e.embed_audio(np.stack([tone(440), noise(0), clicks(0.25)]))
    sims = out @ out.T
    off_diagonal = sims[~np.eye(3, dtype=bool)]
    assert off_diagonal.max() < 0.95, sims


def test_precisions_both_work_and_agree(tiny_clap_settings, varied_windows):
    out = {}
    for precision in ("float32", "bfloat16"):
        e = get_embedder(tiny_clap_settings.model_copy(update={"clap_precision": precision}))
        assert e.precision == precision
        out[precision] = e.embed_audio(varied_windows)
        assert out[precision].dtype == np.float32
        text = e.embed_text(["a dog barking"])
        np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert cos_rows(out["float32"], out["bfloat16"]).min() > 0.99


def test_fusion_model_is_batch_independent(tmp_path, tiny_clap_settings):
    """transformers marks a random clip "longer" when none is (LAION-AI/CLAP #90);
    the embedder passes is_longer=False, so a window embeds the same alone or in a batch."""
    fused = build_tiny_clap(tmp_path / "fused", fusion=True)
    e = get_embedder(tiny_clap_settings.model_copy(update={"clap_model": str(fused), "clap_precision": "float32"}))
    windows = np.stack([tone(440), noise(0), tone(3000)])
    together = e.embed_audio(windows)
    for i in range(3):
        assert float(e.embed_audio(windows[i : i + 1])[0] @ together[i]) >= 1 - 1e-6


def test_text_differs_between_prompts(tiny_clap_settings):
    out = get_embedder(tiny_clap_settings).embed_text(["a dog barking loudly", "orchestral strings and a choir"])
    assert float(out[0] @ out[1]) < 0.99
