"""The dashboard's helpers: the cached library, login, error display, players, filters and charts.

Pages reach the engine only through ``ui.library()``, the process-wide
:class:`~engine.library.Library`, so caching policy lives in one place:
``st.cache_resource`` for what exists once per process (the library with its
DuckDB connection and background import worker) and ``st.cache_data`` for
analytics figures, keyed by the library's revision so a new upload shows up
on the next render without a restart. Engine errors are shown by app.py
around every page (``show_error``); a page catches one itself only where it
must carry on.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from pathlib import Path

import streamlit as st

from engine.auth import verify_password
from engine.config import Settings, load_settings
from engine.errors import EngineError
from engine.library import CATEGORIES, KINDS, Filters, Library


def _leave_legacy_pages_mode(*, from_app: bool) -> None:
    """Route every URL through app.py's st.navigation.

    Streamlit honours its legacy "pages/ folder" mode until the first
    st.navigation call in a process: a fresh server's first visitor to
    /search gets pages/search.py alone, without app.py and its menu. The
    page switches the mode off and reruns, so that request goes through
    app.py, under its error boundary. (Under AppTest, which resets the mode
    before every run, no rerun: it would swallow the widget event under test.
    tests/test_app.py serves pages the way a running server does.)
    """
    from streamlit.runtime import Runtime
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not from_app and type(Runtime.instance()) is Runtime:
            st.rerun()


log = logging.getLogger(__name__)

WARM_UP_DELAY_S = 2.0
_warm_ups: dict[int, threading.Timer] = {}  # id(library) -> its warm-up, until released
PRELOAD_DELAY_MS = 500  # after Home is drawn


# What the two process-wide resources below hold now, for the server's API, which asks for both at
# every request: a cache_resource hit hashes the call and replays its messages (18 us with warm caches,
# more after a search's scan has evicted them). Set when a value is made, dropped when the cache lets go
# of it (a clear releases).
_held: dict[str, object] = {}


def _hold(name: str, value):
    _held[name] = value
    return value


def _let_go(name: str, value) -> None:
    if _held.get(name) is value:
        del _held[name]


@st.cache_resource(show_spinner=False, on_release=lambda value: _let_go("settings", value))
def settings() -> Settings:
    return _hold("settings", load_settings())


def held_settings() -> Settings:
    """``settings()`` without the cache's per-call cost once it is made."""
    held = _held.get("settings")
    return held if held is not None else settings()


def held_library() -> Library:
    """``library()`` without the cache's per-call cost once it is made (the server's API)."""
    held = _held.get("library")
    return held if held is not None else library()


def _release(lib: Library) -> None:
    """When the cached library is dropped (tests, a settings reload): no warm-up starts any more,
    the watcher stops and the file is closed."""
    _let_go("library", lib)
    timer = _warm_ups.pop(id(lib), None)
    if timer is not None:
        timer.cancel()
    lib.close()


@st.cache_resource(show_spinner=False, on_release=_release)
def library() -> Library:
    lib = Library(settings())
    # Load CLAP and the vector index in the background so the first search does not pay for them,
    # a moment after start-up so the first page is drawn before the model
    # competes for the CPU. A failure is remembered and shown on Home.
    warm = threading.Timer(WARM_UP_DELAY_S, _warm_model, args=(lib,))
    warm.name, warm.daemon = "clap-warm-up", True
    _warm_ups[id(lib)] = warm
    warm.start()
    return _hold("library", lib)


def _warm_model(lib: Library) -> None:
    steps = (
        # Importing plotly and drawing the figures take most of a second: do it
        # before anyone opens Analytics.
        lambda: chart_figures(lib.revision, lib, Filters()),
        lib.prepare_search,
        # Tracks an older analysis described get kind, key and categories, in the background;
        # after the model, so their categories are scored as the pass ends.
        lambda: lib.outdated() > 0 and lib.start_reanalyse(),
        lib.start_watching,  # after the model, so a catch-up import embeds as it goes
    )
    for step in steps:
        if id(lib) not in _warm_ups:  # released meanwhile
            return
        try:
            step()
        except EngineError:
            pass  # remembered where it matters (the model's failure is shown on Home)
        except Exception:  # e.g. the system's inotify limit: the dashboard works without watching
            log.exception("warm-up step failed")


