"""engine.clap.melspec: the log-mel computed with torch (as on a GPU) against transformers' own extractor."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import ClapFeatureExtractor

from engine.clap import get_embedder
from engine.clap.melspec import LogMel
from tests.clap.helpers import tone
from tests.fixtures_clap import build_tiny_clap

pytestmark = pytest.mark.usefixtures("fresh_embedders")

ONE_STEP_DB = 7.7e-6  # one float32 step at 64-128 dB: the extractor rounds its result to float32 too


@pytest.fixture(scope="module")
def hard_windows(varied_windows) -> np.ndarray:
    """The shared windows plus the edges: silence, near-silence, full scale, a burst after silence."""
    burst = np.zeros_like(varied_windows[0])
    burst[300_000:300_480] = 0.9
    return np.concatenate([varied_windows, np.stack([
        np.zeros_like(burst), tone(1000, 1e-6), np.clip(tone(60, 4.0), -1, 1), burst])]).astype(np.float32)


@pytest.mark.parametrize("fusion", [False, True])
def test_log_mel_matches_the_extractor(hard_windows, fusion):
    extractor = ClapFeatureExtractor()
    expected = extractor(list(hard_windows), sampling_rate=48_000, truncation="fusion" if fusion else "rand_trunc",
                         padding="repeatpad", return_tensors="np")["input_features"]
    got = LogMel(extractor, fusion=fusion, device="cpu")(hard_windows).numpy()
    assert got.shape == expected.shape == (len(hard_windows), 4 if fusion else 1, 1001, 64)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= 2 * ONE_STEP_DB
    assert got[len(hard_windows) - 4].max() == pytest.approx(-100.0)  # silence sits on the floor, as there


def test_log_mel_refuses_other_shapes_and_samples_that_are_not_finite():
    log_mel = LogMel(ClapFeatureExtractor(), fusion=False, device="cpu")
    with pytest.raises(ValueError, match="480000"):
        log_mel(np.zeros((2, 1000), dtype=np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        windows = np.zeros((2, 480_000), dtype=np.float32)
        windows[1, 123_456] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            log_mel(windows)


@pytest.mark.parametrize("fusion", [False, True])
def test_embeddings_through_the_device_features_match_the_extractor(tmp_path, tiny_clap_settings, hard_windows,
                                                                    fusion):
    settings = tiny_clap_settings.model_copy(update={"clap_precision": "float32"})
    if fusion:
        settings = settings.model_copy(update={"clap_model": str(build_tiny_clap(tmp_path / "fused", fusion=True))})
    embedder = get_embedder(settings)
    assert embedder._log_mel is None  # on a CPU the extractor runs, as it always has
    expected = embedder.embed_audio(hard_windows)
    embedder._log_mel = LogMel(embedder._features, fusion=fusion, device="cpu")  # what a CUDA model runs
    embedder.checks_finite_itself = True
    got = embedder.embed_audio(hard_windows)
    assert np.sum(got * expected, axis=1).min() >= 1 - 1e-6
    broken = hard_windows[:3].copy()
    broken[2, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):  # still refused, by the device's own check
        embedder.embed_audio(broken)
