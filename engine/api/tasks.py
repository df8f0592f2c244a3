"""``/tasks``: the CLI's long commands, run by the server that holds the library.

While the dashboard runs, ``python -m engine ingest``, ``sync``, ``folder add`` and ``export`` ask
for a task here and follow it (engine.remote). Each task is the same call the CLI makes when it
opens the library itself, run one at a time in the order asked, so its result is its own. Paths
are on the server's machine; the guard keeps other sites' pages from asking.
"""

from __future__ import annotations

from fastapi import APIRouter

from engine.api.deps import LibraryDep
from engine.api.models import ExportTask, FolderTask, IngestTask, SyncTask, TaskOut

router = APIRouter(prefix="/tasks", tags=["tasks"])


def task_out(task) -> TaskOut:
    return TaskOut(**task.to_dict())


@router.post("/ingest", status_code=202, response_model=TaskOut)
def start_ingest(library: LibraryDep, body: IngestTask):
    """Import files and folders where they are (or copied, with ``copy``); the result is one entry per
    file: ``source``, ``status`` (added, duplicate, failed), ``track_id``, ``error``."""
    return task_out(library.start_task("ingest", paths=body.paths, copy=body.copy_files))


@router.post("/sync", status_code=202, response_model=TaskOut)
def start_sync(library: LibraryDep, body: SyncTask):
    """Rescan every folder (or the given paths inside them); the result is the sync's report."""
    return task_out(library.start_task("sync", paths=body.paths, prune=body.prune))


@router.post("/add-folder", status_code=202, response_model=TaskOut)
def start_add_folder(library: LibraryDep, body: FolderTask):
    """Add a folder and import what it holds; the result is the sync's report."""
    return task_out(library.start_task("add_folder", path=body.path, watch=body.watch))


@router.post("/export", status_code=202, response_model=TaskOut)
def start_export(library: LibraryDep, body: ExportTask):
    """Back the library up into an empty or new folder; the result is the export's manifest."""
    return task_out(library.start_task("export", target=body.target))


@router.get("/{task_id}", response_model=TaskOut)
def get_task(library: LibraryDep, task_id: str):
    """A task's status (queued, running, done, failed), latest progress, and its result or error."""
    return task_out(library.task(task_id))