def warming_up(lib: Library) -> bool:
    """Whether the library's warm-up is still under way (it may yet start a reanalysis)."""
    timer = _warm_ups.get(id(lib))
    return timer is not None and timer.is_alive()


def charts(filters: Filters = Filters()) -> dict | None:
    """The analytics figures of the library as it is now, of the tracks passing ``filters`` (None
    when there are none): tempo (None when no track has a pulse), centroid, duration, loudness and
    scatter; and what the samples are: kinds, keys (None when no track has a key) and categories
    (None when none is scored)."""
    lib = library()
    return chart_figures(lib.revision, lib, filters)


@st.cache_data(show_spinner=False, max_entries=8)
def chart_figures(revision: int, _lib: Library, filters: Filters = Filters()) -> dict | None:
    """charts() for one library revision; ``_lib`` is left out of the cache key."""
    import plotly.express as px

    data = _lib.distributions(filters)
    if data is None:
        return None
    tempo, scatter, kind = data["tempo"], data["scatter"], data["scatter_kind"]
    labels = {"tempo": "BPM", "spectral_centroid": "Hz"}
    if scatter.empty:
        scatter_figure = None
    elif kind == "points":
        scatter_figure = px.scatter(scatter, x="tempo", y="spectral_centroid", hover_name="filename",
                                    title="Tempo vs spectral centroid", labels=labels)
    else:
        scatter_figure = px.density_heatmap(scatter, x="tempo", y="spectral_centroid", z="count", histfunc="sum",
                                            nbinsx=40, nbinsy=48, title="Tempo vs spectral centroid (tracks per cell)",
                                            labels=labels)
    return {
        "tempo": None if tempo.empty else histogram(tempo, bin_width=data["tempo_bin_bpm"], title="Tempo", unit="BPM"),
        "centroid": histogram(data["centroid"], bin_width=data["centroid_bin_hz"], title="Spectral centroid (brightness)",
                              unit="Hz"),
        "duration": px.bar(data["duration"], x="band", y="count", title="Duration",
                           labels={"band": "", "count": "tracks"}),
        "loudness": histogram(data["loudness"], bin_width=data["loudness_bin_db"], title="RMS level", unit="dBFS"),
        "scatter": scatter_figure,
        "kinds": px.bar(data["kinds"], x="kind", y="count", title="Kind", labels={"kind": "", "count": "tracks"}),
        "keys": None if data["keys"]["count"].sum() == 0 else key_wheel(data["keys"]),
        "categories": None if data["categories"].empty else category_bars(data["categories"]),
    }


def duplicate_groups(threshold: float, *, revision: int | None = None) -> list:
    """The library's near-duplicate groups at ``threshold`` (DuplicateGroup: tracks, pairs), as of
    ``revision``, by default the library's now. The Duplicates page passes the revision it searched
    at, so removing a copy there does not start the search over: at 100k tracks it takes two minutes."""
    lib = library()
    return duplicate_groups_at(lib.revision if revision is None else revision, lib, threshold)


@st.cache_data(show_spinner=False, max_entries=4)
def duplicate_groups_at(revision: int, _lib: Library, threshold: float) -> list:
    """duplicate_groups() for one library revision and threshold; ``_lib`` is left out of the cache key."""
    return _lib.duplicates(threshold=threshold)


