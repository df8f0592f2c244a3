"""The HTTP API, ``/api/v1``: the specification's endpoints over the process's one Library.

``create_api`` makes the FastAPI app; the server (``serve.py``) mounts it
beside the dashboard, so pages and API share the library, its model and its
index. Handlers are plain functions (FastAPI runs them on worker threads):
engine calls block, and the event loop also carries the dashboard.

Errors are the engine's own, turned into JSON at this one boundary:
``{"detail": {"title", "message", "hint"}}`` with 404 for an unknown track or
job, 413 over the size limit, 415 for a type not allowed, 422 for any other
input the engine refuses, 503 while the model cannot load or the library is
held by another process.
"""

from __future__ import annotations

import hmac
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from engine import __version__
from engine.api import audio, curation, folders, search, service, tasks, tokens
from engine.api.guard import Guard
from engine.api.models import ErrorResponse
from engine.errors import (
    AuthError,
    ConflictError,
    EngineError,
    InputError,
    LibraryLockedError,
    ModelUnavailableError,
    NotFoundError,
    TooLargeError,
    UnsupportedTypeError,
)

# The most specific class first.
STATUS_OF = (
    (AuthError, 401),
    (NotFoundError, 404),
    (TooLargeError, 413),
    (UnsupportedTypeError, 415),
    (ConflictError, 409),
    (InputError, 422),
    (ModelUnavailableError, 503),
    (LibraryLockedError, 503),
)
# FastAPI matches a request route by route, in this order (60 us a request between the searches first
# and fifth, measured with warm caches): the searches first, as the calls a program makes most.
ROUTERS = (search.router, audio.router, service.router, tokens.router, curation.router, folders.router, tasks.router)
# Every route may answer these, each with an ErrorResponse (documented, so clients and the schema agree).
ERRORS = {status: {"model": ErrorResponse, "description": description} for status, description in (
    (400, "A foreign Host (see the guard), or a request the engine refuses"),
    (401, "No valid token or API key while the dashboard is shared"),
    (403, "A change sent from another site's page"), (404, "No such track or job"),
    (409, "A name that is taken already"),
    (413, "Over the size limit"), (415, "A file type that is not allowed"),
    (422, "Input the engine or the schema refuses"), (503, "The model cannot load, or the library is held"),
)}


def create_api(library: Callable, *, shared: Callable[[], bool] = lambda: False,
               local_token: Callable[[], str | None] = lambda: None) -> FastAPI:
    """The API over ``library()`` (the process's Library, looked up per request); ``shared()`` says
    whether the dashboard is shared (then requests need a token or an API key: engine.api.guard);
    ``local_token()`` is this start's token from the server's note (engine.remote.record), which
    the user's own commands send."""

    def authorised(credential: str) -> bool:
        token = local_token()
        if token is not None and hmac.compare_digest(credential.encode(), token.encode()):
            return True
        return library().authorised(credential)

    api = FastAPI(title="Traum-Engine API", version=__version__,
                  description="Search and organise your own sound library. Errors carry a title, a message "
                              "and a hint.")
    api.state.library = library
    api.state.local_token = local_token
    api.add_middleware(Guard, shared=shared, authorised=authorised)
    api.add_exception_handler(EngineError, engine_error)
    api.add_exception_handler(RequestValidationError, invalid_request)
    for router in ROUTERS:
        api.include_router(router, responses=ERRORS)
    return api


def engine_error(request: Request, exc: EngineError) -> JSONResponse:
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 400)
    return JSONResponse({"detail": {**exc.to_dict(), "type": type(exc).__name__}}, status_code=status)


def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Parameters the schema refuses, in the engine's error shape: one line per problem."""
    content_type = request.headers.get("content-type")
    problems = [problem_line(error, content_type) for error in exc.errors()]
    return JSONResponse({"detail": {"title": "Invalid request", "message": "; ".join(problems),
                                    "hint": "See /api/v1/docs for each parameter."}}, status_code=422)


def problem_line(error: dict, content_type: str | None) -> str:
    """One problem in words a script's author can act on: where, then what. The body as a whole is the
    commonest: ``curl -d '{...}'`` without ``-H 'Content-Type: application/json'`` sends the JSON as a
    form, which FastAPI does not read as JSON."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":  # FastAPI's loc is ("body", the character where it broke)
        reason = error.get("ctx", {}).get("error", "invalid")
        return f"body: not valid JSON at character {loc[-1] if loc else '?'} ({reason})"
    if loc == ("body",):
        kind = (content_type or "").partition(";")[0].strip().lower()
        if error.get("type") == "missing":
            return "body: missing; send the parameters as a JSON object with Content-Type: application/json"
        if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
            return (f"body: sent as {kind or 'no Content-Type'!r}, not JSON; send a JSON object with "
                    "Content-Type: application/json")
        return f"body: {error.get('msg', 'invalid')}"
    where = ".".join(str(part) for part in loc if part not in ("body", "query", "path"))
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"
