"""Offline tests of engine.embeddings through the production path (get_embedder)
against the tiny CLAP model from tests/fixtures_clap.py."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from engine import embeddings as emb_mod
from engine.embeddings import (
    LaionClapEmbedder,
    TransformersClapEmbedder,
    get_embedder,
    model_status,
    reset_embedders,
)
from engine.config import Settings
from engine.errors import ModelUnavailableError
from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES
from tests.fixtures_clap import TINY_CLAP_DIM, build_tiny_clap

SR = CLAP_SAMPLE_RATE
T = np.arange(WINDOW_SAMPLES) / SR
REPO_ROOT = Path(__file__).resolve().parents[1]
NO_SUCH_REPO = "traum-engine-tests/no-such-clap-model"  # never cached, never on the hub

pytestmark = pytest.mark.usefixtures("fresh_embedders")


def tone(freq: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * T)).astype(np.float32)


def noise(seed: int, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(WINDOW_SAMPLES)).astype(np.float32)


def clicks(every_s: float) -> np.ndarray:
    x = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    x[:: int(every_s * SR)] = 1.0
    return x


@pytest.fixture(scope="module")
def varied_windows() -> np.ndarray:
    chirp = (0.4 * np.sin(2 * np.pi * (200 + 400 * T) * T)).astype(np.float32)
    am = (tone(110) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * T))).astype(np.float32)
    return np.stack([tone(440), noise(0), tone(3000), clicks(0.5), chirp, am, noise(1, 0.3)])


@pytest.fixture
def f32_settings(tiny_clap_settings):
    return tiny_clap_settings.model_copy(update={"clap_precision": "float32"})


@pytest.fixture
def count_builds(monkeypatch):
    """Count real model loads (calls of engine.embeddings._build)."""
    calls = []
    original = emb_mod._build

    def counting(settings):
        calls.append(settings)
        return original(settings)

    monkeypatch.setattr(emb_mod, "_build", counting)
    return calls


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


# --------------------------------------------------------------------------- loading


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
    original = emb_mod._build

    def slow_build(settings):
        calls.append(1)
        time.sleep(0.3)  # widen the race window
        return original(settings)

    monkeypatch.setattr(emb_mod, "_build", slow_build)
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


def test_model_id_depends_on_content_not_path(tmp_path):
    a = build_tiny_clap(tmp_path / "clap")
    b = build_tiny_clap(tmp_path / "copy" / "clap")
    c = build_tiny_clap(tmp_path / "other" / "clap", seed=1)
    ids = [emb_mod._predicted_model_id(Settings(clap_model=str(p))) for p in (a, b, c)]
    assert ids[0] == ids[1]  # the build is byte-identical
    assert ids[0] != ids[2]  # same name and config, different weights


# --------------------------------------------------------------------------- audio


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


# --------------------------------------------------------------------------- text


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


@pytest.mark.parametrize("runnable, expected", [(1, "all"), (2, "all"), (9, 1), (None, "all")])
def test_prompts_run_on_one_thread_only_while_the_cpu_is_contended(tiny_clap_settings, monkeypatch, runnable,
                                                                    expected):
    import torch

    e = get_embedder(tiny_clap_settings)
    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("one intra-op thread already: nothing to reduce")
    seen = []
    original = e._embed_text_batch

    def spy(texts):
        seen.append(torch.get_num_threads())
        return original(texts)

    monkeypatch.setattr(e, "_embed_text_batch", spy)
    monkeypatch.setattr(emb_mod, "_runnable_threads", lambda: runnable)
    e.embed_text([f"a prompt seen while {runnable} threads were runnable"])
    assert seen == [threads if expected == "all" else expected]
    assert torch.get_num_threads() == threads  # restored for everything else


def test_runnable_threads_reads_this_machine():
    runnable = emb_mod._runnable_threads()
    assert runnable is None or runnable >= 1  # at least this thread, where /proc exists


def test_text_differs_between_prompts(tiny_clap_settings):
    out = get_embedder(tiny_clap_settings).embed_text(["a dog barking loudly", "orchestral strings and a choir"])
    assert float(out[0] @ out[1]) < 0.99


def test_text_cache_evicts_least_recently_used():
    cache = emb_mod._TextCache(2)
    row = np.zeros(4, np.float32)
    cache.put("a", row)
    cache.put("b", row)
    assert cache.get("a") is not None  # "a" is now most recent
    cache.put("c", row)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2


# --------------------------------------------------------------------------- failures


def test_refuses_pickle_only_directory(tmp_path, tiny_clap_dir, tiny_clap_settings):
    bad = tmp_path / "pickled"
    bad.mkdir()
    shutil.copy(tiny_clap_dir / "config.json", bad / "config.json")
    (bad / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(tiny_clap_settings.model_copy(update={"clap_model": str(bad)}))
    assert "pytorch_model.bin" in str(info.value) and "safetensors" in str(info.value)


def test_missing_local_dir_fails_fast_and_names_setting(tmp_path, tiny_clap_settings):
    settings = tiny_clap_settings.model_copy(update={"clap_model": str(tmp_path / "nowhere")})
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(settings)
    assert time.perf_counter() - started < 5
    assert "TRAUM_CLAP_MODEL" in str(info.value)


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


def test_hub_id_without_offline_flag_still_fails_fast(tiny_clap_settings, monkeypatch):
    """No cache and either no network (probe fails within ~3 s) or a 404: never a long retry loop."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    settings = tiny_clap_settings.model_copy(update={"clap_model": NO_SUCH_REPO})
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(settings)
    assert time.perf_counter() - started < 15
    assert "TRAUM_CLAP_MODEL" in str(info.value)


