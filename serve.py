"""The server: the dashboard (app.py) and the HTTP API under /api/v1, in one process.

``streamlit run serve.py`` (``make run``) finds the ``App`` below and serves
both on one host and port. The pages and the API share the process's one
Library (``ui.library()``), so its model and search index load once and no
second process ever opens the library. app.py stays the dashboard's script:
the tests and ``streamlit run app.py`` use it alone.

At start the server opens the library and leaves a note in the data folder
(engine.remote.record) so that the CLI reaches it through the API while it
runs; the note's per-start token is accepted as a bearer credential.
"""

import asyncio.base_events
import contextlib
import logging
import socket
import threading

from starlette.middleware import Middleware
from streamlit.starlette import App

from engine.api import create_api
from engine.remote import record

PREFIX = "/api/v1"


def _send_small_writes_at_once() -> None:
    """TCP_NODELAY on every connection the server accepts.

    asyncio sets it only on sockets whose protocol number is TCP's, and Streamlit binds its
    listening socket with the default (0), which its accepted connections inherit. uvicorn writes
    a response's head and body separately, so on a connection kept open between requests (a
    requests.Session, a plugin) Nagle's algorithm held each body back until the client's delayed
    acknowledgement: measured 44 ms for every request after the first, against 2 ms on a new
    connection (docs/BENCHMARKS.md, "HTTP API")."""
    def set_nodelay(sock) -> None:
        if sock.family in {socket.AF_INET, socket.AF_INET6} and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    if hasattr(asyncio.base_events, "_set_nodelay") and hasattr(socket, "TCP_NODELAY"):
        asyncio.base_events._set_nodelay = set_nodelay


_send_small_writes_at_once()

# How often Streamlit looks at the files it polls (its config files, secrets files where they exist)
# for changes: an edit is picked up within this time.
CONFIG_POLL_S = 2.0


def _poll_config_files_less_often() -> None:
    """Streamlit polls its config files every 0.2 s, whatever ``server.fileWatcherType`` says, and
    each poll wakes two threads that take the GIL: a new prompt's text forward (about 90 ms on two
    cores) ran 2-7 ms slower beside the two config pollers than without them, and the idle server
    woke many times a second. The polling loop reads its period at every poll, so this takes effect
    for the watchers already running (docs/BENCHMARKS.md, "HTTP API")."""
    from streamlit.watcher import polling_path_watcher

    if hasattr(polling_path_watcher, "_POLLING_PERIOD_SECS"):
        polling_path_watcher._POLLING_PERIOD_SECS = CONFIG_POLL_S


_poll_config_files_less_often()


def library():
    # Imported on the first request, not at start: ui creates Streamlit caches, which want the
    # runtime that App starts.
    import ui

    return ui.held_library()


def shared() -> bool:
    import ui

    return ui.shared()


_record = None  # this start's note in the data folder (engine.remote.record), while serving


def local_token() -> str | None:
    return _record.token if _record is not None else None


api = create_api(library, shared=shared, local_token=local_token)


@contextlib.asynccontextmanager
async def lifespan(app):
    """At start: open the library (so this server holds it, not a command run a moment later) and
    leave the note that lets the CLI reach it through the API; at stop, take the note back."""
    global _record
    from streamlit import config

    from engine.config import load_settings
    from engine.errors import EngineError

    threading.Thread(target=_open_library, name="open-library", daemon=True).start()
    try:
        data_dir = load_settings().data_dir
    except EngineError:  # a broken configuration: the dashboard says what is wrong
        data_dir = None
    if data_dir is not None:
        url = record.api_url(address=config.get_option("server.address"), port=config.get_option("server.port"),
                             base_path=config.get_option("server.baseUrlPath") or "")
        try:
            _record = record.write(data_dir, url=url)
        except OSError:  # a read-only data folder: the dashboard still serves; commands say the library is in use
            logging.getLogger(__name__).warning("could not leave the server's note in %s", data_dir, exc_info=True)
    try:
        yield
    finally:
        if _record is not None:
            record.remove(data_dir, _record)
            _record = None


def _open_library() -> None:
    try:
        library()
    except Exception:  # held by another process, or broken: the dashboard's pages say so
        logging.getLogger(__name__).warning("the library could not be opened at start", exc_info=True)


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


app = App("app.py", middleware=[Middleware(ApiFirst)], lifespan=lifespan)
