"""What the API refuses before any handler runs: foreign hosts and origins, and a shared server.

The server listens on the loopback address by default, where no login is
needed; but a hostile web page open in the user's own browser can still
reach it. Two rules stop that:

- **Host**: a request must name this machine (``localhost``, ``127.0.0.1``,
  ``[::1]``, any port). A page on ``evil.example`` whose name was re-pointed
  at 127.0.0.1 (DNS rebinding) sends its own name and is refused.
- **Origin**: a state-changing request (POST, PUT, PATCH, DELETE) that
  carries an ``Origin`` must come from the server's own origin. A cross-site
  form post or fetch is refused; scripts and curl send no Origin and pass.

When the dashboard is shared (a password or OIDC login, or a non-loopback
address), every route but ``/health`` and ``/auth/token`` needs
``Authorization: Bearer ...``: an access token from ``/auth/token`` (the
dashboard's password) or an API key (``python -m engine api-key create``).
The API must never be a way round the dashboard's login.
"""

from __future__ import annotations

import json
from typing import Callable
from urllib.parse import urlsplit

import anyio.to_thread

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
OPEN_PATHS = {"/health", "/auth/token"}


class Guard:
    """Pure ASGI middleware for the API app (Streamlit's own routes are not wrapped)."""

    def __init__(self, app, *, shared: Callable[[], bool], authorised: Callable[[str], bool]):
        self.app = app
        self.shared = shared
        self.authorised = authorised  # a bearer credential -> valid or not

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        shared = self.shared()
        refusal = self._address_refusal(scope, headers, shared)
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        if refusal is None and shared and path not in OPEN_PATHS:
            # Off the event loop: checking a key reads the library, which an import may hold a moment,
            # and the loop also carries the dashboard. (A hop to a worker thread for every request cost
            # a search about 10 ms at 100k tracks, so only a credential to check makes one.)
            refusal = await anyio.to_thread.run_sync(self._credential_refusal, headers)
        if refusal is not None:
            status, title, message, hint = refusal
            body = json.dumps({"detail": {"title": title, "message": message, "hint": hint}}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _address_refusal(scope, headers: dict[str, str], shared: bool) -> tuple[int, str, str, str | None] | None:
        host = headers.get("host", "")
        if not shared and host_name(host) not in LOOPBACK_NAMES:
            return (400, "Foreign host", f"this server answers to its own address, not {host or 'no host'!r}.",
                    "Use http://127.0.0.1 or http://localhost with the dashboard's port.")
        origin = headers.get("origin")
        if scope["method"] in STATE_CHANGING and origin is not None and not same_origin(origin, host):
            return (403, "Foreign origin", f"requests from {origin!r} may not change this library.",
                    "Call the API from a script or the dashboard itself.")
        return None

    def _credential_refusal(self, headers: dict[str, str]) -> tuple[int, str, str, str | None] | None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return (401, "Not authorised", "this dashboard is shared, so the API needs a bearer token.",
                    "POST the dashboard's password to /api/v1/auth/token, or create an API key with "
                    "'python -m engine api-key create NAME'; send it as 'Authorization: Bearer ...'.")
        if not self.authorised(credential.strip()):
            return (401, "Not authorised", "the token has expired or the API key was revoked.",
                    "Get a new token from /api/v1/auth/token, or a new API key.")
        return None


def host_name(host: str) -> str:
    """The name in a Host header, without the port: "127.0.0.1:8501" -> "127.0.0.1", "[::1]:80" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def same_origin(origin: str, host: str) -> bool:
    """Whether an Origin header names the server the request was sent to (scheme aside)."""
    parts = urlsplit(origin.strip().lower())
    return bool(parts.netloc) and parts.netloc == host.strip().lower()
