"""Traum-Engine dashboard: page configuration, navigation, and the one place engine errors are shown."""

import streamlit as st

import ui
from engine.errors import EngineError

st.set_page_config(page_title="Traum-Engine", page_icon=":material/graphic_eq:", layout="wide")
ui.require_login(from_app=True)

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/folders.py", title="Folders", icon=":material/folder_open:"),
        st.Page("pages/upload.py", title="Upload", icon=":material/upload:"),
        st.Page("pages/search.py", title="Search", icon=":material/search:"),
        st.Page("pages/analytics.py", title="Analytics", icon=":material/bar_chart:"),
        st.Page("pages/library.py", title="Library", icon=":material/library_music:"),
        st.Page("pages/collections.py", title="Collections", icon=":material/queue_music:"),
        st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
        st.Page("pages/duplicates.py", title="Duplicates", icon=":material/content_copy:"),
    ]
)
try:
    navigation.run()
except EngineError as error:  # what went wrong and what to do, in place of the rest of the page
    ui.show_error(error)
