"""Analytics: how the library is spread over tempo, brightness, length and level."""

import streamlit as st

import ui

ui.require_login()
st.title("Analytics")
figures = ui.charts()

if figures is None:
    st.info("Nothing to chart yet: add some files on the Upload page.")
    st.stop()

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
