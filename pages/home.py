"""Home: the library at a glance."""

import streamlit as st

import ui
from engine.errors import EngineError

st.title("Traum-Engine")
st.caption("Your sample library, searchable by sound.")

try:
    stats = ui.library().stats()
except EngineError as error:
    ui.show_error(error)
    st.stop()

if stats["tracks"] == 0:
    st.info("Your library is empty. Import a folder with `python -m engine ingest FOLDER`.")
else:
    tracks, duration, formats = st.columns(3)
    tracks.metric("Tracks", f"{stats['tracks']:,}")
    duration.metric("Total duration", ui.format_duration(stats["total_duration_s"]))
    formats.metric("Formats", ", ".join(f"{n} {fmt}" for fmt, n in stats["formats"].items()))
st.caption(f"Library folder: `{ui.library().settings.data_dir.resolve()}`")
