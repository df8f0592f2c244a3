"""Embeddings per model: each track's pooled vector, its window vectors, and why one is missing.

Vectors are float32 little-endian bytes (migrations 0003 and 0004 say why).
Rows are kept per ``model_id`` and ``pipeline_version``, so switching models
leaves the old rows aside instead of mixing two vector spaces.
"""

from __future__ import annotations

import numpy as np

from engine.store.database import Database, id_list
from engine.store.journal import Journal
from engine.store.types import IS_MISSING, Embedded, EmbeddingFailure, EmbeddingWrite, WindowSet

# Up to this many tracks, windows are looked up by key; more, one scan of the model's rows.
WINDOW_KEY_LOOKUP_LIMIT = 1000


def window_key(track_id: str, model_id: str) -> str:
    """window_sets' one-column key: DuckDB looks single-column keys up through their index."""
    return f"{track_id}:{model_id}"


def write_embedding(conn, track_id: str, e: EmbeddingWrite) -> None:
    """Write one track's embeddings inside an open transaction, replacing earlier rows of the model."""
    windows = np.ascontiguousarray(e.windows, dtype="<f4")
    key = window_key(track_id, e.model_id)
    conn.execute("DELETE FROM window_sets WHERE key = ?", [key])
    conn.execute("DELETE FROM track_embeddings WHERE track_id = ? AND model_id = ?", [track_id, e.model_id])
    conn.execute("DELETE FROM embedding_errors WHERE track_id = ?", [track_id])
    conn.execute(
        "INSERT INTO track_embeddings (track_id, model_id, pipeline_version, dim, embedding, window_count)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [track_id, e.model_id, e.pipeline_version, windows.shape[1],
         np.ascontiguousarray(e.track, dtype="<f4").tobytes(), len(windows)],
    )
    conn.execute(
        "INSERT INTO window_sets (key, track_id, model_id, dim, starts_s, ends_s, embeddings)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [key, track_id, e.model_id, windows.shape[1], [float(x) for x in e.starts_s],
         [float(x) for x in e.ends_s], windows.tobytes()],
    )


def write_failure(conn, track_id: str, failure: EmbeddingFailure) -> None:
    """Record why a track has no embedding, inside an open transaction."""
    conn.execute(
        "INSERT INTO embedding_errors (track_id, model_id, message) VALUES (?, ?, ?)"
        " ON CONFLICT (track_id) DO UPDATE SET model_id = excluded.model_id,"
        " message = excluded.message, noted_at = now()",
        [track_id, failure.model_id, failure.message],
    )


def embedded(e: EmbeddingWrite) -> Embedded:
    """What the journal carries of a write, so an index takes the track in without reading it back."""
    return Embedded(e.model_id, e.pipeline_version, np.array(e.track, dtype=np.float32), len(e.windows))


class Embeddings:
    def __init__(self, db: Database, journal: Journal):
        self._db = db
        self._journal = journal

    def save(self, track_id: str, e: EmbeddingWrite) -> bool:
        """Store a track's embeddings; False (nothing written) when the track was deleted meanwhile."""
        with self._db.transaction("save embeddings") as conn:
            if not conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                return False
            write_embedding(conn, track_id, e)
        self._journal.record("embed", track_id, embedded(e))
        return True

    def note_failure(self, track_id: str, failure: EmbeddingFailure) -> None:
        with self._db.transaction("record an embedding error") as conn:
            if conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                write_failure(conn, track_id, failure)

    def pending(self, model_id: str | None, pipeline_version: int) -> list[str]:
        """Ids of the present tracks with no embedding from this model and pipeline version (all
        when model_id is None), oldest first. A missing track's file cannot be read."""
        rows = self._db.rows(
            "list tracks awaiting embeddings",
            f"SELECT t.id FROM tracks t WHERE NOT {IS_MISSING}"
            " AND NOT EXISTS (SELECT 1"
            " FROM track_embeddings e WHERE e.track_id = t.id AND e.model_id = ? AND e.pipeline_version = ?)"
            " ORDER BY t.created_at, t.id",
            [model_id, pipeline_version],
        )
        return [track_id for (track_id,) in rows]

    def embedded_ids(self, model_id: str, pipeline_version: int, track_ids: list[str]) -> set[str]:
        """Those of ``track_ids`` that have an embedding from this model and pipeline version."""
        if not track_ids:
            return set()
        in_list, values = id_list(track_ids)
        return {track_id for (track_id,) in self._db.rows(
            "look up embeddings", "SELECT track_id FROM track_embeddings WHERE model_id = ? AND pipeline_version = ?"
            f" AND track_id IN {in_list}", [model_id, pipeline_version, *values])}

    def count_pending(self, model_id: str | None, pipeline_version: int) -> int:
        return self._db.rows(
            "count tracks awaiting embeddings",
            f"SELECT count(*) FROM tracks t WHERE NOT {IS_MISSING}"
            " AND NOT EXISTS (SELECT 1"
            " FROM track_embeddings e WHERE e.track_id = t.id AND e.model_id = ? AND e.pipeline_version = ?)",
            [model_id, pipeline_version],
        )[0][0]

    def table(self, model_id: str, pipeline_version: int, track_ids: list[str] | None = None):
        """Current track embeddings with the columns search filters on, as a pyarrow table
        (missing tracks included: the index leaves them out, cheaper than an anti-join here)."""
        sql = (
            "SELECT e.track_id, e.embedding, e.window_count, t.duration, f.tempo, t.format FROM track_embeddings e"
            " JOIN tracks t ON t.id = e.track_id LEFT JOIN features f ON f.track_id = e.track_id"
            " WHERE e.model_id = ? AND e.pipeline_version = ?"
        )
        params: list = [model_id, pipeline_version]
        if track_ids is not None:
            in_list, values = id_list(track_ids)
            sql += f" AND e.track_id IN {in_list}"
            params += values
        # No ORDER BY: sorting rows that carry 2 KB vectors is most of a 1M-row load,
        # and search breaks ties by id itself.
        return self._db.arrow("read embeddings", sql, params)

    def windows(self, model_id: str, track_ids: list[str] | None = None) -> dict[str, WindowSet]:
        """Each track's window embeddings from this model (all tracks when ``track_ids`` is None)."""
        sql = "SELECT track_id, starts_s, ends_s, dim, embeddings FROM window_sets"
        wanted = None
        if track_ids is None or len(track_ids) > WINDOW_KEY_LOOKUP_LIMIT:
            # Many ids: one scan of this model's rows beats thousands of key lookups.
            sql, params = sql + " WHERE model_id = ?", [model_id]
            wanted = None if track_ids is None else set(track_ids)
        else:
            in_list, params = id_list([window_key(track_id, model_id) for track_id in track_ids])
            sql += f" WHERE key IN {in_list}"
        rows = self._db.rows("read window embeddings", sql, params)
        return {
            track_id: WindowSet(starts, ends, np.frombuffer(blob, dtype="<f4").reshape(len(starts), dim))
            for track_id, starts, ends, dim, blob in rows
            if wanted is None or track_id in wanted
        }
