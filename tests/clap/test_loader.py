"""The process-wide embedder (engine.clap.loader): loaded once and shared, concurrent
first calls, remembered failures, model_status without loading, reset."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from engine.clap import TransformersClapEmbedder, get_embedder, loader, model_status, reset_embedders
from engine.errors import ModelUnavailableError
from tests.clap.helpers import NO_SUCH_REPO
from tests.fixtures_clap import TINY_CLAP_DIM

pytestmark = pytest.mark.usefixtures("fresh_embedders")


@pytest.fixture
def count_builds(monkeypatch):
    """Count real model loads (calls of engine.clap.loader._build)."""
    calls = []
    original = loader._build

    def counting(settings):
        calls.append(settings)
        return original(settings)

    monkeypatch.setattr(loader, "_build", counting)
    return calls


def test_loads_once_and_is_shared(tiny_clap_settings, count_builds):
    e1 = get_embedder(tiny_clap_settings)
    e2 = get_embedder(tiny_clap_settings.model_copy())
    e3 = get_embedder(tiny_clap_settings.model_copy(update={"clap_batch_windows": 3}))
    assert e1 is e2 is e3
    assert len(count_builds) == 1
    assert isinstance(e1, TransformersClapEmbedder)
    assert e1.backend == "transformers" and e1.dim == TINY_CLAP_DIM and e1.device == "cpu"
    assert e1.batch_windows == 3  # batch size follows the settings without a reload
    assert e1.model_id.startswith(f"local:{Path(tiny_clap_settings.clap_model).name}@")


def test_concurrent_first_calls_load_once(tiny_clap_settings, monkeypatch):
    calls = []
    original = loader._build

    def slow_build(settings):
        calls.append(1)
        time.sleep(0.3)  # widen the race window
        return original(settings)

    monkeypatch.setattr(loader, "_build", slow_build)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        barrier.wait()
        try:
            results.append(get_embedder(tiny_clap_settings))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


def test_hub_id_offline_fails_fast_and_is_remembered(tiny_clap_settings, monkeypatch, count_builds):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = tiny_clap_settings.model_copy(update={"clap_model": NO_SUCH_REPO})

    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(settings)
    assert time.perf_counter() - started < 10
    assert "TRAUM_CLAP_MODEL" in str(info.value) and "HF_HUB_OFFLINE" in str(info.value)
    assert len(count_builds) == 1

    with pytest.raises(ModelUnavailableError) as again:  # remembered: no second load attempt
        get_embedder(settings)
    assert len(count_builds) == 1
    assert again.value.message == info.value.message

    status = model_status(settings)
    assert status["loaded"] is False and "HF_HUB_OFFLINE" in status["error"]

    with pytest.raises(ModelUnavailableError):
        get_embedder(settings, retry=True)
    assert len(count_builds) == 2

    # Changing the model settings forgets the failure.
    assert get_embedder(tiny_clap_settings) is not None
    assert len(count_builds) == 3


def test_model_status_does_not_load(tiny_clap_settings, count_builds):
    status = model_status(tiny_clap_settings)
    assert status["loaded"] is False and status["error"] is None
    assert status["backend"] == "transformers" and status["device"] == "cpu"
    assert status["precision"] in ("float32", "bfloat16")
    assert count_builds == []

    e = get_embedder(tiny_clap_settings)
    assert status["model_id"] == e.model_id  # predicted without loading
    loaded = model_status(tiny_clap_settings)
    assert loaded["loaded"] is True and loaded["dim"] == TINY_CLAP_DIM and loaded["precision"] == e.precision
    assert len(count_builds) == 1


def test_model_status_of_uncached_hub_id(tiny_clap_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status = model_status(tiny_clap_settings.model_copy(update={"clap_model": NO_SUCH_REPO}))
    assert status["loaded"] is False and status["model_id"] is None and status["error"] is None


def test_reset_embedders_forgets_the_model(tiny_clap_settings):
    e1 = get_embedder(tiny_clap_settings)
    reset_embedders()
    assert model_status(tiny_clap_settings)["loaded"] is False
    assert get_embedder(tiny_clap_settings) is not e1