@functools.cache
def _plotly_bundle() -> str | None:
    """The file name of Streamlit's plotly chunk (it is named by a content hash), or None."""
    found = sorted((Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js"))
    return found[0].name if found else None


def preload_chart_library() -> None:
    """Have the browser load Streamlit's plotly bundle while Home sits idle.

    The first chart a browser draws makes it fetch, compile and run a 4.7 MB
    module: one 0.8 s main-thread task, which was most of Analytics' 1.6 to
    2.4 s. Run while Home is on screen, it costs nothing anyone waits for, and
    the browser keeps the compiled code, so later visits skip it. Only Home
    does this: on Search the same task would land between a prompt and its
    hits. Nothing is injected when the chunk is not where this Streamlit keeps it.
    """
    bundle = _plotly_bundle()
    if bundle is None:
        return
    # Resolved against the entry script's own URL, so any base path works, and the
    # same URL as Streamlit's own lazy import, so the module is loaded once.
    st.sidebar.html(f"""<script>
(() => {{
  const self = document.currentScript;
  const entry = document.querySelector('script[type="module"][src*="static/js/index."]');
  if (!self || !entry) return;
  const load = () => {{
    if (!self.isConnected || window.traumChartsPreloaded) return;  // Home was left, or done before
    window.traumChartsPreloaded = true;
    import(new URL({bundle!r}, entry.src).href).catch(() => {{}});
  }};
  setTimeout(() => window.requestIdleCallback ? requestIdleCallback(load, {{timeout: 3000}}) : load(),
             {PRELOAD_DELAY_MS});
}})();
</script>""", unsafe_allow_javascript=True)


def require_login(*, from_app: bool = False) -> None:
    """Stop this run unless the visitor may use the dashboard.

    OIDC through st.login when an [auth] section exists in
    .streamlit/secrets.toml; otherwise a password when
    TRAUM_AUTH_PASSWORD_HASH is set; otherwise open (localhost only by default).
    app.py and every page call it, so no page renders without it, however
    it is reached.
    """
    _leave_legacy_pages_mode(from_app=from_app)
    if _oidc_configured():
        if not getattr(st.user, "is_logged_in", False):
            st.title("Traum-Engine")
            st.button("Log in", type="primary", on_click=st.login)
            st.stop()
        st.sidebar.button("Log out", on_click=st.logout)
        return
    try:
        encoded = settings().auth_password_hash
    except EngineError as error:  # a broken .env or TRAUM_* value
        show_error(error)
        st.stop()
    if not encoded or st.session_state.get("authenticated"):
        if encoded:
            st.sidebar.button("Log out", on_click=lambda: st.session_state.pop("authenticated", None))
        return
    st.title("Traum-Engine")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            accepted = verify_password(password, encoded)
        except EngineError as error:
            show_error(error)
            st.stop()
        if accepted:
            st.session_state.authenticated = True
            st.rerun()
        time.sleep(1.0)  # slows guessing
        st.error("Wrong password.")
    st.stop()


def shared() -> bool:
    """Whether the dashboard is shared: a login is configured (password or OIDC), or the server
    listens on an address other than loopback. The API then answers only /health (engine.api.guard).

    Asked by the server for every API request, so the server's options (its address, where its
    secrets live), fixed while it runs, are read once: Streamlit's config costs 44 us a look."""
    try:
        password = held_settings().auth_password_hash
    except EngineError:  # a broken .env: treat as shared, the safe side
        return True
    return bool(password) or _oidc_configured() or not _listening_on_loopback()


@functools.cache
def _listening_on_loopback() -> bool:
    from streamlit import config

    from engine.api.guard import LOOPBACK_NAMES

    address = config.get_option("server.address")
    return address is not None and address.strip("[]") in LOOPBACK_NAMES


# (the secrets object, its files' stamps) when the last look found no secrets at all.
_no_secrets: tuple[object, tuple] | None = None


def _oidc_configured() -> bool:
    """Whether an OIDC login is configured (an ``[auth]`` section in the secrets).

    Streamlit keeps secrets it has read, but with no secrets file it looks for the files again
    and raises at every look (0.4 ms an API request, measured in the server), so that answer is
    kept until a secrets file appears or the secrets object is replaced."""
    global _no_secrets
    secrets = st.secrets
    stamps = _secrets_stamps()
    if _no_secrets is not None and _no_secrets[0] is secrets and _no_secrets[1] == stamps:
        return False
    try:
        return "auth" in secrets
    except Exception:  # no secrets file at all
        _no_secrets = (secrets, stamps)
        return False


def _secrets_stamps() -> tuple:
    """(path, modification time, size) of each place Streamlit reads secrets from; None where absent."""
    stamps = []
    for path in _secrets_places():
        try:
            info = os.stat(path)
        except OSError:
            stamps.append((path, None))
        else:
            stamps.append((path, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


@functools.cache
def _secrets_places() -> tuple[str, ...]:
    from streamlit import config

    return tuple(config.get_option("secrets.files") or ())


def show_error(error: EngineError) -> None:
    """Render an engine error the same way everywhere."""
    st.error(f"**{error.title}**: {error.message}" + (f"\n\n{error.hint}" if error.hint else ""))


def sync_summary(report) -> str:
    """A sync's outcome in one sentence: what changed, then what stayed."""
    parts = [(len(report.added), "added"), (len(report.changed), "changed"), (len(report.moved), "moved"),
             (len(report.restored), "back again"), (len(report.duplicates), "found in a second place"),
             (len(report.missing), "missing"), (len(report.failed), "failed"), (report.unchanged, "unchanged"),
             (report.skipped, "skipped (not audio)")]
    said = [f"{n:,} {label}" for n, label in parts if n]
    return "Sync finished: " + (", ".join(said) if said else "no audio files found") + "."


ANY_KEY = "any"


@functools.cache
def key_choices() -> dict[str, str | None]:
    """The key picker's labels ("F minor (4A)"), note by note, and the key each one filters on;
    ANY_KEY (no key filter) first."""
    from engine.keys import MODES, TONICS, camelot

    choices: dict[str, str | None] = {ANY_KEY: None}
    for tonic in TONICS:
        for mode in MODES:
            choices[f"{tonic} {mode} ({camelot(tonic, mode)})"] = f"{tonic} {mode}"
    return choices


def description_filters() -> dict:
    """The filters on what a sample is, drawn two by two: the Filters arguments chosen
    (kinds, key or compatible_with, categories)."""
    left, right = st.columns(2)
    kinds = left.multiselect("Kind", KINDS)
    categories = right.multiselect("Category", CATEGORIES)
    left, right = st.columns(2, vertical_alignment="bottom")  # the toggle level with the key's box
    key = key_choices()[left.selectbox("Key", list(key_choices()))]
    compatible = right.toggle("Also keys that mix with it", disabled=key is None,
                              help="The key, its relative major or minor, and a fifth up or down: "
                                   "the same and the neighbouring numbers on the Camelot wheel.")
    return {"kinds": tuple(kinds), "categories": tuple(categories),
            "key": None if compatible else key, "compatible_with": key if compatible else None}


ANY_COLLECTION = "any"


def kept_filters() -> dict:
    """The filters on what a person kept, on one row: favourites only, tags (every one chosen), a
    collection. The Filters arguments chosen."""
    lib = library()
    left, middle, right = st.columns(3, vertical_alignment="bottom")
    favourite = left.toggle("Favourites only")
    tags = middle.multiselect("Tags", [tag for tag, _ in lib.tags()], help="Tracks with every tag chosen.")
    collection = right.selectbox("Collection", [ANY_COLLECTION, *(c["name"] for c in lib.collections())])
    return {"favourite": favourite, "tags": tuple(tags),
            "collection": None if collection == ANY_COLLECTION else collection}


def keep_controls(item, *, key: str, known: list[str]) -> None:
    """A star and a tag editor for a track or search hit; each change is saved as it is made. ``known``:
    the library's tags (``library().tags()``, read once per page, not once per hit)."""
    star, tags = st.columns([1, 8], vertical_alignment="center")
    star.button("", icon=":material/star:" if item.favourite else ":material/star_outline:", key=f"star-{key}",
                help="Unstar" if item.favourite else "Star as a favourite", on_click=_toggle_favourite,
                args=(item.id, not item.favourite))
    widget = f"tags-{key}"
    tags.multiselect("Tags", sorted(set(known) | set(item.tags)), default=list(item.tags), key=widget,
                     accept_new_options=True, placeholder="Add tags", label_visibility="collapsed",
                     on_change=_save_tags, args=(item.id, widget, tuple(item.tags)))


def _toggle_favourite(track_id: str, on: bool) -> None:
    try:
        library().set_favourite(track_id, on)
    except EngineError as error:  # e.g. deleted in another tab meanwhile
        st.toast(f"{error.title}: {error.message}")


def _save_tags(track_id: str, widget: str, before: tuple[str, ...]) -> None:
    chosen = st.session_state[widget]
    try:
        track = library().tag(track_id, add=[t for t in chosen if t not in before],
                              remove=[t for t in before if t not in chosen])
    except EngineError as error:  # a tag that is too long, a track deleted meanwhile
        st.toast(f"{error.title}: {error.message}")
        st.session_state[widget] = list(before)
        return
    st.session_state[widget] = list(track.tags)  # as stored: lower case, once each


def collect(track) -> None:
    """Add a track to a collection, a new one or one that exists; its collections are listed."""
    lib = library()
    names = [c["name"] for c in lib.collections() if c["name"] not in track.collections]
    if track.collections:
        st.caption("In " + ", ".join(track.collections))
    choice, new, add = st.columns([2, 2, 1], vertical_alignment="bottom")
    chosen = choice.selectbox("Add to collection", ["New collection...", *names], key=f"collect-{track.id}")
    name = new.text_input("Name", key=f"collect-name-{track.id}", disabled=chosen != "New collection...",
                          placeholder="e.g. Set for Friday")
    if add.button("Add", key=f"collect-add-{track.id}", icon=":material/playlist_add:"):
        try:
            if chosen == "New collection...":
                chosen = lib.create_collection(name)
            lib.add_to_collection(chosen, [track.id])
            st.toast(f"Added {track.filename} to {chosen}.")
            st.rerun()
        except EngineError as error:
            show_error(error)


def download_file(item, *, key: str) -> None:
    """A download button for a track's or hit's audio file, read only when clicked (the browser's
    download shelf drags straight into a DAW)."""
    path = library().audio_path(item)
    st.download_button("", data=functools.partial(path.read_bytes), file_name=item.filename, key=f"download-{key}",
                       icon=":material/download:", help=f"Download {item.filename}", on_click="ignore",
                       disabled=not path.is_file())


def downloads(sounds, *, name: str, key: str) -> None:
    """CSV, M3U and zip downloads of a list of hits or tracks (made when clicked)."""
    from engine.handoff import to_csv, to_m3u, to_zip

    left, middle, right = st.columns(3)
    left.download_button("CSV", data=lambda: to_csv(sounds), file_name=f"{name}.csv", mime="text/csv",
                         key=f"csv-{key}", icon=":material/table:", on_click="ignore", width="stretch")
    middle.download_button("M3U playlist", data=lambda: to_m3u(sounds), file_name=f"{name}.m3u",
                           mime="audio/x-mpegurl", key=f"m3u-{key}", icon=":material/queue_music:",
                           on_click="ignore", width="stretch", help="Absolute paths: open it in a player or DAW.")
    right.download_button("Audio (zip)", data=lambda: to_zip(sounds), file_name=f"{name}.zip",
                          mime="application/zip", key=f"zip-{key}", icon=":material/folder_zip:",
                          on_click="ignore", width="stretch")


def draw_waveform(item, *, segment: tuple[float, float] | None = None) -> None:
    """A track's waveform overview, with ``segment`` (seconds) marked; nothing when there is none."""
    from ui_waveform import waveform_svg

    try:
        waveform = library().waveform(item.id)
    except EngineError:
        return
    if waveform is not None:  # (st.html's sanitiser keeps HTML only: an SVG goes in as an image)
        st.image(waveform_svg(waveform, segment=segment), width="stretch", alt="waveform")


def describe(hit) -> str:
    """What a search hit is, in one line: "loop · F minor (4A) · pad 62%" ("" before it is analysed)."""
    parts = [hit.kind] if hit.kind else []
    if hit.key:
        parts.append(f"{hit.key} ({hit.camelot})" if hit.camelot else hit.key)  # a bare note has no code
    if hit.category:
        score = getattr(hit, "category_score", None)  # a hit has it; a track lists its categories
        parts.append(hit.category if score is None else f"{hit.category} {score:.0%}")
    return " · ".join(parts)


def format_duration(seconds: float | None) -> str:
    if not seconds:
        return "0:00"
    if seconds < 10:
        return f"{seconds:.2f} s"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def play(track_or_hit, *, start: float | None = None, autoplay: bool = False) -> None:
    """An audio player for a track or hit, starting at ``start`` seconds."""
    try:
        path = library().audio_path(track_or_hit)
        if not path.is_file():
            st.warning(f"The file {path} is missing; it may have been moved or deleted.")
            return
        st.audio(str(path), start_time=int(start or 0), autoplay=autoplay)
    except Exception as error:  # Streamlit's media errors are not OSErrors; a player must not break the page
        st.warning(f"This file cannot be played: {error}")


def key_wheel(frame):
    """Tracks per key as a Camelot wheel: a slice per key, a fifth per step clockwise, 12 at the top;
    each minor (A) beside its relative major (B), the two modes in two colours."""
    import plotly.graph_objects as go

    figure = go.Figure()
    ticks, labels = [], []
    for mode, letter, shift in (("minor", "A", -7.5), ("major", "B", 7.5)):
        rows = frame[frame["mode"] == mode]
        angles = [(int(code[:-1]) % 12 * 30 + shift) % 360 for code in rows["camelot"]]
        figure.add_trace(go.Barpolar(
            r=rows["count"], theta=angles, width=15, name=f"{mode} ({letter})",
            customdata=rows[["key", "camelot"]].to_numpy(),
            hovertemplate="%{customdata[0]} (%{customdata[1]}): %{r} tracks<extra></extra>"))
        ticks += angles
        suffix = "m" if mode == "minor" else ""
        labels += [f"{code} {tonic}{suffix}" for code, tonic in zip(rows["camelot"], rows["tonic"])]
    figure.update_layout(title="Key (Camelot wheel)", polar={"angularaxis": {
        "direction": "clockwise", "rotation": 90, "tickmode": "array", "tickvals": ticks, "ticktext": labels}})
    return figure


def category_bars(frame):
    """Tracks per best category, horizontal, the most common at the top."""
    import plotly.express as px

    figure = px.bar(frame, x="count", y="category", orientation="h", title="Category",
                    labels={"category": "", "count": "tracks"}, height=200 + 30 * len(frame))
    figure.update_yaxes(autorange="reversed")
    return figure


def histogram(frame, *, bin_width: float, title: str, unit: str):
    """A plotly bar chart of pre-binned counts: each bar spans its bin [start, start + width)."""
    import plotly.express as px

    figure = px.bar(frame, x="bin_start", y="count", title=title, labels={"bin_start": unit, "count": "tracks"})
    figure.update_traces(width=bin_width, offset=0, hovertemplate=f"%{{x}} {unit}: %{{y}} tracks<extra></extra>")
    if len(frame):
        low, high = float(frame["bin_start"].min()), float(frame["bin_start"].max()) + bin_width
        pad = max(bin_width * 2, (high - low) * 0.05)
        figure.update_xaxes(range=[low - pad, high + pad])
    return figure
