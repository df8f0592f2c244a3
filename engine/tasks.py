"""Long operations the server runs on a caller's behalf: an import of paths, a sync, a folder to add,
an export. The CLI asks for them while the dashboard holds the library (engine.remote) and follows
each by its id.

Tasks run one at a time, in the order asked, on one background thread: each is the same call the
CLI would make itself (``Library.ingest``, ``sync``, ``add_folder``, ``export``), so its result is its
own, not merged with the dashboard's background syncs. A task's progress is the latest event its
call reported; a finished task keeps its result (or its error) until the server stops. The thread
runs them to the end even when the caller stops following: the library keeps what was done.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from engine.errors import EngineError, NotFoundError

log = logging.getLogger(__name__)

KEEP_FINISHED = 200  # finished tasks remembered (their results are small: a list per file at most)

# What a task's call is given to report progress with: one dict per event, the latest kept.
Report = Callable[[dict], None]


@dataclass
class Task:
    id: str
    action: str  # "ingest", "sync", "add_folder", "export"
    status: str = "queued"  # queued, running, done, failed
    progress: dict = field(default_factory=dict)
    result: object = None  # the call's result as JSON-ready data, once done
    error: dict | None = None  # the engine error's title, message, hint and type (its class), once failed

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    def to_dict(self) -> dict:
        return {"id": self.id, "action": self.action, "status": self.status, "progress": dict(self.progress),
                "result": self.result, "error": self.error}


class TaskRunner:
    def __init__(self):
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._pending: list[tuple[Task, Callable[[Report], object]]] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._numbers = itertools.count(1)

    def submit(self, action: str, call: Callable[[Report], object]) -> Task:
        """Queue ``call(report)``; it returns the task's JSON-ready result or raises an EngineError."""
        task = Task(id=f"{next(self._numbers)}-{uuid.uuid4().hex[:12]}", action=action)
        with self._lock:
            self._tasks[task.id] = task
            self._pending.append((task, call))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="library-tasks", daemon=True)
                self._thread.start()
            self._wake.notify()
        return task

    def get(self, task_id: str) -> Task:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFoundError(f"no task with id {task_id!r}.",
                                    hint="Task ids come from the answer that started the task; the server "
                                         "forgets them when it stops.")
            return Task(**{**task.__dict__, "progress": dict(task.progress)})

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: self._pending)
                task, call = self._pending.pop(0)
                task.status = "running"
            self._run(task, call)

    def _run(self, task: Task, call: Callable[[Report], object]) -> None:
        def report(event: dict) -> None:
            with self._lock:
                task.progress = event

        try:
            result, error = call(report), None
        except EngineError as exc:
            result, error = None, {**exc.to_dict(), "type": type(exc).__name__}
        except Exception as exc:  # a last resort: the task says so, the server goes on
            log.exception("task %s (%s) failed", task.id, task.action)
            result, error = None, EngineError(f"the {task.action} stopped unexpectedly ({type(exc).__name__}: "
                                              f"{exc}).", hint="Run it again; the library keeps what was done.",
                                              title="Task failed").to_dict() | {"type": "EngineError"}
        with self._lock:
            task.result, task.error = result, error
            task.status = "failed" if error else "done"
            finished = [key for key, value in self._tasks.items() if value.finished]
            for key in finished[:-KEEP_FINISHED]:
                del self._tasks[key]
