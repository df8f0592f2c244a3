"""The pieces that let the CLI reach a running server: the server's note, the task runner, and
the client's translation of paths and errors. The whole path runs live in tests/test_server.py."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.errors import EngineError, InputError, NotFoundError
from engine.remote import record
from engine.remote.client import Names, rebuilt
from engine.tasks import TaskRunner


def test_the_note_is_the_users_alone_and_names_a_live_server(tmp_path):
    written = record.write(tmp_path, url="http://127.0.0.1:8501/api/v1")
    note = tmp_path / record.NAME
    assert oct(note.stat().st_mode & 0o777) == "0o600"
    assert record.read(tmp_path) == written and written.pid == os.getpid() and len(written.token) >= 40
    assert record.write(tmp_path, url=written.url).token != written.token  # a new token each start
    assert [p.name for p in tmp_path.iterdir()] == [record.NAME]  # no partial file left behind


def test_a_note_left_by_a_dead_server_is_ignored(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / record.NAME).write_text(json.dumps({"url": "http://127.0.0.1:1/api/v1", "token": "t",
                                                    "pid": int(gone.stdout)}))
    assert record.read(tmp_path) is None
    (tmp_path / record.NAME).write_text("{not json")
    assert record.read(tmp_path) is None
    assert record.read(tmp_path / "nowhere") is None


def test_a_server_removes_only_its_own_note(tmp_path):
    first = record.write(tmp_path, url="http://127.0.0.1:8501/api/v1")
    second = record.write(tmp_path, url="http://127.0.0.1:8502/api/v1")  # another start replaced it
    record.remove(tmp_path, first)
    assert record.read(tmp_path) == second
    record.remove(tmp_path, second)
    assert not (tmp_path / record.NAME).exists()


@pytest.mark.parametrize(("address", "port", "base", "url"), [
    (None, 8501, "", "http://127.0.0.1:8501/api/v1"),
    ("0.0.0.0", 80, "", "http://127.0.0.1:80/api/v1"),
    ("::", 8501, "", "http://127.0.0.1:8501/api/v1"),
    ("localhost", 8501, "/traum/", "http://localhost:8501/traum/api/v1"),
    ("::1", 9000, "", "http://[::1]:9000/api/v1"),
    ("192.168.1.20", 8501, "a/b", "http://192.168.1.20:8501/a/b/api/v1"),
])
def test_the_api_address_from_the_servers_binding(address, port, base, url):
    assert record.api_url(address=address, port=port, base_path=base) == url


def test_paths_come_back_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = Names([Path("samples"), Path("/abs/kick.wav")])
    assert names.sent == [str(tmp_path / "samples"), "/abs/kick.wav"]
    assert names.local(f"File not found: {tmp_path}/samples/x.wav does not exist.") == \
        "File not found: samples/x.wav does not exist."
    assert names.local(f"{tmp_path}/samples2/x.wav") == f"{tmp_path}/samples2/x.wav"  # another folder
    assert names.local(f"'{tmp_path}/samples'") == "'samples'" and names.local(None) is None
    assert Names([Path("samples")], map_back=False).local(f"{tmp_path}/samples") == f"{tmp_path}/samples"


def test_an_api_error_becomes_the_engine_error_it_was():
    error = rebuilt({"title": "Folder not found", "message": "x does not exist.", "hint": "Check it.",
                     "type": "InputError"})
    assert type(error) is InputError and str(error) == "Folder not found: x does not exist. Check it."
    assert type(rebuilt({"title": "Not found", "message": "m", "type": "NotFoundError"})) is NotFoundError
    for unknown in ("Exception", "SystemExit", "os", None):  # only engine errors are rebuilt by name
        assert type(rebuilt({"title": "t", "message": "m", "type": unknown})) is EngineError
    assert str(rebuilt("Not Found")) == "Server error: Not Found"


def finish(runner: TaskRunner, task_id: str):
    deadline = time.monotonic() + 10
    while not (task := runner.get(task_id)).finished:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return task


def test_tasks_run_one_at_a_time_in_order_and_keep_their_results():
    runner, order, gate = TaskRunner(), [], threading.Event()

    def first(report):
        report({"done": 1})
        gate.wait(5)
        order.append("first")
        return {"n": 1}

    def second(report):
        order.append("second")
        raise InputError("bad input", hint="fix it")

    def third(report):
        raise ZeroDivisionError("boom")

    a, b, c = (runner.submit("ingest", call) for call in (first, second, third))
    time.sleep(0.1)
    assert runner.get(a.id).status == "running" and runner.get(b.id).status == "queued"
    gate.set()
    assert finish(runner, a.id).to_dict() == {"id": a.id, "action": "ingest", "status": "done",
                                              "progress": {"done": 1}, "result": {"n": 1}, "error": None}
    failed = finish(runner, b.id)
    assert failed.status == "failed" and failed.error == {"title": "Rejected file", "message": "bad input",
                                                          "hint": "fix it", "type": "InputError"}
    crashed = finish(runner, c.id)
    assert crashed.error["title"] == "Task failed" and "ZeroDivisionError" in crashed.error["message"]
    assert order == ["first", "second"]
    with pytest.raises(NotFoundError):
        runner.get("nope")
