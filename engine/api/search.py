"""``/search``: by text, by an example clip, or more like a track; results best first."""

from __future__ import annotations

from typing import Annotated, Callable

import anyio
from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import TypeAdapter

from engine.api.deps import LibraryDep, filters_from
from engine.api.models import MAX_RESULTS, SearchResult, TextSearch
from engine.errors import InputError
from engine.library import DEFAULT_BUT_WEIGHT, Filters, Hit

router = APIRouter(prefix="/search", tags=["search"])


RESULTS = TypeAdapter(list[SearchResult])


def results(hits: list[Hit]) -> list[SearchResult]:
    return [SearchResult(**{**hit.to_dict(), "similarity_score": hit.score, "file_path": hit.path}) for hit in hits]


async def answer(search: Callable[[], list[Hit]]) -> Response:
    """Run ``search`` in a worker thread and write its results' JSON there too: one hop off the event
    loop per request. A plain ``def`` route makes FastAPI hop for the route and again to validate what
    it returns, and on a busy machine each hop may wait for a core."""
    body = await anyio.to_thread.run_sync(lambda: RESULTS.dump_json(results(search())))
    return Response(body, media_type="application/json")


@router.post("/text", response_model=list[SearchResult])
async def search_text(library: LibraryDep, body: TextSearch):
    """Tracks that sound like the ``query`` ("punchy 808 kick"), with the library's filters."""
    filters = Filters(min_duration=body.min_duration, max_duration=body.max_duration, min_tempo=body.min_tempo,
                      max_tempo=body.max_tempo, formats=body.formats, kinds=body.kinds, key=body.key,
                      compatible_with=body.compatible_with, categories=body.categories,
                      favourite=body.favourite, tags=body.tags, collection=body.collection)
    return await answer(lambda: library.search_text(body.query, filters=filters, limit=body.limit,
                                                    min_score=body.min_score, segments=body.segments))


@router.post("/audio", response_model=list[SearchResult])
async def search_audio(library: LibraryDep, filters: Annotated[Filters, Depends(filters_from)],
                 file: Annotated[UploadFile, File(description="an example clip")],
                 limit: Annotated[int, Form(ge=1, le=MAX_RESULTS)] = 20,
                 min_score: Annotated[float | None, Form(ge=-1, le=1)] = None,
                 segments: Annotated[bool, Form()] = False):
    """Tracks that sound like an example clip (multipart ``file``; filters as query parameters)."""

    def search() -> list[Hit]:
        data = file.file.read(library.settings.max_file_size_bytes + 1)  # spooled to disk: read off the loop
        if not data:
            raise InputError(f"{file.filename or 'the clip'}: the file is empty (0 bytes).", title="Empty file")
        return library.search_audio(data=data, name=file.filename or "query.wav", filters=filters, limit=limit,
                                    min_score=min_score, segments=segments)

    return await answer(search)


@router.get("/similar/{file_id}", response_model=list[SearchResult])
async def search_similar(library: LibraryDep, file_id: str, filters: Annotated[Filters, Depends(filters_from)],
                   limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
                   min_score: Annotated[float | None, Query(ge=-1, le=1)] = None, segments: bool = False,
                   but: Annotated[str | None, Query(max_length=500, description='"darker", "with reverb"')] = None,
                   weight: Annotated[float, Query(ge=0, le=2)] = DEFAULT_BUT_WEIGHT):
    """More like a track in the library (never the track itself); ``but`` turns it towards a prompt
    ("like this, but darker"), by ``weight``."""
    return await answer(lambda: library.search_like(file_id, filters=filters, limit=limit, min_score=min_score,
                                                    segments=segments, but=but, weight=weight))
