"""End to end in a real browser: the real server (serve.py, as `make run` starts it), Debian's Chromium.

Skips where /usr/bin/chromium is missing, unless TRAUM_REQUIRE_BROWSER=1
(set by .ci/run), where that is a failure instead.
"""

import json
import os
import time
from pathlib import Path

import pytest

from tests.fixtures_server import call, environment_for, multipart, run_cli, serving

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"


def _require_browser():
    required = os.environ.get("TRAUM_REQUIRE_BROWSER") == "1"
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing but TRAUM_REQUIRE_BROWSER=1 (install Debian's chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}; install Debian's chromium to run the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("playwright is not installed but TRAUM_REQUIRE_BROWSER=1")
        pytest.skip("playwright is not installed")


@pytest.fixture
def server(tmp_path, tiny_clap_dir):
    _require_browser()
    with serving(tmp_path, tiny_clap_dir) as url:
        yield url


@pytest.fixture
def page(server, request):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(60_000)
        yield tab
        if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


def test_upload_search_analytics_delete(page, server, audio_dir, tmp_path):
    from playwright.sync_api import expect

    files = [audio_dir / "sine440.wav", audio_dir / "formats" / "mix.flac"]
    page.goto(f"{server}/upload")
    expect(page.get_by_role("heading", name="Upload")).to_be_visible()
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    expect(page.get_by_text("mix.flac").first).to_be_visible()
    page.get_by_role("button", name="Import").click()
    # The status line refreshes every second while the background worker runs.
    expect(page.get_by_text("2 added")).to_be_visible(timeout=120_000)
    page.goto(f"{server}/library")
    expect(page.get_by_text("2 tracks.")).to_be_visible()

    page.goto(f"{server}/search")
    prompt = page.get_by_label("Prompt")
    prompt.fill("a clean sine tone")
    prompt.press("Enter")
    expect(page.get_by_text("1. ", exact=False).first).to_be_visible()
    players = page.locator("[data-testid=stAudio]")
    expect(players).to_have_count(0)  # a player is made when asked for
    playing = ("() => { const a = document.querySelectorAll('[data-testid=stAudio]');"
               " return a.length === 1 && !a[0].paused && a[0].currentTime > 0; }")
    # The hits' Play buttons by their keys ("play-<id>"): the results' "M3U playlist" download is a button too.
    plays = page.locator("[class*='st-key-play-'] button")
    plays.first.click()
    page.wait_for_function(playing, timeout=10_000)
    plays.first.click()  # the other hit's: it replaces the first player
    expect(plays).to_have_count(1)
    page.wait_for_function(playing, timeout=10_000)

    # Home has the browser load the chart library while it sits idle ...
    page.goto(server)
    expect(page.get_by_text("Pending embeddings")).to_be_visible()
    page.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => e.name.includes('/PlotlyChart.'))",
        timeout=30_000)
    # ... so Analytics, opened from the sidebar, only draws.
    page.get_by_role("link", name="Analytics").click()
    # (Drawing five charts takes seconds on a loaded two-core machine: more than expect's default 5 s.)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    assert page.evaluate("performance.getEntriesByType('resource')"
                         ".filter(e => e.name.includes('/PlotlyChart.')).length") == 1

    page.goto(f"{server}/library")
    grid = page.locator("[data-testid=stDataFrame]").first
    expect(grid).to_be_visible()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box
    page.get_by_text("Yes, remove this track from the library").click()
    page.get_by_role("button", name="Delete track").click()
    expect(page.get_by_text("1 tracks.")).to_be_visible()
    # Uploads are managed copies: deleting one removes its copy, leaving exactly one.
    stored = [p for p in (tmp_path / "data" / "audio").rglob("*") if p.is_file()]
    assert len(stored) == 1


def test_add_a_folder_and_a_saved_file_becomes_searchable(page, server, audio_dir, tmp_path):
    import shutil

    from playwright.sync_api import expect

    root = tmp_path / "My Samples"
    shutil.copytree(audio_dir / "formats", root)
    (root / "mix.wav.asd").write_bytes(b"clutter")
    page.goto(f"{server}/folders")
    expect(page.get_by_text("No folders yet")).to_be_visible()
    page.get_by_placeholder("/home/you/Samples").fill(str(root))
    page.get_by_role("button", name="Add folder").click()
    expect(page.get_by_text("Sync finished: 4 added")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("1 skipped (not audio)", exact=False)).to_be_visible()

    # Saved into the watched folder while the dashboard runs: in the library within seconds.
    shutil.copy(audio_dir / "sine440.wav", root / "a new sine.wav")
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{server}/library")
        expect(page.get_by_text("tracks. Select a row", exact=False)).to_be_visible()
        if page.get_by_text("5 tracks.").count():
            break
        assert time.monotonic() < deadline, "the saved file did not reach the library"
        time.sleep(1)
    page.goto(f"{server}/search")
    prompt = page.get_by_label("Prompt")
    prompt.fill("a clean sine tone")
    prompt.press("Enter")
    expect(page.get_by_text("a new sine.wav").first).to_be_visible()


