"""Each track's waveform overview (engine.waveform), as int8 (min, max) pairs per column.

A new track's overview is written in its own transaction (``Tracks.add``, through
:func:`write_waveform`); a track imported before overviews existed gets one when first asked
for (``Library.waveform``, through :meth:`Waveforms.save`). Rows go with their track
(``_TRACK_TABLES``) and travel in exports (``engine.backup.TABLES``).

The blob is the peaks array's own bytes, column after column (``engine.waveform.to_bytes``);
it is decoded here rather than there because the store imports no signal code.
"""

from __future__ import annotations

import numpy as np

from engine.store.database import Database, id_list
from engine.store.types import WaveformWrite


def write_waveform(conn, track_id: str, w: WaveformWrite) -> None:
    """Write (or replace) one track's overview inside an open transaction."""
    conn.execute("INSERT OR REPLACE INTO waveforms (track_id, version, duration, peaks) VALUES (?, ?, ?, ?)",
                 [track_id, w.version, float(w.duration), np.ascontiguousarray(w.peaks, dtype=np.int8).tobytes()])


def _peaks(data: bytes) -> np.ndarray:
    # A copy: frombuffer's view of the blob is read-only.
    return np.frombuffer(data, dtype=np.int8).reshape(-1, 2).copy()


class Waveforms:
    def __init__(self, db: Database):
        self._db = db

    def get(self, track_id: str, *, version: int) -> tuple[float, np.ndarray] | None:
        """(duration in seconds, peaks int8 (columns, 2)) of a track's overview made by ``version``;
        None when there is none, or only one of another version (to be computed again)."""
        rows = self._db.rows("read a waveform", "SELECT duration, peaks FROM waveforms"
                             " WHERE track_id = ? AND version = ?", [track_id, version])
        return (rows[0][0], _peaks(rows[0][1])) if rows else None

    def get_many(self, track_ids: list[str], *, version: int) -> dict[str, tuple[float, np.ndarray]]:
        """:meth:`get` of many tracks in one query: only those that have an overview of ``version``."""
        if not track_ids:
            return {}
        in_list, values = id_list(track_ids)
        return {track_id: (duration, _peaks(data)) for track_id, duration, data in self._db.rows(
            "read waveforms", f"SELECT track_id, duration, peaks FROM waveforms WHERE version = ?"
            f" AND track_id IN {in_list}", [version, *values])}

    def save(self, track_id: str, waveform: WaveformWrite) -> bool:
        """Store (or replace) a track's overview; False, writing nothing, when the track is gone
        (deleted while its file was being read)."""
        with self._db.transaction("save a waveform") as conn:
            if not conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                return False
            write_waveform(conn, track_id, waveform)
        return True
