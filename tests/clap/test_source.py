"""Where a model comes from (engine.clap.source): content-hash ids, refused
directories, offline and unreachable hubs, the hub cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from engine.clap import get_embedder, loader, model_status
from engine.config import Settings
from engine.errors import ModelUnavailableError
from tests.clap.helpers import NO_SUCH_REPO
from tests.fixtures_clap import TINY_CLAP_DIM, build_tiny_clap

pytestmark = pytest.mark.usefixtures("fresh_embedders")


def test_model_id_depends_on_content_not_path(tmp_path):
    a = build_tiny_clap(tmp_path / "clap")
    b = build_tiny_clap(tmp_path / "copy" / "clap")
    c = build_tiny_clap(tmp_path / "other" / "clap", seed=1)
    ids = [loader.predicted_model_id(Settings(clap_model=str(p))) for p in (a, b, c)]
    assert ids[0] == ids[1]  # the build is byte-identical
    assert ids[0] != ids[2]  # same name and config, different weights


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
    local = loader.predicted_model_id(tiny_clap_settings)
    # Same files, so the same content hash as the local directory (read from blob names here).
    assert e.model_id == predicted == f"{repo_id}@{local.split('@')[1]}"
    assert e.embed_text(["a dog"]).shape == (1, TINY_CLAP_DIM)
