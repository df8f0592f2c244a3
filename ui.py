"""The dashboard's only link to the engine: cached, process-wide accessors.

Pages call these and nothing else for engine objects, so caching policy
lives in one place: ``st.cache_resource`` for what exists once per process
(the library with its DuckDB connection, the background import worker) and
``st.cache_data`` for analytics frames, keyed by the library's revision so
a new upload shows up on the next render without a restart.
"""

from __future__ import annotations

import threading

import streamlit as st

from engine import analytics
from engine.config import load_settings
from engine.embeddings import get_embedder
from engine.errors import EngineError
from engine.library import Library
from engine.worker import IngestWorker


def _use_app_navigation() -> None:
    """Route every URL through app.py's st.navigation.

    Streamlit still honours its legacy "pages/ folder" mode until the first
    st.navigation call in the process: a fresh server's first visitor to
    /search would get pages/search.py alone, without app.py and its menu.
    Every page imports this module first, so switching the mode off here and
    rerunning sends that one request through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_use_app_navigation()


@st.cache_resource(show_spinner=False)
def library() -> Library:
    lib = Library(load_settings())
    # Load CLAP in the background so the first search does not pay for it;
    # a failure is remembered by the engine and shown on the Home page.
    threading.Thread(target=_warm_model, args=(lib,), name="clap-warm-up", daemon=True).start()
    return lib


def _warm_model(lib: Library) -> None:
    try:
        get_embedder(lib.settings)
    except EngineError:
        pass


@st.cache_resource(show_spinner=False)
def worker() -> IngestWorker:
    return IngestWorker(library().ingestor)


def revision() -> int:
    return library().store.revision


@st.cache_data(show_spinner=False, max_entries=8)
def charts(revision: int) -> dict:
    """Every analytics frame for one library revision."""
    store = library().store
    kind, scatter = analytics.tempo_vs_centroid(store)
    return {
        "tempo": analytics.tempo_histogram(store),
        "centroid": analytics.centroid_histogram(store),
        "duration": analytics.duration_histogram(store),
        "loudness": analytics.loudness_histogram(store),
        "scatter_kind": kind,
        "scatter": scatter,
    }


def show_error(error: EngineError) -> None:
    """Render an engine error the same way everywhere."""
    st.error(f"**{error.title}**: {error.message}" + (f"\n\n{error.hint}" if error.hint else ""))


def format_duration(seconds: float | None) -> str:
    if not seconds:
        return "0:00"
    if seconds < 10:
        return f"{seconds:.2f} s"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def play(track_or_hit, *, start: float | None = None) -> None:
    """An audio player for a track or hit, starting at ``start`` seconds."""
    path = library().audio_path(track_or_hit) if isinstance(track_or_hit, dict) else track_or_hit.path
    try:
        st.audio(str(path), start_time=int(start or 0))
    except (OSError, FileNotFoundError):
        st.warning(f"The file {path} cannot be read; it may have been moved or deleted.")


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
