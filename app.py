"""Traum-Engine dashboard: page configuration and navigation only."""

import streamlit as st

st.set_page_config(page_title="Traum-Engine", page_icon="🎛️", layout="wide")

navigation = st.navigation([st.Page("pages/home.py", title="Home", icon="🏠", default=True)])
navigation.run()
