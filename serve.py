"""The server: the dashboard (app.py) and the HTTP API under /api/v1, in one process.

``streamlit run serve.py`` (``make run``) finds the ``App`` below and serves
both on one host and port. The pages and the API share the process's one
Library (``ui.library()``), so its model and search index load once and no
second process ever opens the library. app.py stays the dashboard's script:
the tests and ``streamlit run app.py`` use it alone.
"""

from starlette.routing import Mount
from streamlit.starlette import App

from engine.api import create_api


def library():
    # Imported on the first request, not at start: ui creates Streamlit caches, which want the
    # runtime that App starts.
    import ui

    return ui.library()


def shared() -> bool:
    import ui

    return ui.shared()


api = create_api(library, shared=shared)
app = App("app.py", routes=[Mount("/api/v1", app=api)])
