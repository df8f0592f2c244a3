"""The real server in a subprocess: ``streamlit run serve.py`` (dashboard and API) on a free port,
a temporary library and the tiny offline CLAP."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment_for(tmp_path: Path, model_dir: Path, **extra) -> dict:
    """The server's environment: the library in tmp_path/data, the tiny offline model. A command run
    with it works on the same library."""
    return dict(os.environ, TRAUM_DATA_DIR=str(tmp_path / "data"), TRAUM_CLAP_MODEL=str(model_dir),
                TRAUM_CLAP_DEVICE="cpu", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), **extra)


def run_cli(environment: dict, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m engine ARGS`` in its own process (text output captured)."""
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=300)


@contextlib.contextmanager
def serving(tmp_path: Path, model_dir: Path, *, env: dict | None = None):
    """Start the server; yields its base URL; stops it afterwards (its log is tmp_path/server.log)."""
    port = free_port()
    environment = environment_for(tmp_path, model_dir, **(env or {}))
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, JSON body) of one request; an error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict]:
    """A multipart/form-data body with each (name, bytes) as a "file" part, and its headers."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     "Content-Type: audio/wav\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
