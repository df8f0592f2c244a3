"""What each sample is: its description, its categories per model, and what is left to analyse.

A new track's description and categories are written in its own transaction
(``Tracks.add``); ``reanalyse`` rewrites a track's features and description
together (:meth:`Descriptions.save`), and categories are recomputed in bulk
from stored embeddings (:meth:`Descriptions.save_categories`). Reads show the
categories of one model, the ``category_model`` in ``library_state``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.store.database import Database, id_list
from engine.store.journal import Journal
from engine.store.types import CategoryScores, Description, Measurements


def write_description(conn, track_id: str, d: Description) -> None:
    """Write (or replace) one track's description inside an open transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO descriptions (track_id, kind, kind_confidence, tempo_source, bars, key_tonic,"
        " key_mode, key_confidence, key_source, name_category, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [track_id, d.kind, d.kind_confidence, d.tempo_source, d.bars, d.key_tonic, d.key_mode, d.key_confidence,
         d.key_source, d.name_category, d.version],
    )


def category_key(track_id: str, model_id: str) -> str:
    """track_categories' one-column key (see migration 0006)."""
    return f"{track_id}:{model_id}"


def write_categories(conn, track_id: str, c: CategoryScores) -> None:
    """Write (or replace) one track's category scores from one model, inside an open transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO track_categories (key, track_id, model_id, version, scores, members)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [category_key(track_id, c.model_id), track_id, c.model_id, c.version,
         np.ascontiguousarray(c.scores, dtype="<f4").tobytes(), c.members],
    )


# Tracks analysed by older versions than the two bound (features, description), or never, whose
# files are there to read (a missing track waits until sync finds it again).
_OUTDATED = (
    "FROM tracks t LEFT JOIN features f ON f.track_id = t.id LEFT JOIN descriptions d ON d.track_id = t.id"
    " WHERE (coalesce(f.feature_version, 0) < ? OR coalesce(d.version, 0) < ?)"
    " AND NOT EXISTS (SELECT 1 FROM missing_tracks m WHERE m.track_id = t.id)"
)


class Descriptions:
    def __init__(self, db: Database, journal: Journal):
        self._db = db
        self._journal = journal

    def save(self, track_id: str, measurements: Measurements, description: Description) -> bool:
        """Replace a track's features and description (``reanalyse``); False when the track is gone."""
        m = measurements
        with self._db.transaction("save the analysis") as conn:
            if not conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                return False
            conn.execute(
                "INSERT OR REPLACE INTO features (track_id, tempo, spectral_centroid, zero_crossing_rate,"
                " rms_energy, feature_version) VALUES (?, ?, ?, ?, ?, ?)",
                [track_id, m.tempo, m.spectral_centroid, m.zero_crossing_rate, m.rms_energy, m.feature_version],
            )
            write_description(conn, track_id, description)
        self._journal.record("describe", track_id)  # search indexes read its tempo again
        return True

    def to_analyse(self, *, feature_version: int, description_version: int, limit: int) -> list[str]:
        """Ids of present tracks whose features or description are older than the given versions (or
        absent), oldest import first."""
        return [track_id for (track_id,) in self._db.rows(
            "list tracks to analyse",
            f"SELECT t.id {_OUTDATED} ORDER BY t.created_at, t.id LIMIT ?",
            [feature_version, description_version, limit])]

    def count_to_analyse(self, *, feature_version: int, description_version: int) -> int:
        return self._db.rows("count tracks to analyse", f"SELECT count(*) {_OUTDATED}",
                             [feature_version, description_version])[0][0]

    # -- categories --------------------------------------------------------------

    def category_model(self) -> str | None:
        """The model whose categories reads show (CATEGORY_MODEL in SQL)."""
        rows = self._db.rows("read the category model", "SELECT value FROM library_state WHERE key = 'category_model'")
        return rows[0][0] if rows else None

    def set_category_model(self, model_id: str) -> None:
        if self.category_model() == model_id:
            return
        with self._db.transaction("choose the category model") as conn:
            conn.execute("INSERT OR REPLACE INTO library_state (key, value) VALUES ('category_model', ?)",
                         [model_id])
        self._journal.record("categories", "*")

    def category_vectors(self, model_id: str, version: int) -> np.ndarray | None:
        """A model's category vectors (categories, dim), as saved, or None."""
        rows = self._db.rows("read category vectors",
                             "SELECT dim, vectors FROM category_vectors WHERE model_id = ? AND version = ?",
                             [model_id, version])
        if not rows:
            return None
        dim, data = rows[0]
        return np.frombuffer(data, dtype="<f4").reshape(-1, dim).copy()

    def save_category_vectors(self, model_id: str, version: int, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        with self._db.transaction("save category vectors") as conn:
            conn.execute("INSERT OR REPLACE INTO category_vectors (model_id, version, dim, vectors)"
                         " VALUES (?, ?, ?, ?)", [model_id, version, vectors.shape[1], vectors.tobytes()])

    def uncategorised(self, model_id: str, pipeline_version: int, version: int) -> list[str]:
        """Ids of tracks with an embedding from the model but no category scores of this vocabulary
        ``version`` from it. Reads ids only: a dashboard start asks this of every track."""
        return [track_id for (track_id,) in self._db.rows(
            "list tracks to categorise",
            "SELECT e.track_id FROM track_embeddings e WHERE e.model_id = ? AND e.pipeline_version = ?"
            " AND NOT EXISTS (SELECT 1 FROM track_categories c WHERE c.key = e.track_id || ':' || e.model_id"
            " AND c.version = ?) ORDER BY e.track_id",
            [model_id, pipeline_version, version])]

    def name_categories(self, track_ids: list[str]) -> dict[str, str]:
        """The path category hint of each track that has one."""
        in_list, values = id_list(track_ids)
        return dict(self._db.rows("read category hints", "SELECT track_id, name_category FROM descriptions"
                                  f" WHERE name_category IS NOT NULL AND track_id IN {in_list}", values))

    def save_categories(self, rows: list[tuple[str, CategoryScores]]) -> None:
        """Write many tracks' category scores in one transaction."""
        if not rows:
            return
        table = pa.table({
            "key": [category_key(track_id, c.model_id) for track_id, c in rows],
            "track_id": [track_id for track_id, _ in rows],
            "model_id": [c.model_id for _, c in rows],
            "version": pa.array([c.version for _, c in rows], pa.int32()),
            "scores": pa.array([np.ascontiguousarray(c.scores, dtype="<f4").tobytes() for _, c in rows],
                               pa.binary()),
            "members": pa.array([c.members for _, c in rows], pa.list_(pa.string())),
        })
        with self._db.transaction("save categories") as conn:
            conn.register("new_categories", table)
            try:
                conn.execute("INSERT OR REPLACE INTO track_categories SELECT key, track_id, model_id, version,"
                             " scores, members FROM new_categories")
            finally:
                conn.unregister("new_categories")
        self._journal.record("categories", "*")
