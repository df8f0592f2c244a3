"""Collections: named, ordered lists of tracks; make one, play and reorder nothing by accident, take one
out to a DAW as CSV, an M3U playlist or a zip of its audio."""

import streamlit as st

import ui
from engine.errors import EngineError

ui.require_login()
st.title("Collections")
library = ui.library()

with st.form("new-collection", clear_on_submit=True, border=False):
    name, make = st.columns([4, 1], vertical_alignment="bottom")
    new_name = name.text_input("New collection", placeholder="e.g. Set for Friday, Dark pads")
    if make.form_submit_button("Create", icon=":material/add:"):
        try:
            st.toast(f"Created {library.create_collection(new_name)}.")
        except EngineError as error:
            ui.show_error(error)

collections = library.collections()
if not collections:
    st.info("No collections yet. Make one here, or add a track to one from the Library page's details.")
    st.stop()
chosen = st.selectbox("Collection", [c["name"] for c in collections],
                      format_func=lambda n: f"{n} ({next(c['tracks'] for c in collections if c['name'] == n)})")
name, tracks = library.collection(chosen)
st.subheader(name)
if not tracks:
    st.caption("Empty: add tracks from the Library page, or from the Map with a lasso.")
else:
    ui.downloads(tracks, name=name, key=f"collection-{name}")
for number, track in enumerate(tracks, 1):
    with st.container(border=True):
        about, play, out = st.columns([4, 3, 1], vertical_alignment="center")
        about.markdown(f"**{number}. {track.filename}**  \n{ui.format_duration(track.duration)} · "
                       + (ui.describe(track) or track.format))
        with play:  # one player at a time, made when asked for (see the Search page)
            if st.session_state.get("playing") == track.id:
                ui.play(track, autoplay=st.session_state.pop("play_now", False))
            elif st.button("Play", key=f"play-{track.id}", icon=":material/play_arrow:"):
                st.session_state.playing, st.session_state.play_now = track.id, True
                st.rerun()
        if out.button("", icon=":material/playlist_remove:", key=f"out-{track.id}",
                      help="Take it out of this collection (it stays in the library)"):
            library.remove_from_collection(name, [track.id])
            st.rerun()
confirm = st.checkbox(f"Yes, delete the collection {name} (its tracks stay in the library)", key=f"drop-{name}")
if st.button("Delete collection", disabled=not confirm):
    library.delete_collection(name)
    st.toast(f"Deleted {name}.")
    st.rerun()
