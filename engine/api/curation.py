"""Favourites, tags and collections (what a person keeps, on tracks and in named lists), and duplicates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from engine.api.deps import LibraryDep, track_document
from engine.api.models import (
    COLLECTION_PATTERN,
    AudioFile,
    AudioMetadata,
    CollectionContents,
    CollectionCreate,
    CollectionOut,
    CollectionTracks,
    DuplicateGroupOut,
    DuplicatePair,
    TagChange,
    TagCount,
    TrackIds,
)
from engine.library import DUPLICATE_THRESHOLD

router = APIRouter(tags=["curation"])
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=COLLECTION_PATTERN)]


def metadata(library, track) -> AudioMetadata:
    return AudioMetadata(**track_document(library, track, library.embedded([track.id]), full=True))


@router.put("/audio/files/{file_id}/favourite", response_model=AudioMetadata)
def star(library: LibraryDep, file_id: str):
    """Mark a track as a favourite; the track as it is now."""
    return metadata(library, library.set_favourite(file_id, True))


@router.delete("/audio/files/{file_id}/favourite", response_model=AudioMetadata)
def unstar(library: LibraryDep, file_id: str):
    return metadata(library, library.set_favourite(file_id, False))


@router.post("/audio/files/{file_id}/tags", response_model=AudioMetadata)
def change_tags(library: LibraryDep, file_id: str, body: TagChange):
    """Add and remove tags (any case; kept in lower case); the track as it is now."""
    return metadata(library, library.tag(file_id, add=body.add, remove=body.remove))


@router.get("/tags", response_model=list[TagCount])
def list_tags(library: LibraryDep):
    """Every tag with how many tracks carry it, most used first (for autocomplete)."""
    return [TagCount(tag=tag, tracks=n) for tag, n in library.tags()]


@router.get("/collections", response_model=list[CollectionOut])
def list_collections(library: LibraryDep):
    return [CollectionOut(**c) for c in library.collections()]


@router.post("/collections", status_code=201, response_model=CollectionTracks)
def create_collection(library: LibraryDep, body: CollectionCreate):
    return CollectionTracks(name=library.create_collection(body.name), tracks=[])


@router.get("/collections/{name}", response_model=CollectionContents)
def read_collection(library: LibraryDep, name: Name):
    """A collection's tracks, in its order."""
    shown, tracks = library.collection(name)
    embedded = library.embedded([t.id for t in tracks])
    return CollectionContents(name=shown, tracks=[AudioFile(**track_document(library, t, embedded)) for t in tracks])


@router.post("/collections/{name}/tracks", response_model=CollectionTracks)
def add_to_collection(library: LibraryDep, name: Name, body: TrackIds):
    """Append tracks (ids or unique prefixes), in order; those already in it keep their place."""
    shown = library.add_to_collection(name, body.ids)
    return CollectionTracks(name=shown, tracks=[t.id for t in library.collection(shown)[1]])


@router.delete("/collections/{name}/tracks", response_model=CollectionTracks)
def remove_from_collection(library: LibraryDep, name: Name,
                           id: Annotated[list[str], Query(min_length=1, max_length=10_000)]):  # noqa: A002
    shown = library.remove_from_collection(name, id)
    return CollectionTracks(name=shown, tracks=[t.id for t in library.collection(shown)[1]])


@router.delete("/collections/{name}", response_model=CollectionTracks)
def delete_collection(library: LibraryDep, name: Name):
    """Forget a collection; its tracks stay in the library. Answers with what it held."""
    shown, tracks = library.collection(name)
    library.delete_collection(shown)
    return CollectionTracks(name=shown, tracks=[t.id for t in tracks])


@router.get("/duplicates", response_model=list[DuplicateGroupOut])
def near_duplicates(library: LibraryDep, threshold: Annotated[float, Query(gt=0, le=1)] = DUPLICATE_THRESHOLD):
    """Groups of near-duplicate tracks (the same sound in another encoding, level, rate or with a little
    silence), largest first, each with its tracks and every pair's cosine."""
    groups = library.duplicates(threshold=threshold)
    return [DuplicateGroupOut(ids=[t.id for t in g.tracks], pairs=[DuplicatePair(a=a, b=b, score=score)
                                                                   for a, b, score in g.pairs]) for g in groups]


@router.get("/duplicates/exact", response_model=list[AudioFile])
def exact_copies(library: LibraryDep):
    """Tracks whose same bytes sit at several places in the library's folders (see ``locations``)."""
    tracks = library.copies()
    embedded = library.embedded([t.id for t in tracks])
    return [AudioFile(**track_document(library, t, embedded)) for t in tracks]
