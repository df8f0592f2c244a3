"""The server: the dashboard (app.py) and the HTTP API under /api/v1, in one process.

``streamlit run serve.py`` (``make run``) finds the ``App`` below and serves
both on one host and port. The pages and the API share the process's one
Library (``ui.library()``), so its model and search index load once and no
second process ever opens the library. app.py stays the dashboard's script:
the tests and ``streamlit run app.py`` use it alone.
"""

from starlette.middleware import Middleware
from streamlit.starlette import App

from engine.api import create_api

PREFIX = "/api/v1"


def library():
    # Imported on the first request, not at start: ui creates Streamlit caches, which want the
    # runtime that App starts.
    import ui

    return ui.library()


def shared() -> bool:
    import ui

    return ui.shared()


api = create_api(library, shared=shared)


class ApiFirst:
    """Every request under PREFIX goes to the API, before Streamlit's routes see it.

    A Starlette Mount would do the same for ordinary paths, but its pattern (``.*``) does not
    match a path holding a newline, which then fell through to the dashboard's plain-text 404;
    the API answers everything under its prefix itself, in its own JSON.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            # As Mount does: the full path stays, root_path says where the API begins.
            return await api(dict(scope, root_path=scope.get("root_path", "") + PREFIX), receive, send)
        return await self.app(scope, receive, send)


app = App("app.py", middleware=[Middleware(ApiFirst)])
