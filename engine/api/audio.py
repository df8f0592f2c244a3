"""``/audio``: upload (queued on the dashboard's own background worker), job status, the track list,
a track's metadata and audio, and delete."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.responses import FileResponse

from engine.api.deps import LibraryDep, filters_from, track_document
from engine.api.models import AudioFile, AudioMetadata, Deleted, ProcessingStatus, UploadAccepted
from engine.errors import NotFoundError
from engine.library import SORTABLE, Filters

router = APIRouter(prefix="/audio", tags=["audio"])
SortKey = Literal[tuple(sorted(SORTABLE))]  # type: ignore[valid-type] (the library's sort keys)


@router.post("/upload", status_code=202, response_model=list[UploadAccepted])
def upload_audio(library: LibraryDep,
                 file: Annotated[list[UploadFile], File(min_length=1, description="one or more audio files")]):
    """Queue audio files for import; follow each with ``/audio/status/{job_id}``. The type and size are
    checked at once (a refused file's job fails at once, with the reason); decoding and analysis run in the
    background."""
    if len(file) == 1:  # one file: refused with its own status (413, 415), not a 202 that says failed
        library.check_upload(file[0].filename or "upload", file[0].size)
    results = library.submit_uploads([(f.filename or "upload", f.file) for f in file], batch_id=uuid.uuid4().hex)
    return [UploadAccepted(job_id=r.job_id, filename=r.source, status=r.status.value,
                           message=r.error or "Queued for import.") for r in results]


@router.get("/status/{job_id}", response_model=ProcessingStatus)
def processing_status(library: LibraryDep, job_id: str):
    job = library.job(job_id)
    return ProcessingStatus(job_id=job.id, status=job.status.value, progress=job.progress, message=job.message,
                            stage=job.stage, audio_file_id=job.track_id)


@router.get("/files", response_model=list[AudioFile])
def list_audio_files(library: LibraryDep, response: Response, filters: Annotated[Filters, Depends(filters_from)],
                     skip: Annotated[int, Query(ge=0, le=2**53)] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                     name: str | None = None, sort: SortKey = "created_at",
                     descending: bool = True, missing: bool = False):
    """Tracks, newest first by default, with the library's filters; the total is in ``X-Total-Count``."""
    response.headers["X-Total-Count"] = str(library.count(filters, name=name, missing=missing))
    tracks = library.tracks(filters, name=name, missing=missing, sort=sort, descending=descending, limit=limit,
                            offset=skip)
    embedded = library.embedded([t.id for t in tracks])
    return [AudioFile(**track_document(library, t, embedded)) for t in tracks]


@router.get("/files/{file_id}/metadata", response_model=AudioMetadata)
def audio_metadata(library: LibraryDep, file_id: str):
    """Everything stored about one track (a full id or a unique prefix of 6+ characters)."""
    track = library.track(file_id)
    return AudioMetadata(**track_document(library, track, library.embedded([track.id]), full=True))


@router.get("/files/{file_id}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/*": {}}, "description": "The audio file"},
                       206: {"content": {"audio/*": {}}, "description": "The requested range of it"}})
def audio_data(library: LibraryDep, file_id: str):
    """The track's audio file as stored, with range requests for players."""
    track = library.track(file_id)
    path = library.audio_path(track)
    if not path.is_file():
        raise NotFoundError(f"{track.filename}: its file is gone from {path}.",
                            hint="Put it back, or let a sync mark it missing.")
    return FileResponse(path, filename=track.filename)


@router.delete("/files/{file_id}", response_model=Deleted)
def delete_audio_file(library: LibraryDep, file_id: str):
    """Remove a track from the library: its rows and the library's own copy. A file indexed in place
    (yours) is never touched."""
    track = library.delete(file_id)
    kept = track.storage != "managed"
    return Deleted(message="Removed from the library." + (" Your file was not touched." if kept else ""),
                   id=track.id, filename=track.filename, file_kept=kept)
