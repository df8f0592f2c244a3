"""The sound map kept up to date as a library changes (engine.soundmap computes the layouts).

A full layout moves every point a little whenever a track comes or goes (PCA's axes turn, UMAP starts
over), and costs tens of seconds at 100k tracks. So a layout is kept, and while the library has changed
by fewer than ``RELAYOUT_SHARE`` of the tracks the last full layout saw, the tracks still there keep
their points, new ones are placed among their nearest neighbours (``soundmap.place``) and deleted ones
drop out. Past that share the placed points no longer say much about the map's axes, and it is laid
out again.

Pure computation over ids and vectors: the Library reads them and keeps the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine import soundmap

if TYPE_CHECKING:  # pandas costs about 0.4 s to import: only when a map is made
    import pandas as pd

    from engine.store import Track

__all__ = ["COLUMNS", "RELAYOUT_SHARE", "Layout", "frame", "update"]

# Changed tracks (added plus removed) since the last full layout, as a share of its tracks, below which
# new tracks are placed onto the map instead of laying it all out again.
RELAYOUT_SHARE = 0.10
COLUMNS = ("id", "x", "y", "filename", "kind", "category", "key", "duration", "tempo")


@dataclass(frozen=True)
class Layout:
    """Where each track is on the map.

    ``ids`` and ``coords`` row by row (coords (n, 2) float32 in [-1, 1]); ``model_id``, the model whose
    embeddings placed them; ``laid_out``, the tracks of the last full layout, which the share of change
    is measured against; ``placed``, how many of ``ids`` were placed onto it since.
    """

    model_id: str
    ids: tuple[str, ...]
    coords: np.ndarray
    laid_out: frozenset[str]
    placed: int = 0


def update(previous: Layout | None, *, model_id: str, ids: list[str], vectors: np.ndarray,
           relayout_share: float = RELAYOUT_SHARE, method: str = "auto", seed: int = 0) -> Layout:
    """The layout of ``ids`` (their unit ``vectors`` (n, d), row by row), kept from ``previous`` where it can be.

    Laid out anew (``soundmap.project``) when there is no previous layout, it is of another model, none of
    its tracks is left, or the tracks added and removed since its last full layout reach ``relayout_share``
    of that layout's tracks; otherwise every track of ``previous`` keeps its point and the others are placed.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    ids = tuple(ids)
    if previous is not None and previous.model_id == model_id and previous.laid_out:
        current = set(ids)
        changed = len(current - previous.laid_out) + len(previous.laid_out - current)
        if changed < relayout_share * len(previous.laid_out):
            old_row = dict(zip(previous.ids, range(len(previous.ids))))
            rows = np.fromiter((old_row.get(track_id, -1) for track_id in ids), dtype=np.intp, count=len(ids))
            kept = rows >= 0
            if kept.any():
                coords = np.empty((len(ids), 2), np.float32)
                coords[kept] = previous.coords[rows[kept]]
                if not kept.all():
                    coords[~kept] = soundmap.place(vectors[~kept], reference_vectors=vectors[kept],
                                                   reference_coords=coords[kept])
                return Layout(model_id, ids, coords, previous.laid_out,
                              placed=sum(track_id not in previous.laid_out for track_id in ids))
    coords = soundmap.project(vectors, method=method, seed=seed) if ids else np.zeros((0, 2), np.float32)
    return Layout(model_id, ids, coords, frozenset(ids))


def frame(layout: Layout, tracks: dict[str, Track]) -> pd.DataFrame:
    """The map as a table: COLUMNS, one row per track of ``layout`` that ``tracks`` (by id) still holds,
    in id order (the same library gives the same table, however its index happened to be loaded)."""
    import pandas as pd

    present = [(track_id, row) for row, track_id in enumerate(layout.ids) if track_id in tracks]
    present.sort()
    rows = np.fromiter((row for _, row in present), dtype=np.intp, count=len(present))
    found = [tracks[track_id] for track_id, _ in present]
    return pd.DataFrame({
        "id": [track.id for track in found],
        "x": layout.coords[rows, 0], "y": layout.coords[rows, 1],
        "filename": [track.filename for track in found],
        "kind": [track.kind for track in found],
        "category": [track.category for track in found],
        "key": [track.key for track in found],
        "duration": np.array([track.duration for track in found], dtype=np.float64),
        "tempo": np.array([np.nan if track.tempo is None else track.tempo for track in found], dtype=np.float64),
    }, columns=list(COLUMNS))
