"""``/folders``: the folders the library indexes in place, and their syncs (in the background)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from engine.api.deps import LibraryDep
from engine.api.models import FolderAdd, FolderOut, FolderRemoved, SyncRequest, SyncState

router = APIRouter(prefix="/folders", tags=["folders"])


def sync_state(library) -> SyncState:
    state = library.sync_state()
    progress, report = state.get("progress"), state.get("report")
    error = state.get("error")
    return SyncState(running=state["running"], runs=state.get("runs", 0), error=str(error) if error else None,
                     progress=asdict(progress) if progress is not None else None,
                     report=report.to_dict() if report is not None else None)


@router.get("", response_model=list[FolderOut])
def list_folders(library: LibraryDep):
    """The library's folders with their tracks, missing tracks, watch flag and last sync."""
    return [FolderOut(**folder.to_dict()) for folder in library.folders()]


@router.post("", status_code=202, response_model=SyncState)
def add_folder(library: LibraryDep, body: FolderAdd):
    """Index a folder in place (it must exist, be readable and not be the library's own folder) and
    sync it in the background; follow the sync with ``GET /folders/sync``."""
    library.add_folder(body.path, watch=body.watch, background=True)
    return sync_state(library)


@router.delete("", response_model=FolderRemoved)
def remove_folder(library: LibraryDep,
                  path: Annotated[str, Query(min_length=1, max_length=4096, pattern=r"^[^\x00]+$")]):
    """Forget a folder and the tracks found only there. No file is touched."""
    removed = library.remove_folder(path)
    return FolderRemoved(removed=str(removed["removed"]), tracks_removed=removed["tracks_removed"])


@router.post("/sync", status_code=202, response_model=SyncState)
def start_sync(library: LibraryDep, body: SyncRequest):
    """Rescan every folder (or the given paths inside them) in the background."""
    library.start_sync(body.paths or None)
    return sync_state(library)


@router.get("/sync", response_model=SyncState)
def get_sync(library: LibraryDep):
    """The background sync: running, its progress, and its report or error once done."""
    return sync_state(library)
