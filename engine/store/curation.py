"""What a person keeps: favourites, tags and collections (migration 0008).

All three belong to a track's id, its content hash, so they follow a file through moves and
renames, stay through ``reembed`` and ``reanalyse``, and go with the track when it is deleted.
Tags and collection names are matched without regard to case: a tag is stored folded to lower
case; a collection keeps the name as first typed, keyed by its folded form.
"""

from __future__ import annotations

import itertools
import re

from engine.errors import ConflictError, InputError, NotFoundError
from engine.store.database import Database, id_list

MAX_NAME = 64
_SEPARATOR = chr(31)  # between a collection's key and a track id in collection_tracks.key
_SPACES = re.compile(r"\s+")


def tag_name(text: str) -> str:
    """A tag as stored: trimmed, inner spaces single, lower case; InputError when empty or too long."""
    return _name(text, what="tag").lower()


def collection_name(text: str) -> str:
    """A collection's name as typed, trimmed; InputError when empty, too long or holding a "/" (the name
    is a segment of the API's URLs)."""
    name = _name(text, what="collection name")
    if "/" in name:
        raise InputError(f"{name!r} holds a '/', which a collection's name cannot.", title="Invalid collection name",
                         hint="Use another character, e.g. '80s-90s'.")
    return name


def _name(text: str, *, what: str) -> str:
    name = _SPACES.sub(" ", str(text)).strip()
    if not name or len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        raise InputError(f"{text!r} is not a {what}: use 1 to {MAX_NAME} printable characters.",
                         title=f"Invalid {what}")
    return name


