"""Map: every track as a point, placed by how it sounds; play one, or lasso some into a collection."""

import streamlit as st

import ui
from engine.errors import EngineError, InputError
from engine.library import Filters
from ui_map import COLOUR_BY, MAP_CONFIG, map_figure, selected_ids

POLL_S = 1.5

ui.require_login()
st.title("Map")
st.caption("Every track as a point, placed by its CLAP embedding: tracks close together sound alike. Click a point "
           "to play it; pick the lasso or box select in the chart's toolbar and draw around some to make a "
           "collection of them.")
library = ui.library()

# The map is made in the background (a full layout of 100k tracks takes tens of seconds), once per library
# revision; while the library changes, the latest map stays on screen and is brought up to date.
state = library.sound_map_state()
if not state["current"] and state["status"] in ("idle", "ready"):
    library.start_sound_map()
    state = library.sound_map_state()
running = state["status"] == "running"


@st.fragment(run_every=POLL_S if running else None)
def progress() -> None:
    now = library.sound_map_state()
    if running and now["status"] != "running":
        st.rerun()  # the whole page: the new map is drawn, and nothing polls any more
    if now["status"] == "running":
        st.info("Laying out the map..." if now["tracks"] is None else
                "The library has changed: updating the map (the one below is from before).",
                icon=":material/hourglass_top:")


progress()
if state["status"] == "error":
    st.error(f"**The map could not be made**: {state['error']}")
    if st.button("Try again"):
        library.start_sound_map()
        st.rerun()

with st.expander("Filters"):
    described = ui.description_filters()
    kept = ui.kept_filters()
try:
    filters = Filters(**described, **kept)
except InputError as error:  # the filters stay on screen, to be changed
    ui.show_error(error)
    st.stop()
colour = st.segmented_control("Colour by", list(COLOUR_BY), default="category", format_func=str.capitalize,
                              required=True)

if state["tracks"] is None:  # none made yet: the progress above says so
    st.stop()
if state["tracks"] == 0:
    st.info("Nothing to map yet: tracks appear here once the model has embedded them. Add a folder on the "
            "**Folders** page, or files on the **Upload** page.")
    st.stop()
frame = library.sound_map(filters, wait=False)
if frame is None or frame.empty:
    st.info("No tracks match the filters.")
    st.stop()

figure, rows = map_figure(frame, colour=colour)
event = st.plotly_chart(figure, key="sound-map", on_select="rerun", selection_mode=("points", "lasso", "box"),
                        config=MAP_CONFIG, width="stretch")
total = f"{state['tracks']:,} track" + ("s" if state["tracks"] != 1 else "")
shown = f"{len(frame):,} of {total}" if len(frame) < state["tracks"] else total
st.caption(f"{shown}. Drag to move, scroll to zoom, double-click to see the whole map again; click a name in the "
           "legend to hide its points.")

selection = event.selection
chosen = selected_ids(selection.points, rows, frame)
if len(chosen) == 1 and not (selection.box or selection.lasso):
    try:
        track = library.track(chosen[0])
    except EngineError as error:  # removed since the map was made
        ui.show_error(error)
    else:
        st.markdown(f"**{track.filename}**  \n{ui.describe(track) or track.format} · "
                    f"{ui.format_duration(track.duration)}")
        # Starts by itself when a point is picked, not again on every later rerun.
        autoplay = st.session_state.get("map_played") != track.id
        st.session_state.map_played = track.id
        ui.play(track, autoplay=autoplay)
elif chosen:
    names = frame.set_index("id").loc[chosen[:5], "filename"].tolist()
    more = f" and {len(chosen) - 5:,} more" if len(chosen) > 5 else ""
    st.markdown(f"**{len(chosen):,} tracks selected**: {', '.join(names)}{more}")
    with st.form("map-collection", border=False):
        name, make = st.columns([4, 2], vertical_alignment="bottom")
        new_name = name.text_input("Collection name", placeholder="e.g. Dark pads from the map")
        if make.form_submit_button("Make a collection from these", icon=":material/playlist_add:"):
            try:
                made = library.create_collection(new_name)
                library.add_to_collection(made, chosen)
            except EngineError as error:  # a name in use, an empty one, a track removed meanwhile
                ui.show_error(error)
            else:
                st.success(f"Made the collection {made} with {len(chosen):,} tracks: it is on the Collections page.")
