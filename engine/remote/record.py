"""The server's note in the data folder: where its API listens, and a token for this start.

``server.json`` holds the API's address, the server's process id and a random token made at each
start. Only the user who runs the server can read it (mode 0600), so only that user's commands can
use the token: it is accepted as a bearer credential even when the dashboard is shared. The server
removes the note when it stops; a note left by a server that was killed names a process that is
gone, and is ignored.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

NAME = "server.json"


@dataclass(frozen=True)
class ServerRecord:
    url: str  # the API's base, e.g. "http://127.0.0.1:8501/api/v1"
    token: str
    pid: int

    def alive(self) -> bool:
        """Whether the process that wrote the note still runs (it may since have stopped listening)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process has this id now
            return False
        return True


def api_url(*, address: str | None, port: int, base_path: str = "") -> str:
    """The API's base URL for a server bound to ``address`` (None, "0.0.0.0" or "::": every
    interface, reached on loopback) and ``port``, under Streamlit's ``base_path``."""
    host = (address or "").strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    base = "/".join(part for part in base_path.split("/") if part)
    return f"http://{host}:{port}" + (f"/{base}" if base else "") + "/api/v1"


def write(data_dir: Path, *, url: str) -> ServerRecord:
    """Write this process's note with a new token; the previous server's, if any, is replaced."""
    record = ServerRecord(url=url, token=secrets.token_urlsafe(32), pid=os.getpid())
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = data_dir / f".{NAME}.{os.getpid()}"
    # Created 0600 from the start (not chmod-ed afterwards): the token is never readable by others.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(asdict(record), out)
    os.replace(partial, data_dir / NAME)
    return record


def read(data_dir: Path) -> ServerRecord | None:
    """The note of a server that is running for this data folder, or None."""
    try:
        record = ServerRecord(**json.loads((data_dir / NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.alive() else None


def remove(data_dir: Path, record: ServerRecord) -> None:
    """Remove the note if it is still this server's (a newer server may have replaced it)."""
    path = data_dir / NAME
    try:
        if json.loads(path.read_text()).get("token") == record.token:
            path.unlink()
    except (OSError, ValueError):
        pass
