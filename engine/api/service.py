"""``/health``, ``/stats`` and ``/analytics``: the server's state, the library's totals and its distributions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from engine import __version__
from engine.api.deps import LibraryDep, filters_from
from engine.api.models import Health, LibraryStats, ModelHealth
from engine.library import Filters

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
def health(library: LibraryDep):
    """Whether the server answers, how big the library is, and the model's state (or why it is not loaded)."""
    status = library.model_status()
    return Health(status="ok", version=__version__, tracks=library.count(),
                  model=ModelHealth(**{key: status.get(key) for key in ModelHealth.model_fields}))


@router.get("/stats", response_model=LibraryStats)
def stats(library: LibraryDep):
    """Library totals: tracks, hours of audio, bytes, tracks per format, missing tracks, and
    embeddings still to compute."""
    return LibraryStats(**library.stats())


@router.get("/analytics/distributions", tags=["analytics"])
def distributions(library: LibraryDep, filters: Annotated[Filters, Depends(filters_from)]) -> dict:
    """The binned distributions the Analytics page draws, counted in DuckDB: each a list of rows
    (tempo, centroid, loudness: bin_start and count; duration: band and count; kinds, keys,
    categories; scatter of tempo against centroid, as points or density cells). Empty when no
    track passes the filters."""
    data = library.distributions(filters)
    if data is None:
        return {}
    return {name: value.to_dict(orient="records") if hasattr(value, "to_dict") else value
            for name, value in data.items()}
