"""Where tracks' files are: every path a track was read from, and the files that failed.

A track can live at several paths (the same content in two folders is one
track); sync compares what it finds on disk with these rows by path, size
and modification time, so an unchanged file is never read again.
"""

from __future__ import annotations

from engine.store.database import Database, at_or_under, id_list
from engine.store.types import Known, Source


def upsert_source(conn, track_id: str, source: Source) -> None:
    """Record (or re-point) a path inside an open transaction; a path that imports clears its failure."""
    conn.execute(
        "INSERT INTO sources (path, track_id, file_size, file_mtime) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (path) DO UPDATE SET track_id = excluded.track_id, file_size = excluded.file_size,"
        " file_mtime = excluded.file_mtime, seen_at = now()",
        [source.path, track_id, source.file_size, source.file_mtime],
    )
    conn.execute("DELETE FROM failures WHERE path = ?", [source.path])


class Sources:
    def __init__(self, db: Database):
        self._db = db

    def add(self, track_id: str, source: Source) -> None:
        self.add_many([(track_id, source)])

    def add_many(self, pairs: list[tuple[str, Source]]) -> None:
        """Record (track id, path) pairs in one transaction."""
        if not pairs:
            return
        with self._db.transaction("record source paths") as conn:
            for track_id, source in pairs:
                upsert_source(conn, track_id, source)

    def track_for(self, source: Source) -> str | None:
        """The track a path was indexed as, if the file is unchanged since (same size and mtime)."""
        rows = self._db.rows(
            "look up a source path",
            "SELECT s.track_id FROM sources s JOIN tracks t ON t.id = s.track_id"
            " WHERE s.path = ? AND s.file_size = ? AND s.file_mtime = ?",
            [source.path, source.file_size, source.file_mtime],
        )
        return rows[0][0] if rows else None

    def unchanged(self, sources: list[Source]) -> set[str]:
        """The paths among ``sources`` indexed as a track and unchanged since (``track_for`` in bulk:
        one join, for listings of a million files)."""
        if not sources:
            return set()
        import pyarrow as pa

        listed = pa.table({"path": [s.path for s in sources], "file_size": [s.file_size for s in sources],
                           "file_mtime": [s.file_mtime for s in sources]})
        with self._db.transaction("look up source paths") as conn:
            conn.register("listed_sources", listed)
            try:
                rows = conn.execute(
                    "SELECT l.path FROM listed_sources l JOIN sources s ON s.path = l.path"
                    " AND s.file_size = l.file_size AND s.file_mtime = l.file_mtime"
                    " JOIN tracks t ON t.id = s.track_id").fetchall()
            finally:
                conn.unregister("listed_sources")
        return {path for (path,) in rows}

    def of(self, track_ids: list[str]) -> dict[str, list[str]]:
        """Each track's source paths, sorted."""
        if not track_ids:
            return {}
        in_list, params = id_list(track_ids)
        rows = self._db.rows("read track locations", "SELECT track_id, list(path ORDER BY path) FROM sources"
                             f" WHERE track_id IN {in_list} GROUP BY track_id", params)
        return dict(rows)

    def shared_ids(self) -> list[str]:
        """Tracks whose content was found at more than one path (exact copies in the library's folders)."""
        return [track_id for (track_id,) in self._db.rows(
            "find copies", "SELECT track_id FROM sources WHERE track_id IS NOT NULL GROUP BY track_id"
            " HAVING count(*) > 1 ORDER BY track_id")]

    def under(self, roots: list[str]) -> dict[str, Known]:
        """Every known path at or under one of ``roots`` (absolute): sources, then failures."""
        known: dict[str, Known] = {}
        for root in roots:
            where, params = at_or_under("path", root)
            for path, track_id, size, mtime in self._db.rows(
                "read known paths", f"SELECT path, track_id, file_size, file_mtime FROM sources WHERE {where}", params,
            ):
                known[path] = Known(track_id, size, mtime)
            for path, size, mtime, error in self._db.rows(
                "read failed paths", f"SELECT path, file_size, file_mtime, error FROM failures WHERE {where}", params,
            ):
                known.setdefault(path, Known(None, size, mtime, error))
        return known

    def forget(self, paths: list[str]) -> None:
        """Drop paths (sources and failures) that no longer hold a file."""
        if not paths:
            return
        in_list, params = id_list(paths)
        with self._db.transaction("forget gone paths") as conn:
            conn.execute(f"DELETE FROM sources WHERE path IN {in_list}", params)
            conn.execute(f"DELETE FROM failures WHERE path IN {in_list}", params)

    def note_failure(self, source: Source, error: str) -> None:
        """Remember that this file, as it is now, could not be imported."""
        with self._db.transaction("record a failed file") as conn:
            conn.execute(
                "INSERT INTO failures (path, file_size, file_mtime, error) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (path) DO UPDATE SET file_size = excluded.file_size,"
                " file_mtime = excluded.file_mtime, error = excluded.error, failed_at = now()",
                [source.path, source.file_size, source.file_mtime, error],
            )
