"""Upload: drop files, watch them import in the background."""

import uuid
from collections import Counter

import pandas as pd
import streamlit as st

import ui
from engine.errors import EngineError
from engine.library import JobStatus

ui.require_login()
st.title("Upload")
library = ui.library()
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
        library.submit_uploads([(f.name, f) for f in files], batch_id=batch)  # streamed, not copied
    except EngineError as error:  # the chosen files stay in the uploader for another try
        ui.show_error(error)
    else:
        st.session_state.upload_batches.append(batch)
        st.session_state.uploader_key += 1  # a fresh, empty uploader
        st.rerun()

SHOWN = {JobStatus.DUPLICATE: "duplicate (already in library)"}  # every other status reads as it is


@st.fragment(run_every=1.0)
def progress() -> None:
    try:
        jobs = [job for batch in st.session_state.upload_batches for job in library.jobs(batch_id=batch)]
    except EngineError as error:  # a fragment reruns on its own, outside app.py's boundary
        ui.show_error(error)
        return
    if not jobs:
        st.info("No uploads in this session yet.")
        return
    counts = Counter(job.status for job in jobs)
    st.markdown(" · ".join(f"**{counts[status]} {status}**" for status in (
        JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.ADDED, JobStatus.DUPLICATE, JobStatus.FAILED) if counts[status]))
    table = pd.DataFrame({
        "file": [job.source for job in jobs],
        "status": [SHOWN.get(job.status, job.status.value) for job in jobs],
        "stage": [job.stage for job in jobs],
        "progress": [job.progress for job in jobs],
        "message": [job.message or "" for job in jobs],
        "track": [(job.track_id or "")[:12] for job in jobs],
    })
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
    })


st.subheader("This session's imports")
progress()
with st.expander("Recent imports from every session"):
    recent = library.jobs(limit=50)
    st.dataframe(pd.DataFrame([{"source": j.source, "status": j.status.value, "message": j.message,
                                "updated_at": j.updated_at} for j in recent]), hide_index=True, width="stretch")
