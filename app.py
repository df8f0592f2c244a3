"""Traum-Engine dashboard: page configuration and navigation only."""

import streamlit as st

import ui

st.set_page_config(page_title="Traum-Engine", page_icon=":material/graphic_eq:", layout="wide")
ui.require_login(from_app=True)

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/upload.py", title="Upload", icon=":material/upload:"),
        st.Page("pages/search.py", title="Search", icon=":material/search:"),
        st.Page("pages/analytics.py", title="Analytics", icon=":material/bar_chart:"),
        st.Page("pages/library.py", title="Library", icon=":material/library_music:"),
    ]
)
navigation.run()
