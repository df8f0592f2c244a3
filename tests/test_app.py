"""AppTests: every page on a temporary library with the tiny offline CLAP model."""

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from engine.clap import get_embedder, reset_embedders

REPO = Path(__file__).resolve().parents[1]


class _ServedPages(PagesManager):
    """Pages as a running server serves them after its first request (ui leaves Streamlit's legacy
    pages/ mode then): every page runs inside app.py's st.navigation, under its error boundary.
    AppTest would otherwise switch back to the legacy mode before every run and run a page alone."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture
def app(tmp_path, monkeypatch, tiny_clap_dir):
    monkeypatch.setattr("streamlit.testing.v1.app_test.PagesManager", _ServedPages)
    monkeypatch.setenv("TRAUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tiny_clap_dir))
    monkeypatch.setenv("TRAUM_CLAP_DEVICE", "cpu")
    monkeypatch.chdir(REPO)
    import ui

    def clear():
        ui.settings.clear()
        ui.library.clear()
        ui.chart_figures.clear()
        reset_embedders()

    clear()

    def start(page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
        at.run()
        if page:
            at.switch_page(f"pages/{page}.py").run()
        return at

    yield start
    clear()


def populate(audio_dir):
    import ui

    library = ui.library()
    library.ingest([audio_dir / "formats", audio_dir / "sine440.wav", audio_dir / "click120.wav"])
    return library


def test_home_empty_state(app):
    at = app()
    assert not at.exception
    assert at.title[0].value == "Traum-Engine"
    assert "library is empty" in at.info[0].value


def test_home_preloads_the_chart_library_and_only_home(app, audio_dir):
    import ui

    # None would mean a Streamlit upgrade renamed its plotly chunk and the preload silently stopped.
    bundle = ui._plotly_bundle()
    assert bundle is not None and bundle.startswith("PlotlyChart.")
    at = app()
    assert not at.exception and not at.sidebar.html  # an empty library has no charts to prepare
    populate(audio_dir)
    at = app()
    assert not at.exception
    [script] = at.sidebar.html
    assert repr(bundle) in script.proto.body and script.proto.unsafe_allow_javascript
    for page in ("search", "library", "upload", "analytics"):
        at = app(page)
        assert not at.exception and not at.sidebar.html


def test_home_counts_and_model_status(app, audio_dir):
    library = populate(audio_dir)
    get_embedder(library.settings)
    at = app()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tracks"] == "6" and metrics["Pending embeddings"] == "0"
    assert "CLAP ready" in at.success[0].value


def test_home_missing_model_state(app, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tmp_path / "nowhere"))
    at = app()
    import ui

    with pytest.raises(Exception):
        get_embedder(ui.library().settings)
    at.run()
    assert not at.exception
    warning = at.warning[0].value
    assert "not available" in warning and "TRAUM_CLAP_MODEL" in warning


def test_upload_good_and_bad_files(app, audio_dir):
    at = app("upload")
    assert not at.exception and at.title[0].value == "Upload"
    assert "No uploads" in at.info[0].value
    at.file_uploader[0].set_value([
        ("sine.wav", (audio_dir / "sine440.wav").read_bytes(), "audio/wav"),
        ("broken.wav", b"not audio at all", "audio/wav"),
    ]).run()
    assert at.button[0].label == "Import 2 files"
    at.button[0].click().run()
    import ui

    assert ui.library().wait_for_uploads(timeout=120)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    status = dict(zip(table["file"], table["status"]))
    assert status == {"sine.wav": "added", "broken.wav": "failed"}
    message = dict(zip(table["file"], table["message"]))["broken.wav"]
    assert "Not a decodable audio file" in message and "broken.wav" in message
    assert ui.library().stats()["tracks"] == 1


def test_search_page_states_and_hits(app, audio_dir):
    at = app("search")
    assert not at.exception and at.title[0].value == "Search"
    at.text_input[0].input("warm analog pad").run()
    assert not at.exception
    assert "No matches" in at.info[0].value  # empty library
    populate(audio_dir)
    at.run()
    assert not at.exception
    hits = [m.value for m in at.markdown if m.value.startswith("**")]
    assert len(hits) == 6 and hits[0].startswith("**1. ")
    # A player is made when asked for, starts at once, and is the only one.
    assert not at.get("audio")
    plays = [b for b in at.button if b.label.startswith("Play")]
    assert len(plays) == 6
    plays[1].click().run()
    assert not at.exception
    [player] = at.get("audio")
    assert player.proto.autoplay
    plays = [b for b in at.button if b.label.startswith("Play")]
    assert len(plays) == 5
    plays[3].click().run()
    [player] = at.get("audio")
    assert player.proto.autoplay
    at.run()  # any later rerun keeps the player but does not restart it
    [player] = at.get("audio")
    assert not player.proto.autoplay
    [first] = [b for b in at.button if b.label == "More like this"][:1]
    first.click().run()
    assert not at.exception
    assert "like the one you picked" in at.info[0].value


def test_search_missing_model_is_a_message(app, audio_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tmp_path / "nowhere"))
    at = app("search")
    at.text_input[0].input("kick").run()
    assert not at.exception
    assert "CLAP model unavailable" in at.error[0].value and "TRAUM_CLAP_MODEL" in at.error[0].value


def test_analytics_empty_and_populated(app, audio_dir):
    at = app("analytics")
    assert not at.exception and at.title[0].value == "Analytics"
    assert "Nothing to chart" in at.info[0].value
    populate(audio_dir)
    at.run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 5


def test_library_empty_populated_and_filtered(app, audio_dir):
    at = app("library")
    assert not at.exception and at.title[0].value == "Library"
    assert "library is empty" in at.info[0].value
    library = populate(audio_dir)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 6 and "mix.flac" in set(table["filename"])
    at.text_input[0].input("mix").run()
    assert sorted(at.dataframe[0].value["filename"]) == ["mix.flac", "mix.m4a", "mix.mp3", "mix.wav"]
    at.selectbox[0].select("Tempo").run()
    tempos = list(at.dataframe[0].value["tempo"])
    assert tempos == sorted(tempos)
    assert library.stats()["tracks"] == 6  # deleting is covered by the browser test (row selection)


def test_password_mode_gates_every_page(app, monkeypatch, audio_dir):
    from engine.auth import hash_password

    monkeypatch.setenv("TRAUM_AUTH_PASSWORD_HASH", hash_password("correct horse"))
    populate(audio_dir)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Traum-Engine"] and not at.metric  # no library content
    for page in ("library", "search", "upload", "analytics"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.dataframe and "Password" in [w.label for w in at.text_input]
    at.text_input[0].input("wrong guess")
    at.button[0].click().run()
    assert "Wrong password" in at.error[0].value
    at.text_input[0].input("correct horse")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Analytics" and at.get("plotly_chart")


def test_oidc_mode_shows_only_a_login_button(app):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "secret",
                          "server_metadata_url": "https://example.invalid/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"] and not at.metric


def _wait_for_sync(timeout: float = 120.0) -> dict:
    import time

    import ui

    deadline = time.monotonic() + timeout
    while ui.library().sync_state()["running"]:
        assert time.monotonic() < deadline, "the background sync did not finish"
        time.sleep(0.1)
    return ui.library().sync_state()


def test_folders_page_add_invalid_sync_and_remove(app, audio_dir, tmp_path):
    at = app("folders")
    assert not at.exception and at.title[0].value == "Folders"
    assert "No folders yet" in at.info[0].value
    at.text_input[0].input(str(tmp_path / "nowhere"))
    at.button[0].click().run()  # the form's Add folder
    assert not at.exception
    assert "Folder not found" in at.error[0].value and "nowhere" in at.error[0].value
    at.text_input[0].input(str(audio_dir / "formats"))
    at.button[0].click().run()
    assert not at.exception and not at.error
    state = _wait_for_sync()
    assert state["error"] is None and len(state["report"].added) == 4
    at.run()
    assert "Sync finished: 4 added" in at.success[0].value
    table = at.dataframe[0].value
    assert list(table["folder"]) == [str((audio_dir / "formats").resolve())] and list(table["tracks"]) == [4]
    [sync_now] = [b for b in at.button if b.label == "Sync now"]
    sync_now.click().run()
    assert not at.exception
    state = _wait_for_sync()
    assert state["report"].unchanged == 4
    at.run()
    assert "4 unchanged" in at.success[0].value
    remove = [b for b in at.button if b.label == "Remove folder"][0]
    assert remove.disabled  # until confirmed
    at.checkbox(key=f"confirm-remove-{(audio_dir / 'formats').resolve()}").check().run()
    [b for b in at.button if b.label == "Remove folder"][0].click().run()
    assert not at.exception
    assert "No folders yet" in at.info[0].value
    import ui

    assert ui.library().stats()["tracks"] == 0 and (audio_dir / "formats" / "mix.wav").is_file()


def test_home_points_to_folders_first(app):
    at = app()
    info = at.info[0].value
    assert info.index("Folders") < info.index("Upload")


def test_library_page_lists_missing_tracks_and_prunes_them(app, tmp_path):
    import ui
    from tests.fixtures_audio import sine, write_audio

    root = tmp_path / "Samples"
    write_audio(root / "stays.wav", sine(300, 0.5), 44_100)
    write_audio(root / "goes.wav", sine(500, 0.5), 44_100)
    library = ui.library()
    library.add_folder(root, watch=False)
    (root / "goes.wav").unlink()
    library.sync()
    at = app("library")
    assert list(at.dataframe[0].value["filename"]) == ["stays.wav"]
    at.toggle[0].set_value(True).run()
    assert not at.exception and list(at.dataframe[0].value["filename"]) == ["goes.wav"]
    at.checkbox(key="confirm-prune").check().run()
    [b for b in at.button if b.label == "Remove missing tracks"][0].click().run()
    assert not at.exception
    assert "No track is missing" in at.info[0].value
    assert library.stats()["tracks"] == 1
