"""The model's self-check on load: a healthy tiny CLAP passes, one whose text tower is collapsed
(as laion/larger_clap_music's is) is reported; the check warns and blocks nothing."""

import json

import numpy as np
import pytest

from engine.clap import get_embedder, model_status
from engine.clap.sanity import COLLAPSED_COSINE, check, mean_pairwise_cosine, probe_signals
from engine.cli import main
from engine.config import Settings
from tests.fixtures_clap import build_tiny_clap

pytestmark = pytest.mark.usefixtures("fresh_embedders")


def test_mean_pairwise_cosine_on_known_rows():
    assert mean_pairwise_cosine(np.eye(3)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(np.ones((4, 5))) == pytest.approx(1.0)
    rows = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert mean_pairwise_cosine(rows) == pytest.approx(np.sqrt(0.5))


def test_probe_signals_are_five_distinct_windows():
    signals = probe_signals()
    assert signals.shape == (5, 480_000) and signals.dtype == np.float32 and np.isfinite(signals).all()
    assert mean_pairwise_cosine(signals.astype(np.float64)) < 0.5


def test_a_healthy_model_passes_and_reports_its_size(tiny_clap_settings):
    embedder = get_embedder(tiny_clap_settings)
    sanity = embedder.sanity
    assert sanity.ok and sanity.problems == ()
    assert sanity.text_mean_cosine < COLLAPSED_COSINE and sanity.audio_mean_cosine < COLLAPSED_COSINE
    status = model_status(tiny_clap_settings)
    assert status["loaded"] and status["dim"] == embedder.dim and status["sanity"]["ok"] is True


def test_a_collapsed_text_tower_is_reported_but_loads(tmp_path):
    collapsed = build_tiny_clap(tmp_path / "collapsed", text_attention_gain=1.0)
    settings = Settings(data_dir=tmp_path / "data", clap_model=str(collapsed), clap_device="cpu")
    embedder = get_embedder(settings)  # still usable: the check warns, it does not block
    sanity = check(embedder)
    assert not sanity.ok and sanity.text_mean_cosine > COLLAPSED_COSINE
    [problem] = sanity.problems
    assert "text tower" in problem and "laion/larger_clap_music_and_speech" in problem
    assert embedder.embed_text(["a kick"]).shape == (1, embedder.dim)




@pytest.mark.parametrize("healthy", [True, False])
def test_model_json_has_dim_and_sanity(tmp_path, tiny_clap_dir, capsys, monkeypatch, healthy):
    model = tiny_clap_dir if healthy else build_tiny_clap(tmp_path / "collapsed", text_attention_gain=1.0)
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(model))
    monkeypatch.setenv("TRAUM_CLAP_DEVICE", "cpu")
    code = main(["model", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert code == 0 and status["loaded"] and status["dim"] == 16
    assert status["sanity"]["ok"] is healthy and bool(status["sanity"]["problems"]) is not healthy


def test_model_command_without_a_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tmp_path / "nowhere"))
    code = main(["model", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert code == 1 and not status["loaded"] and "does not exist" in status["error"] and status["hint"]
    code = main(["model", "--json", "--no-load"])
    assert code == 0 and json.loads(capsys.readouterr().out)["loaded"] is False
