"""The laion backend (engine.clap.laion_backend), with a stub laion_clap where the
real package cannot be installed, and the default path never importing it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from engine.clap import LaionClapEmbedder, get_embedder, laion_backend, model_status
from engine.errors import ModelUnavailableError
from tests.clap.helpers import noise, tone

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("fresh_embedders")


def test_default_path_never_imports_laion_clap(tiny_clap_dir):
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import engine.clap as e
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
    monkeypatch.setattr(laion_backend, "_check_laion_hub_dependencies", lambda: None)
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
