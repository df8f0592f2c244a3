"""Upload: drop files, watch them import in the background."""

import uuid

import pandas as pd
import streamlit as st

import ui
from engine.errors import EngineError

ui.require_login()
st.title("Upload")
library = ui.open_library()
extensions = [ext.lstrip(".") for ext in library.settings.allowed_extensions]
st.caption(f"Accepted: {', '.join(extensions)}; up to {library.settings.max_file_size_mb:.0f} MB per file.")

st.session_state.setdefault("upload_batches", [])
st.session_state.setdefault("uploader_key", 0)
files = st.file_uploader("Audio files", type=extensions, accept_multiple_files=True,
                         key=f"uploader-{st.session_state.uploader_key}")
# The count tells of files the browser refused (over the size limit): they are listed above
# with their error but never reach the server, and the list is cleared once the rest is queued.
label = f"Import {len(files)} file{'s' if len(files) != 1 else ''}" if files else "Import"
if st.button(label, type="primary", disabled=not files):
    batch = uuid.uuid4().hex
    try:
        ui.worker().submit_uploads([(f.name, f) for f in files], batch_id=batch)  # streamed, not copied
    except EngineError as error:
        ui.show_error(error)
    else:
        st.session_state.upload_batches.append(batch)
        st.session_state.uploader_key += 1  # a fresh, empty uploader
        st.rerun()

STATUS = {"queued": "queued", "running": "running", "added": "added", "duplicate": "duplicate (already in library)",
          "failed": "failed", "interrupted": "interrupted"}


@st.fragment(run_every=1.0)
def progress() -> None:
    try:
        jobs = [job for batch in st.session_state.upload_batches for job in library.store.jobs(batch_id=batch)]
    except EngineError as error:
        ui.show_error(error)
        return
    if not jobs:
        st.info("No uploads in this session yet.")
        return
    counts = pd.Series([job["status"] for job in jobs]).value_counts()
    st.markdown(" · ".join(f"**{counts.get(key, 0)} {key}**" for key in ("queued", "running", "added", "duplicate",
                                                                          "failed") if counts.get(key, 0)))
    table = pd.DataFrame({
        "file": [job["source"] for job in jobs],
        "status": [STATUS.get(job["status"], job["status"]) for job in jobs],
        "stage": [job["stage"] for job in jobs],
        "progress": [job["progress"] for job in jobs],
        "message": [job["message"] or "" for job in jobs],
        "track": [(job["track_id"] or "")[:12] for job in jobs],
    })
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
    })


st.subheader("This session's imports")
progress()
with st.expander("Recent imports from every session"):
    try:
        recent = library.store.jobs(limit=50)
    except EngineError as error:
        ui.show_error(error)
        st.stop()
    st.dataframe(pd.DataFrame([{k: j[k] for k in ("source", "status", "message", "updated_at")} for j in recent]),
                 hide_index=True, width="stretch")
