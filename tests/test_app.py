"""AppTests: every page on a temporary library with the tiny offline CLAP model."""

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from engine.clap import get_embedder, reset_embedders
from engine.library import Filters

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
        ui.duplicate_groups_at.clear()
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


def populate_pack(root: Path):
    """A small sample pack through the app's library: one-shots, a loop and chord progressions in
    F minor, C minor (mixes with F minor) and E major (does not)."""
    import ui
    from tests import fixtures_music as music
    from tests.fixtures_audio import write_audio

    pack, rate = root / "pack", music.RATE
    write_audio(pack / "One Shots" / "Kick_01.wav", music.kick(), rate)
    write_audio(pack / "One Shots" / "Snare_01.wav", music.snare(), rate)
    write_audio(pack / "Loops" / "groove_120.wav", music.render_loop("backbeat", 120, 2), rate)
    write_audio(pack / "Keys" / "Progression_Fm.wav", music.render_progression("F", "i-iv-v-i", "piano"), rate)
    write_audio(pack / "Keys" / "Progression_Cm.wav", music.render_progression("C", "i-iv-v-i", "piano"), rate)
    write_audio(pack / "Keys" / "Progression_E.wav", music.render_progression("E", "I-vi-IV-V-I", "organ"), rate)
    library = ui.library()
    assert [r.status for r in library.ingest([pack])] == ["added"] * 6
    return library


def chart_title(chart) -> str:
    return json.loads(chart.proto.spec)["layout"]["title"]["text"]


