"""The dashboard's only link to the engine: cached, process-wide accessors.

Pages call these and nothing else for engine objects, so caching policy
lives in one place: ``st.cache_resource`` for things that must exist once
per process (the library and its DuckDB connection).
"""

from __future__ import annotations

import streamlit as st

from engine.config import load_settings
from engine.errors import EngineError
from engine.library import Library


@st.cache_resource(show_spinner=False)
def library() -> Library:
    return Library(load_settings())


def show_error(error: EngineError) -> None:
    """Render an engine error the same way everywhere."""
    st.error(f"**{error.title}**: {error.message}" + (f"\n\n{error.hint}" if error.hint else ""))


def format_duration(seconds: float | None) -> str:
    if not seconds:
        return "0:00"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
