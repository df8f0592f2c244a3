"""Folders: the sample folders the library indexes in place, synced and watched."""

import pandas as pd
import streamlit as st

import ui
from engine.errors import EngineError

ui.require_login()
st.title("Folders")
library = ui.library()
st.caption("Your samples stay where they are: the library reads them in place, follows moves and renames, "
           "and marks files that disappear as missing instead of forgetting them.")

with st.form("add-folder", clear_on_submit=False):
    path = st.text_input("Folder", placeholder="/home/you/Samples", help="Type or paste the full path of a folder.")
    watch = st.checkbox("Watch it for changes while the dashboard runs", value=True)
    added = st.form_submit_button("Add folder", type="primary")
if added:
    try:
        library.add_folder(path, watch=watch, background=True)
        st.toast(f"Added {path.strip()}; importing in the background.")
    except EngineError as error:  # the form and the folder list stay usable
        ui.show_error(error)


st.session_state.setdefault("sync_runs_drawn", library.sync_state()["runs"])


@st.fragment(run_every=1.0)
def sync_status() -> None:
    """The background sync's live progress, then what it found."""
    state = library.sync_state()
    if not state["running"] and state["runs"] > st.session_state.sync_runs_drawn:
        st.session_state.sync_runs_drawn = state["runs"]
        st.rerun()  # the whole page: the folder table shows what the sync found
    progress = state["progress"]
    if state["running"] and progress is not None:
        if progress.phase == "scan":
            st.progress(0.0, text=f"Scanning: {progress.found:,} audio files found...")
        else:
            fraction = progress.done / progress.total if progress.total else 1.0
            st.progress(fraction, text=f"Analysing {progress.done:,} of {progress.total:,} new or changed files "
                                       f"({progress.found:,} found)")
    elif state["error"] is not None:
        ui.show_error(state["error"])
    elif state["report"] is not None:
        report = state["report"]
        st.success(ui.sync_summary(report))
        for item in report.failed[:20]:
            st.caption(f"Failed: {item['error']}")


sync_status()

folders = library.folders()
if not folders:
    st.info("No folders yet. Add the folder that holds your samples above; files you drop on the Upload page "
            "are kept inside the library instead.")
    st.stop()

st.dataframe(
    pd.DataFrame([{"folder": f.path, "tracks": f.tracks, "missing": f.missing, "watched": f.watched,
                   "last sync": f.last_sync} for f in folders]),
    hide_index=True, width="stretch",
    column_config={"last sync": st.column_config.DatetimeColumn("last sync", format="YYYY-MM-DD HH:mm")},
)
if st.button("Sync now", icon=":material/sync:", help="Rescan every folder: new, changed, moved and missing files."):
    library.start_sync()
    st.rerun()

st.subheader("A folder")
chosen = st.selectbox("Folder", [f.path for f in folders], label_visibility="collapsed")
folder = next(f for f in folders if f.path == chosen)
left, middle, right = st.columns(3)
watching = left.toggle("Watch for changes", value=folder.watched, key=f"watch-{folder.path}")
if watching != folder.watched:
    library.set_watched(folder.path, watching)
    st.rerun()
if middle.button("Sync this folder", key=f"sync-{folder.path}"):
    library.start_sync([folder.path])
    st.rerun()
confirm = right.checkbox("Yes, forget this folder", key=f"confirm-remove-{folder.path}",
                         help="Its tracks leave the library unless another folder has them too. No file is touched.")
if right.button("Remove folder", type="primary", disabled=not confirm, key=f"remove-{folder.path}"):
    try:
        removed = library.remove_folder(folder.path)
        st.toast(f"Removed {removed['removed']} and {len(removed['tracks_removed'])} tracks; your files are untouched.")
        st.rerun()
    except EngineError as error:  # e.g. removed meanwhile in another tab
        ui.show_error(error)