class Curation:
    def __init__(self, db: Database):
        self._db = db
        # Grows with every change here: a search remembers the ids a tag or collection filter
        # passes until it changes (the tracks' revision does not see these changes).
        self._revision = itertools.count(1)
        self.revision = 0

    def _changed(self) -> None:
        self.revision = next(self._revision)

    # -- favourites -------------------------------------------------------------

    def set_favourite(self, track_id: str, on: bool) -> None:
        with self._db.transaction("mark a favourite") as conn:
            if on:
                conn.execute("INSERT OR IGNORE INTO favourites (track_id) VALUES (?)", [track_id])
            else:
                conn.execute("DELETE FROM favourites WHERE track_id = ?", [track_id])
        self._changed()

    # -- tags -------------------------------------------------------------------

    def add_tags(self, track_id: str, tags: list[str]) -> None:
        names = sorted({tag_name(t) for t in tags})
        with self._db.transaction("tag a track") as conn:
            for tag in names:
                conn.execute("INSERT OR IGNORE INTO track_tags (key, track_id, tag) VALUES (?, ?, ?)",
                             [f"{track_id}:{tag}", track_id, tag])
        self._changed()

    def remove_tags(self, track_id: str, tags: list[str]) -> None:
        if not tags:
            return
        keys, values = id_list([f"{track_id}:{tag_name(t)}" for t in tags])
        with self._db.transaction("untag a track") as conn:
            conn.execute(f"DELETE FROM track_tags WHERE key IN {keys}", values)  # noqa: S608 (placeholders)
        self._changed()

    def tags(self) -> list[tuple[str, int]]:
        """Every tag with how many tracks carry it, most used first (for autocomplete)."""
        return [(tag, n) for tag, n in self._db.rows(
            "list tags", "SELECT tag, count(*) AS n FROM track_tags GROUP BY tag ORDER BY n DESC, tag")]

    # -- collections ------------------------------------------------------------

    def create_collection(self, name: str) -> str:
        name = collection_name(name)
        with self._db.transaction("create a collection") as conn:
            if conn.execute("SELECT 1 FROM collections WHERE key = ?", [name.lower()]).fetchone():
                raise ConflictError(f"a collection named {name!r} exists already.",
                                    hint="Add tracks to it, or choose another name.")
            conn.execute("INSERT INTO collections (key, name) VALUES (?, ?)", [name.lower(), name])
        self._changed()
        return name

    def delete_collection(self, name: str) -> str:
        key, shown = self._collection(name)
        with self._db.transaction("delete a collection") as conn:
            conn.execute("DELETE FROM collection_tracks WHERE collection = ?", [key])
            conn.execute("DELETE FROM collections WHERE key = ?", [key])
        self._changed()
        return shown

    def add_to_collection(self, name: str, track_ids: list[str]) -> str:
        """Append tracks to a collection, in the order given; those already in it keep their place."""
        key, shown = self._collection(name)
        with self._db.transaction("add to a collection") as conn:
            last = conn.execute("SELECT coalesce(max(position), 0) FROM collection_tracks WHERE collection = ?",
                                [key]).fetchone()[0]
            for track_id in dict.fromkeys(track_ids):
                if conn.execute("SELECT 1 FROM collection_tracks WHERE key = ?",
                                [key + _SEPARATOR + track_id]).fetchone():
                    continue
                last += 1
                conn.execute("INSERT INTO collection_tracks (key, collection, track_id, position) VALUES (?, ?, ?, ?)",
                             [key + _SEPARATOR + track_id, key, track_id, last])
        self._changed()
        return shown

    def remove_from_collection(self, name: str, track_ids: list[str]) -> str:
        key, shown = self._collection(name)
        if not track_ids:
            return shown
        keys, values = id_list([key + _SEPARATOR + track_id for track_id in track_ids])
        with self._db.transaction("remove from a collection") as conn:
            conn.execute(f"DELETE FROM collection_tracks WHERE key IN {keys}", values)  # noqa: S608 (placeholders)
        self._changed()
        return shown

    def collections(self) -> list[dict]:
        """Every collection: ``name``, ``tracks`` (how many) and ``created_at``, by name."""
        return [{"name": name, "tracks": n, "created_at": created} for name, n, created in self._db.rows(
            "list collections",
            "SELECT c.name, count(ct.track_id), c.created_at FROM collections c"
            " LEFT JOIN collection_tracks ct ON ct.collection = c.key GROUP BY c.key, c.name, c.created_at"
            " ORDER BY lower(c.name)")]

    def collection_ids(self, name: str) -> tuple[str, list[str]]:
        """A collection's name as typed and its track ids in order."""
        key, shown = self._collection(name)
        return shown, [track_id for (track_id,) in self._db.rows(
            "read a collection", "SELECT track_id FROM collection_tracks WHERE collection = ? ORDER BY position",
            [key])]

    def _collection(self, name: str) -> tuple[str, str]:
        key = collection_name(name).lower()
        rows = self._db.rows("find a collection", "SELECT name FROM collections WHERE key = ?", [key])
        if not rows:
            raise NotFoundError(f"no collection named {name.strip()!r}.",
                                hint="List them with 'python -m engine collection list'.")
        return key, rows[0][0]

    # -- for reads ----------------------------------------------------------------

    def of(self, track_ids: list[str]) -> dict[str, tuple[bool, tuple[str, ...], tuple[str, ...]]]:
        """Per track id: (favourite, tags sorted, collection names by name), for the tracks in hand."""
        if not track_ids:
            return {}
        in_list, values = id_list(track_ids)
        # One statement for the three tables: a page of tracks is read on every search.
        rows = self._db.rows(
            "read what was kept",
            f"SELECT 'favourite', track_id, NULL FROM favourites WHERE track_id IN {in_list}"
            f" UNION ALL SELECT 'tag', track_id, tag FROM track_tags WHERE track_id IN {in_list}"
            " UNION ALL SELECT 'collection', ct.track_id, c.name FROM collection_tracks ct"
            f" JOIN collections c ON c.key = ct.collection WHERE ct.track_id IN {in_list}",
            values * 3)
        favourites: set[str] = set()
        tags: dict[str, list[str]] = {}
        collections: dict[str, list[str]] = {}
        for kind, track_id, name in rows:
            if kind == "favourite":
                favourites.add(track_id)
            else:
                (tags if kind == "tag" else collections).setdefault(track_id, []).append(name)
        return {track_id: (track_id in favourites, tuple(sorted(tags.get(track_id, ()))),
                           tuple(sorted(collections.get(track_id, ()), key=str.lower))) for track_id in track_ids}


def curation_where(*, favourite: bool, tags: tuple[str, ...], collection: str | None) -> tuple[str, list]:
    """SQL over t (tracks) for the filters on what a person kept ("" when there are none): favourites
    only, every one of ``tags``, and the tracks of ``collection``."""
    clauses, params = [], []
    if favourite:
        clauses.append("t.id IN (SELECT track_id FROM favourites)")
    for tag in tags:
        clauses.append("t.id IN (SELECT track_id FROM track_tags WHERE tag = ?)")
        params.append(tag_name(tag))
    if collection:
        clauses.append("t.id IN (SELECT track_id FROM collection_tracks WHERE collection = ?)")
        params.append(collection_name(collection).lower())
    return " AND ".join(clauses), params
