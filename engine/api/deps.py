"""What every route shares: the process's Library, the track filters as query parameters, and a
track as the API shows it."""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import Depends, Query, Request

from engine.api.models import COLLECTION_PATTERN, TAG_PATTERN, CategoryName, KindName
from engine.keys import KEY_PATTERN, KEY_WITH_MODE_PATTERN
from engine.library import Filters, Library, Track


async def get_library(request: Request) -> Library:
    """The one Library of this process (the dashboard's), from the provider the app was made with.
    On the event loop: the server opens the library at start, so this is a cache lookup, and a
    plain ``def`` would cost every request a hop to a worker thread."""
    provider: Callable[[], Library] = request.app.state.library
    return provider()


LibraryDep = Annotated[Library, Depends(get_library)]


def filters_from(
    min_duration: Annotated[float | None, Query(ge=0, description="seconds")] = None,
    max_duration: Annotated[float | None, Query(ge=0)] = None,
    min_tempo: Annotated[float | None, Query(ge=0, description="BPM")] = None,
    max_tempo: Annotated[float | None, Query(ge=0)] = None,
    # List defaults: FastAPI copies them per request.
    format: Annotated[list[str], Query(description="repeatable: wav, flac, ...")] = [],  # noqa: B006
    kind: Annotated[list[KindName], Query(description="repeatable")] = [],  # noqa: B006
    key: Annotated[str | None, Query(pattern=KEY_PATTERN, max_length=32,
                                     description='"F minor", "Fm", "F#", "4A"')] = None,
    compatible_with: Annotated[str | None, Query(pattern=KEY_WITH_MODE_PATTERN, max_length=32,
                                                 description="a key with its mode")] = None,
    category: Annotated[list[CategoryName], Query(description="repeatable")] = [],  # noqa: B006
    favourite: Annotated[bool, Query(description="only favourites")] = False,
    tag: Annotated[list[Annotated[str, Query(min_length=1, max_length=64, pattern=TAG_PATTERN)]],
                   Query(description="repeatable: tracks with every one")] = [],  # noqa: B006
    collection: Annotated[str | None, Query(min_length=1, max_length=64, pattern=COLLECTION_PATTERN,
                                            description="only this collection's tracks")] = None,
) -> Filters:
    """The library's filters as query parameters (a bad value is the engine's InputError: 422)."""
    return Filters(min_duration=min_duration, max_duration=max_duration, min_tempo=min_tempo, max_tempo=max_tempo,
                   formats=tuple(format), kinds=tuple(kind), key=key, compatible_with=compatible_with,
                   categories=tuple(category), favourite=favourite, tags=tuple(tag), collection=collection)


def track_document(library: Library, track: Track, embedded: set[str] | None, *, full: bool = False) -> dict:
    """A track's fields for AudioFile (``full``: AudioMetadata)."""
    document = track.to_dict()
    document["processed"] = None if embedded is None else track.id in embedded
    if full:
        document["file_path"] = str(library.audio_path(track))
    return document
