from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(REPO)
    import ui

    ui.library.clear()
    yield lambda: AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    ui.library.clear()


def test_home_shows_empty_state(app):
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Traum-Engine"
    assert "library is empty" in at.info[0].value


def test_home_shows_counts(app, audio_dir):
    import ui

    ui.library().ingest([audio_dir / "formats"])
    at = app().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tracks"] == "4"
    assert metrics["Total duration"] == "0:48"