def make_fake_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> Path:
    """Lay a model out like huggingface_hub's cache: blobs named by sha256, symlinked snapshots."""
    import hashlib
    import os

    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in model_dir.iterdir():
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / f.name)
    return snapshot


def test_cached_hub_model_loads_offline(tmp_path, tiny_clap_dir, tiny_clap_settings, monkeypatch):
    from huggingface_hub import constants

    repo_id = "traum-engine-tests/tiny-clap"
    make_fake_hub_cache(tmp_path / "hub", repo_id, tiny_clap_dir)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = tiny_clap_settings.model_copy(update={"clap_model": repo_id})

    predicted = model_status(settings)["model_id"]
    e = get_embedder(settings)
    local = emb_mod._predicted_model_id(tiny_clap_settings)
    # Same files, so the same content hash as the local directory (read from blob names here).
    assert e.model_id == predicted == f"{repo_id}@{local.split('@')[1]}"
    assert e.embed_text(["a dog"]).shape == (1, TINY_CLAP_DIM)


def test_explicit_cuda_without_gpu_is_a_clear_error(tiny_clap_settings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(tiny_clap_settings.model_copy(update={"clap_device": "cuda"}))
    assert "TRAUM_CLAP_DEVICE" in str(info.value)


# --------------------------------------------------------------------------- model_status


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


# --------------------------------------------------------------------------- laion backend


def test_default_path_never_imports_laion_clap(tiny_clap_dir):
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import engine.embeddings as e
        from engine.config import Settings
        light = "torch" not in sys.modules
        s = Settings(clap_model={str(tiny_clap_dir)!r}, clap_device="cpu")
        e.model_status(s)
        emb = e.get_embedder(s)
        emb.embed_text(["a dog"])
        emb.embed_audio(np.zeros((1, 480000), np.float32))
        print(json.dumps({{"light": light, "laion": "laion_clap" in sys.modules}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"light": True, "laion": False}


@pytest.mark.skipif(importlib.util.find_spec("laion_clap") is not None, reason="laion_clap is installed here")
def test_laion_backend_without_package_is_a_clear_error(tiny_clap_settings):
    settings = tiny_clap_settings.model_copy(
        update={"clap_backend": "laion", "laion_checkpoint": "/does/not/matter.pt"}
    )
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(settings)
    assert "requirements-laion.txt" in str(info.value) and "torchvision" in str(info.value)
    assert "laion_clap" not in sys.modules
    assert model_status(settings)["error"]  # remembered for the health view


@pytest.fixture
def fake_laion(monkeypatch):
    """A stand-in laion_clap module, to test our wrapper where the real package cannot be installed."""
    import importlib.machinery

    import torch

    created = []

    class CLAP_Module:  # noqa: N801 - mirrors the real name
        def __init__(self, enable_fusion=False, device=None, amodel="HTSAT-tiny", tmodel="roberta"):
            self.kwargs = dict(enable_fusion=enable_fusion, device=device, amodel=amodel)
            self.model_cfg = {"embed_dim": 8}
            self.loaded = None
            created.append(self)

        def load_ckpt(self, ckpt=None, model_id=-1):
            self.loaded = ckpt

        def eval(self):
            return self

        def get_audio_embedding_from_data(self, x, use_tensor=False):
            assert use_tensor and isinstance(x, torch.Tensor)
            return x[:, :8000].reshape(x.shape[0], 8, 1000).std(dim=2) + 1.0

        def get_text_embedding(self, x, tokenizer=None, use_tensor=False):
            assert use_tensor
            return torch.tensor([[float(len(t)), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0] for t in x])

    module = types.ModuleType("laion_clap")
    module.__spec__ = importlib.machinery.ModuleSpec("laion_clap", None)
    module.CLAP_Module = CLAP_Module
    monkeypatch.setitem(sys.modules, "laion_clap", module)
    monkeypatch.setattr(emb_mod, "_check_laion_hub_dependencies", lambda: None)
    return created


def test_laion_wrapper_with_stub_module(tiny_clap_settings, tmp_path, fake_laion):
    ckpt = tmp_path / "music_model.pt"
    ckpt.write_bytes(b"pretend checkpoint")
    settings = tiny_clap_settings.model_copy(
        update={"clap_backend": "laion", "laion_checkpoint": str(ckpt), "laion_audio_model": "HTSAT-base"}
    )
    e = get_embedder(settings)
    assert isinstance(e, LaionClapEmbedder) and e.dim == 8 and e.precision == "float32"
    assert fake_laion[0].kwargs == {"enable_fusion": False, "device": "cpu", "amodel": "HTSAT-base"}
    assert fake_laion[0].loaded == str(ckpt.resolve())
    assert e.model_id.startswith("laion-clap:HTSAT-base:music_model.pt@")
    audio = e.embed_audio(np.stack([tone(440), noise(0)]))
    text = e.embed_text(["a", "longer prompt"])
    for out in (audio, text):
        assert out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_laion_without_checkpoint_names_the_setting(tiny_clap_settings, fake_laion):
    settings = tiny_clap_settings.model_copy(update={"clap_backend": "laion", "laion_checkpoint": None})
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(settings)
    assert "TRAUM_LAION_CHECKPOINT" in str(info.value)


def test_laion_real_package(tiny_clap_settings):
    """The real laion_clap path; needs the package and a checkpoint (TRAUM_TEST_LAION_CHECKPOINT)."""
    import os

    try:
        import laion_clap  # noqa: F401
    except Exception as exc:
        pytest.skip(f"laion_clap cannot be imported here: {type(exc).__name__}: {exc}")
    checkpoint = os.environ.get("TRAUM_TEST_LAION_CHECKPOINT")
    if not checkpoint:
        pytest.skip("set TRAUM_TEST_LAION_CHECKPOINT to a laion_clap .pt checkpoint to run this test")
    settings = tiny_clap_settings.model_copy(update={"clap_backend": "laion", "laion_checkpoint": checkpoint})
    e = get_embedder(settings)
    out = e.embed_audio(np.stack([tone(440), noise(0)]))
    assert out.shape == (2, e.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_reset_embedders_forgets_the_model(tiny_clap_settings):
    e1 = get_embedder(tiny_clap_settings)
    reset_embedders()
    assert model_status(tiny_clap_settings)["loaded"] is False
    assert get_embedder(tiny_clap_settings) is not e1
