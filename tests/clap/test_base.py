"""The Embedder interface (engine.clap.base): input validation, unit rows, the text cache."""

from __future__ import annotations

import numpy as np
import pytest

from engine.clap import base, get_embedder
from engine.windows import WINDOW_SAMPLES
from tests.clap.helpers import tone
from tests.fixtures_clap import TINY_CLAP_DIM

pytestmark = pytest.mark.usefixtures("fresh_embedders")


def test_audio_shapes_dtype_and_unit_norm(tiny_clap_settings, varied_windows):
    e = get_embedder(tiny_clap_settings)
    out = e.embed_audio(varied_windows)
    assert out.shape == (len(varied_windows), TINY_CLAP_DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert e.embed_audio(np.zeros((0, WINDOW_SAMPLES), np.float32)).shape == (0, TINY_CLAP_DIM)


def test_audio_input_is_validated(tiny_clap_settings):
    e = get_embedder(tiny_clap_settings)
    with pytest.raises(ValueError):
        e.embed_audio(np.zeros((1, 1000), np.float32))
    bad = tone(440)[None].copy()
    bad[0, 5] = np.nan
    with pytest.raises(ValueError):
        e.embed_audio(bad)


def test_text_embedding_and_cache(tiny_clap_settings, monkeypatch):
    e = get_embedder(tiny_clap_settings)
    calls = []
    original = e._embed_text_batch

    def spy(texts):
        calls.append(list(texts))
        return original(texts)

    monkeypatch.setattr(e, "_embed_text_batch", spy)
    before = e.text_cache_info()

    first = e.embed_text(["a dog barking", "calm piano", "a dog barking"])
    assert first.shape == (3, TINY_CLAP_DIM) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])
    assert calls == [["a dog barking", "calm piano"]]  # duplicates embedded once

    again = e.embed_text(["calm piano", "a dog barking"])
    assert len(calls) == 1  # served from the cache, model not rerun
    np.testing.assert_array_equal(again, first[[1, 0]])
    info = e.text_cache_info()
    assert info["hits"] - before["hits"] == 2
    assert info["model_calls"] - before["model_calls"] == 1
    assert info["maxsize"] == 1024

    again[0, 0] = 123.0  # callers get copies, the cache stays intact
    assert e.embed_text(["calm piano"])[0, 0] != 123.0

    assert e.embed_text([]).shape == (0, TINY_CLAP_DIM)
    with pytest.raises(TypeError):
        e.embed_text("a bare string")


def test_text_cache_evicts_least_recently_used():
    cache = base._TextCache(2)
    row = np.zeros(4, np.float32)
    cache.put("a", row)
    cache.put("b", row)
    assert cache.get("a") is not None  # "a" is now most recent
    cache.put("c", row)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2