def _values(array) -> list:
    """A plotly JSON array: a list, or a typed array ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def widget(widgets, label: str):
    [found] = [w for w in widgets if w.label == label]
    return found


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


def test_analytics_empty_and_populated(app, audio_dir, tmp_path):
    import ui

    at = app("analytics")
    assert not at.exception and at.title[0].value == "Analytics"
    assert "Nothing to chart" in at.info[0].value
    populate(audio_dir)
    populate_pack(tmp_path)
    at.run()
    assert not at.exception
    titles = [chart_title(chart) for chart in at.get("plotly_chart")]
    assert len(titles) == 5 and "Tempo" in titles  # how they sound, first
    at.radio[0].set_value("What they are").run()
    assert not at.exception
    titles = [chart_title(chart) for chart in at.get("plotly_chart")]
    assert titles == ["Kind", "Key (Camelot wheel)", "Category"]
    # The wheel: a minor and a major trace of 12 slices each, holding every keyed track.
    wheel = json.loads(at.get("plotly_chart")[-2].proto.spec)["data"]
    assert [trace["type"] for trace in wheel] == ["barpolar", "barpolar"]
    assert [len(trace["theta"]) for trace in wheel] == [12, 12]
    keyed = [t for t in ui.library().tracks(limit=100) if t.key_mode]
    assert sum(sum(_values(trace["r"])) for trace in wheel) == len(keyed) > 0
    # "Show only" one kind: every chart counts just those tracks.
    loops = ui.library().count(Filters(kinds=("loop",)))
    assert 0 < loops < ui.library().count()
    widget(at.multiselect, "Kind").select("loop").run()
    assert not at.exception
    kinds = json.loads(at.get("plotly_chart")[-3].proto.spec)["data"][0]
    assert dict(zip(kinds["x"], _values(kinds["y"]))).get("loop") == loops
    assert sum(_values(kinds["y"])) == loops


def test_analytics_without_keys_or_categories_says_so(app, monkeypatch, tmp_path):
    import ui
    from tests.fixtures_audio import white_noise, write_audio

    # No model: nothing is embedded, so nothing has categories; and noise has no key.
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tmp_path / "nowhere"))
    write_audio(tmp_path / "noise.wav", white_noise(3), 44_100)
    library = ui.library()
    library.ingest([tmp_path / "noise.wav"])
    [track] = library.tracks()
    assert track.key is None and not track.categories and track.kind
    at = app("analytics")
    at.radio[0].set_value("What they are").run()
    assert not at.exception
    assert [chart_title(chart) for chart in at.get("plotly_chart")] == ["Kind"]
    captions = " ".join(c.value for c in at.caption)
    assert "no key chart" in captions and "No track has categories yet" in captions


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


def hit_names(at) -> list[str]:
    """The file names of the search result cards, best first."""
    return [m.value.split("**")[1].split(". ", 1)[1] for m in at.markdown if m.value.startswith("**")]


def names(library, **filters) -> set[str]:
    from engine.library import Filters

    return {t.filename for t in library.tracks(Filters(**filters), limit=1000)}


def test_search_filters_on_kind_key_and_category(app, audio_dir, tmp_path):
    populate(audio_dir)
    library = populate_pack(tmp_path)
    at = app("search")
    at.text_input[0].input("warm piano chords").run()
    assert not at.exception and len(hit_names(at)) == 12
    # Every card says what the sample is: kind, key with its Camelot code, best category and its score.
    cards = {name: m.value for name, m in zip(hit_names(at), [m for m in at.markdown if m.value.startswith("**")])}
    fm = library.tracks(name="Progression_Fm")[0]
    assert f"{fm.kind} · {fm.key} ({fm.camelot}) · {fm.category} " in cards["Progression_Fm.wav"]
    assert fm.key == "F minor" and fm.camelot == "4A"

    widget(at.multiselect, "Kind").select("one-shot").run()
    assert not at.exception
    shots = names(library, kinds=("one-shot",))
    assert set(hit_names(at)) == shots and {"Kick_01.wav", "Snare_01.wav"} <= shots and len(shots) < 12
    assert all("one-shot" in m.value for m in at.markdown if m.value.startswith("**"))
    widget(at.multiselect, "Kind").set_value([]).run()

    widget(at.selectbox, "Key").select("F minor (4A)").run()
    assert not at.exception
    in_key = set(hit_names(at))
    assert in_key == names(library, key="F minor") and "Progression_Fm.wav" in in_key
    assert "Progression_E.wav" not in in_key
    widget(at.toggle, "Also keys that mix with it").set_value(True).run()
    assert not at.exception
    mixing = set(hit_names(at))
    assert mixing == names(library, compatible_with="F minor") and in_key < mixing
    assert "Progression_Cm.wav" in mixing and "Progression_E.wav" not in mixing
    widget(at.selectbox, "Key").select("any").run()
    assert len(hit_names(at)) == 12  # the toggle alone filters nothing

    category = library.track(fm.id).category
    widget(at.multiselect, "Category").select(category).run()
    assert not at.exception
    assert set(hit_names(at)) == names(library, categories=(category,)) and "Progression_Fm.wav" in hit_names(at)


def test_a_refused_filter_is_a_message(app, audio_dir, monkeypatch):
    populate(audio_dir)

    def refuse(text, *, compatible=False):
        raise ValueError(text)

    monkeypatch.setattr("engine.store.types.labels_matching", refuse)
    for page in ("search", "library"):
        at = app(page)
        if page == "search":
            at.text_input[0].input("kick").run()
            assert hit_names(at)
        widget(at.selectbox, "Key").select("C major (8B)").run()
        assert not at.exception
        assert "Invalid filter" in at.error[0].value and "C major" in at.error[0].value
        assert not hit_names(at) and not at.dataframe
        assert widget(at.selectbox, "Key").value == "C major (8B)"  # still there, to be changed


def test_library_shows_and_filters_what_samples_are(app, tmp_path):
    from engine.library import CATEGORIES

    library = populate_pack(tmp_path)
    assert all(t.category for t in library.tracks(limit=100))  # the model scored every track
    at = app("library")
    assert not at.exception
    table = at.dataframe[0].value
    assert {"kind", "key", "camelot", "category"} <= set(table.columns)
    row = table.set_index("filename").loc["Progression_Fm.wav"]
    fm = library.tracks(name="Progression_Fm")[0]
    assert (row["kind"], row["key"], row["camelot"], row["category"]) == (fm.kind, "F minor", "4A", fm.category)

    widget(at.multiselect, "Kind").select("loop").run()
    assert not at.exception
    assert set(at.dataframe[0].value["filename"]) == names(library, kinds=("loop",)) >= {"groove_120.wav"}
    widget(at.multiselect, "Kind").set_value([]).run()

    at.selectbox[0].select("Key").run()  # sort: round the Camelot wheel (1A, 1B, 2A ...), keyless last
    codes = list(at.dataframe[0].value["camelot"])
    known = [c for c in codes if isinstance(c, str)]
    assert len(known) >= 3 and known == sorted(known, key=lambda code: (int(code[:-1]), code[-1]))
    assert codes[: len(known)] == known
    at.selectbox[0].select("Kind").run()
    kinds = [k for k in at.dataframe[0].value["kind"]]
    assert kinds == sorted(kinds) and len(set(kinds)) > 1
    at.selectbox[0].select("Category").run()
    cats = list(at.dataframe[0].value["category"])
    assert cats == sorted(cats)

    widget(at.selectbox, "Key").select("F minor (4A)").run()
    assert set(at.dataframe[0].value["filename"]) == names(library, key="F minor") >= {"Progression_Fm.wav"}
    widget(at.toggle, "Also keys that mix with it").set_value(True).run()
    shown = set(at.dataframe[0].value["filename"])
    assert shown == names(library, compatible_with="F minor") >= {"Progression_Fm.wav", "Progression_Cm.wav"}
    assert "Progression_E.wav" not in shown
    widget(at.multiselect, "Category").select(fm.category).run()
    assert not at.exception
    both = names(library, compatible_with="F minor", categories=(fm.category,))
    assert set(at.dataframe[0].value["filename"]) == both and "Progression_Fm.wav" in both
    widget(at.multiselect, "Category").set_value([c for c in CATEGORIES if c != fm.category]).run()
    if names(library, compatible_with="F minor", categories=tuple(c for c in CATEGORIES if c != fm.category)):
        assert "Progression_Fm.wav" not in set(at.dataframe[0].value["filename"])
    else:
        assert "No tracks match" in at.info[0].value


def test_home_shows_the_analysis_progress(app, audio_dir, monkeypatch):
    library = populate(audio_dir)
    running = {"running": True, "done": 120, "total": 5000, "failed": [], "error": None}
    monkeypatch.setattr(library, "reanalyse_state", lambda: running)
    at = app()
    assert not at.exception
    [bar] = at.get("progress")
    assert bar.text.startswith("Analysing existing samples: 120 of 5,000") and bar.value == 2
    running.update(running=False, error="the disk is full")
    at.run()
    assert not at.exception and not at.get("progress")
    assert "stopped" in at.error[0].value and "the disk is full" in at.error[0].value


def test_warm_up_reanalyses_old_tracks_and_home_says_how_it_went(app, monkeypatch, tmp_path):
    import ui
    from tests.fixtures_audio import sine, write_audio

    monkeypatch.setattr(ui, "WARM_UP_DELAY_S", 3600.0)  # the test runs the warm-up itself
    root = tmp_path / "Samples"
    write_audio(root / "stays.wav", sine(300, 0.5), 44_100)
    write_audio(root / "goes.wav", sine(500, 0.5), 44_100)
    library = ui.library()
    library.add_folder(root, watch=False)
    library._store.db.execute("age the library", "DELETE FROM descriptions")  # as an older version left it
    assert library.outdated() == 2
    (root / "goes.wav").unlink()
    ui._warm_model(library)
    deadline = time.monotonic() + 120
    while library.reanalyse_state()["running"]:
        assert time.monotonic() < deadline, "the reanalysis did not finish"
        time.sleep(0.1)
    state = library.reanalyse_state()
    assert state["error"] is None and (state["done"], state["total"]) == (2, 2)
    assert [f["source"] for f in state["failed"]] == ["goes.wav"]
    assert library.outdated() == 1 and library.tracks(name="stays")[0].kind == "one-shot"
    at = app()
    assert not at.exception
    assert "1 of 2 existing samples could not be analysed" in at.warning[0].value
    [why] = [c.value for c in at.caption if "goes.wav" in c.value]
    assert "is gone" in why
