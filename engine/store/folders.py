"""The folders a library indexes in place, with their watch flag and last sync."""

from __future__ import annotations

from engine.errors import NotFoundError
from engine.store.database import Database
from engine.store.types import Folder

_SELECT = (
    "SELECT f.path, f.watched, f.added_at, f.last_sync,"
    " count(DISTINCT s.track_id) FILTER (WHERE m.track_id IS NULL),"
    " count(DISTINCT s.track_id) FILTER (WHERE m.track_id IS NOT NULL)"
    " FROM folders f"
    " LEFT JOIN sources s ON starts_with(s.path, rtrim(f.path, '/') || '/')"
    " LEFT JOIN missing_tracks m ON m.track_id = s.track_id"
)


class Folders:
    def __init__(self, db: Database):
        self._db = db

    def add(self, path: str, *, watched: bool) -> None:
        """Remember a folder (again: its watch flag is updated)."""
        self._db.execute(
            "add a library folder",
            "INSERT INTO folders (path, watched) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET watched = excluded.watched",
            [path, watched],
        )

    def remember(self, path: str) -> None:
        """Record a folder an import came from, leaving a known folder's watch flag as it is."""
        self._db.execute("record a library folder",
                         "INSERT INTO folders (path, watched) VALUES (?, false) ON CONFLICT (path) DO NOTHING", [path])

    def list(self) -> list[Folder]:
        rows = self._db.rows("list library folders", f"{_SELECT} GROUP BY ALL ORDER BY f.path")
        return [Folder(*row) for row in rows]

    def get(self, path: str) -> Folder:
        rows = self._db.rows("read a library folder", f"{_SELECT} WHERE f.path = ? GROUP BY ALL", [path])
        if not rows:
            raise NotFoundError(f"{path} is not one of the library's folders.",
                                hint="List them with 'python -m engine folder list'.")
        return Folder(*rows[0])

    def set_watched(self, path: str, watched: bool) -> None:
        self.get(path)
        self._db.execute("change a folder's watch flag", "UPDATE folders SET watched = ? WHERE path = ?",
                         [watched, path])

    def synced(self, paths: list[str]) -> None:
        for path in paths:
            self._db.execute("record a folder's sync", "UPDATE folders SET last_sync = now() WHERE path = ?", [path])

    def remove(self, path: str) -> None:
        self.get(path)
        self._db.execute("remove a library folder", "DELETE FROM folders WHERE path = ?", [path])
