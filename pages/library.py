"""Library: browse, sort and filter every track; inspect, play and delete one."""

import pandas as pd
import streamlit as st

import ui
from engine.errors import EngineError, InputError
from engine.library import Filters

PAGE_SIZE = 100
FORMATS = ["wav", "aiff", "flac", "mp3", "ogg", "opus", "m4a"]
SORTS = {"Newest": ("created_at", True), "Name": ("filename", False), "Tempo": ("tempo", False),
         "Duration": ("duration", False), "Brightness (centroid)": ("spectral_centroid", False),
         "Loudness (RMS)": ("rms_energy", True), "Kind": ("kind", False), "Key": ("key", False),
         "Category": ("category", False)}

ui.require_login()
st.title("Library")
library = ui.library()

name, sort, formats, gone = st.columns([2, 1, 1, 1])
query = name.text_input("Filter by name")
sort_key, descending = SORTS[sort.selectbox("Sort by", list(SORTS))]
chosen_formats = tuple(formats.multiselect("Formats", FORMATS))
missing = gone.toggle("Missing tracks", help="Tracks whose files are all gone: kept until their files come back "
                                             "or you remove them here.")
described = ui.description_filters()
kept = ui.kept_filters()
try:
    filters = Filters(formats=chosen_formats, **described, **kept)
except InputError as error:  # the filters stay on screen, to be changed
    ui.show_error(error)
    st.stop()

total = library.count(filters, name=query or None, missing=missing)
if missing and total:
    confirm = st.checkbox(f"Yes, remove all {library.count(missing=True):,} missing tracks from the library",
                          key="confirm-prune")
    if st.button("Remove missing tracks", disabled=not confirm, help="Only the library's rows; no file is touched."):
        pruned = library.prune_missing()
        st.toast(f"Removed {len(pruned):,} missing tracks.")
        st.rerun()
if total == 0:
    if missing:
        st.info("No track is missing: every file is where the library last saw it.")
    else:
        st.info("No tracks match." if query or filters != Filters() else
                "Your library is empty: add a folder on the Folders page, or files on the Upload page.")
    st.stop()
pages = (total - 1) // PAGE_SIZE + 1
page = st.number_input(f"Page (of {pages})", 1, pages, 1) if pages > 1 else 1
tracks = library.tracks(filters, name=query or None, missing=missing, sort=sort_key, descending=descending,
                        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
table = pd.DataFrame([{**track.to_dict(), "category": track.category, "tags": ", ".join(track.tags)}
                      for track in tracks])[
    ["favourite", "filename", "kind", "key", "camelot", "category", "tags", "duration", "tempo", "spectral_centroid",
     "rms_energy", "zero_crossing_rate", "format", "sample_rate", "channels", "created_at", "id"]]
selection = st.dataframe(
    table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
    column_config={
        "duration": st.column_config.NumberColumn("duration (s)", format="%.2f"),
        "tempo": st.column_config.NumberColumn("tempo (BPM)", format="%.1f"),
        "spectral_centroid": st.column_config.NumberColumn("centroid (Hz)", format="%.0f"),
        "rms_energy": st.column_config.NumberColumn("RMS", format="%.4f"),
        "zero_crossing_rate": st.column_config.NumberColumn("ZCR", format="%.4f"),
        "sample_rate": st.column_config.NumberColumn("rate (Hz)"),
        "created_at": st.column_config.DatetimeColumn("added"),
        "favourite": st.column_config.CheckboxColumn("★", width="small"),
    },
)
st.caption(f"{total:,} tracks. Select a row for details.")

rows = selection.selection.rows
if rows:
    track = tracks[rows[0]]
    st.subheader(track.filename)
    ui.draw_waveform(track)
    ui.play(track)
    keep, download = st.columns([12, 1], vertical_alignment="center")
    with keep:
        ui.keep_controls(track, key=f"detail-{track.id}", known=[tag for tag, _ in library.tags()])
    with download:
        ui.download_file(track, key=f"detail-{track.id}")
    ui.collect(track)
    st.json({key: (str(value) if value is not None else None) for key, value in track.to_dict().items()},
            expanded=False)
    confirm = st.checkbox("Yes, remove this track from the library", key=f"confirm-{track.id}")
    kept = "" if track.storage == "managed" else " Your original file stays where it is."
    if st.button("Delete track", type="primary", disabled=not confirm, help="Removes the library's rows and copy."):
        try:
            library.delete(track.id)
            st.toast(f"Deleted {track.filename}.{kept}")
            st.rerun()
        except EngineError as error:  # the table stays usable; the track may have gone meanwhile
            ui.show_error(error)
