"""Analytics: how the library is spread over tempo, brightness, length and level."""

import plotly.express as px
import streamlit as st

import ui
from engine import analytics
from engine.errors import EngineError

ui.require_login()
st.title("Analytics")
try:
    frames = ui.charts(ui.revision())
except EngineError as error:
    ui.show_error(error)
    st.stop()

if frames["duration"]["count"].sum() == 0:
    st.info("Nothing to chart yet: add some files on the Upload page.")
    st.stop()

left, right = st.columns(2)
with left:
    tempo = frames["tempo"]
    if tempo.empty:
        st.caption("No track has a steady pulse yet, so there is no tempo chart.")
    else:
        st.plotly_chart(ui.histogram(tempo, bin_width=analytics.TEMPO_BIN_BPM, title="Tempo", unit="BPM"),
                        width="stretch")
    st.plotly_chart(px.bar(frames["duration"], x="band", y="count", title="Duration",
                           labels={"band": "", "count": "tracks"}), width="stretch")
with right:
    st.plotly_chart(ui.histogram(frames["centroid"], bin_width=analytics.CENTROID_BIN_HZ,
                                 title="Spectral centroid (brightness)", unit="Hz"),
                    width="stretch")
    st.plotly_chart(ui.histogram(frames["loudness"], bin_width=analytics.LOUDNESS_BIN_DB, title="RMS level",
                                 unit="dBFS"), width="stretch")

scatter = frames["scatter"]
if not scatter.empty:
    if frames["scatter_kind"] == "points":
        figure = px.scatter(scatter, x="tempo", y="spectral_centroid", hover_name="filename",
                            title="Tempo vs spectral centroid", labels={"tempo": "BPM", "spectral_centroid": "Hz"})
    else:
        figure = px.density_heatmap(scatter, x="tempo", y="spectral_centroid", z="count", histfunc="sum",
                                    nbinsx=40, nbinsy=48, title="Tempo vs spectral centroid (tracks per cell)",
                                    labels={"tempo": "BPM", "spectral_centroid": "Hz"})
    st.plotly_chart(figure, width="stretch")