@pytest.fixture
def locked_server(tmp_path, tiny_clap_dir, monkeypatch, audio_dir):
    from engine.auth import hash_password
    from engine.config import Settings
    from engine.library import Library

    with Library(Settings(data_dir=tmp_path / "data")) as library:
        library.ingest_upload("secret.wav", (audio_dir / "sine440.wav").read_bytes())
    monkeypatch.setenv("TRAUM_AUTH_PASSWORD_HASH", hash_password("open sesame"))
    return tmp_path


def test_password_mode_in_a_real_browser(locked_server, page, server):
    from playwright.sync_api import expect

    for path in ("library", "search", "upload", "analytics", ""):
        page.goto(f"{server}/{path}")
        expect(page.get_by_label("Password", exact=True)).to_be_visible()
        assert page.locator("[data-testid=stDataFrame]").count() == 0
        assert page.locator("audio").count() == 0
    page.get_by_label("Password", exact=True).fill("open sesame")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Pending embeddings")).to_be_visible()


def test_the_pages_show_what_the_api_and_the_cli_changed(page, server, audio_dir, tmp_path, tiny_clap_dir):
    from playwright.sync_api import expect

    api = f"{server}/api/v1"
    status, [accepted] = call(f"{api}/audio/upload", "POST",
                              *multipart([("sine440.wav", (audio_dir / "sine440.wav").read_bytes())]))
    assert status == 202
    deadline = time.monotonic() + 120
    while (job := call(f"{api}/audio/status/{accepted['job_id']}")[1])["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert job["status"] == "added"
    page.goto(f"{server}/library")
    expect(page.get_by_text("1 tracks.")).to_be_visible()

    # The CLI, while the server holds the library, goes through it: the page sees the change.
    environment = environment_for(tmp_path, tiny_clap_dir)
    done = run_cli(environment, "ingest", str(audio_dir / "formats"), "--json")
    assert done.returncode == 0 and len(json.loads(done.stdout)["added"]) == 4, done.stderr
    page.goto(f"{server}/library")
    expect(page.get_by_text("5 tracks.")).to_be_visible()
    assert run_cli(environment, "delete", job["audio_file_id"]).returncode == 0
    page.goto(f"{server}/library")
    expect(page.get_by_text("4 tracks.")).to_be_visible()
    page.goto(f"{server}/folders")
    # The folder the import came from is a library folder now (a cell of the grid, drawn on a canvas).
    expect(page.locator("[role=gridcell]").filter(has_text=str(audio_dir / "formats")).first).to_be_attached()


def test_star_tag_download_a_hit_and_see_the_map(page, server, audio_dir, tmp_path, tiny_clap_dir):
    from playwright.sync_api import expect

    environment = environment_for(tmp_path, tiny_clap_dir)
    done = run_cli(environment, "ingest", str(audio_dir / "sine440.wav"), str(audio_dir / "click120.wav"), "--json")
    assert done.returncode == 0, done.stderr
    ids = {Path(item["path"]).name: item["id"] for item in json.loads(done.stdout)["added"]}
    page.goto(f"{server}/search")
    prompt = page.get_by_label("Prompt")
    prompt.fill("a clean sine tone")
    prompt.press("Enter")
    expect(page.get_by_text("2 results for", exact=False)).to_be_visible()
    expect(page.get_by_role("img", name="waveform")).to_have_count(2)  # each hit's waveform overview
    first = page.get_by_text("1. ", exact=False).first.inner_text().split("1. ", 1)[1].split("\n")[0].strip()
    track = ids[first]

    star = page.locator(f".st-key-star-{track} button").first
    expect(star).to_contain_text("star_outline icon")
    star.click()
    expect(page.locator(f".st-key-star-{track} button").first).to_contain_text("star icon")  # filled now
    tags = page.locator(f".st-key-tags-{track} input")
    tags.click()
    tags.fill("keeper")
    tags.press("Enter")
    page.keyboard.press("Escape")
    deadline = time.monotonic() + 30
    while True:  # saved as it is made: the library has it
        [starred] = json.loads(run_cli(environment, "list", "--favourite", "--json").stdout) or [None]
        if starred is not None and starred["tags"] == ["keeper"]:
            break
        assert time.monotonic() < deadline, starred
        time.sleep(1)
    assert starred["filename"] == first and starred["favourite"]

    with page.expect_download() as download:
        page.locator(f".st-key-download-{track} button").first.click()
    saved = tmp_path / "downloaded"
    download.value.save_as(saved)
    assert saved.read_bytes() == Path(starred["locations"][0]).read_bytes()

    # The map: both tracks as points (drawn with WebGL), counted under the chart.
    page.get_by_role("link", name="Map").click()
    expect(page.get_by_text("2 tracks.", exact=False)).to_be_visible(timeout=60_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    drawn = page.evaluate("() => { const plot = document.querySelector('.js-plotly-plot');"
                          " return plot._fullData.reduce((n, trace) => n + (trace._length || 0), 0); }")
    assert drawn == 2
