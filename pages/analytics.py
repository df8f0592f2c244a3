"""Analytics: how the library is spread over tempo, brightness, length and level, and what its samples are."""

import streamlit as st

import ui
from engine.errors import InputError
from engine.library import Filters

# Two views, so a page draws five or three charts, not eight (each costs the browser a draw).
SOUND, WHAT = "How they sound", "What they are"

ui.require_login()
st.title("Analytics")
view = st.radio("View", [SOUND, WHAT], horizontal=True, label_visibility="collapsed")
with st.expander("Show only"):
    described = ui.description_filters()
try:
    filters = Filters(**described)
except InputError as error:  # the choices stay on screen, to be changed
    ui.show_error(error)
    st.stop()
figures = ui.charts(filters)

if figures is None:
    st.info("No tracks match these choices." if filters != Filters() else
            "Nothing to chart yet: add some files on the Upload page.")
    st.stop()

if view == SOUND:
    left, right = st.columns(2)
    with left:
        if figures["tempo"] is None:
            st.caption("No track has a steady pulse yet, so there is no tempo chart.")
        else:
            st.plotly_chart(figures["tempo"], width="stretch")
        st.plotly_chart(figures["duration"], width="stretch")
    with right:
        st.plotly_chart(figures["centroid"], width="stretch")
        st.plotly_chart(figures["loudness"], width="stretch")
    if figures["scatter"] is not None:
        st.plotly_chart(figures["scatter"], width="stretch")
else:
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures["kinds"], width="stretch")
    with right:
        if figures["keys"] is None:
            st.caption("No track has a known key yet, so there is no key chart.")
        else:
            st.plotly_chart(figures["keys"], width="stretch")
    if figures["categories"] is None:
        st.caption("No track has categories yet: they are scored once the search model has loaded.")
    else:
        st.plotly_chart(figures["categories"], width="stretch")
