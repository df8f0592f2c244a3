"""Tracks, their measurements and the source paths they were read from.

A new track is written whole (:meth:`Tracks.add`): its row, measurements,
source path, managed copy, embedding or the reason it has none, and the end
of its import job commit in one transaction, or none of it does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

from engine.errors import NotFoundError
from engine.keys import TONICS
from engine.store.curation import Curation, curation_where
from engine.store.database import Database, at_or_under, id_list
from engine.store.descriptions import category_key, write_categories, write_description
from engine.store.embeddings import embedded, write_embedding, write_failure
from engine.store.files import ManagedFiles
from engine.store.jobs import finish_job
from engine.store.journal import Journal
from engine.store.recent import Recent
from engine.store.sources import Sources, upsert_source
from engine.store.types import (
    CATEGORY_JOIN,
    CATEGORY_MODEL,
    CURATED_FIELDS,
    DESCRIBED_FIELDS,
    DESCRIPTION_JOIN,
    IS_MISSING,
    TRACK_COLUMNS,
    TRACK_FROM,
    EmbeddingWrite,
    Filters,
    JobStatus,
    NewTrack,
    Track,
    track_from_row,
)
from engine.store.waveforms import write_waveform

log = logging.getLogger(__name__)

RECENT_TRACKS = 4096  # tracks kept in memory for searches' hits: about 10 MB, a few hundred pages
RECENT_COUNTS = 64  # counts by filters kept until the next write


# A key's place on the Camelot wheel (1A, 1B, 2A, ... 12B: neighbours mix), as SQL; NULL without a
# key or its mode. camelot(): major (8 + 7 pc) mod 12, minor (5 + 7 pc) mod 12, 0 read as 12.
CAMELOT_ORDER = (
    "CASE WHEN d.key_mode IN ('major', 'minor') THEN"
    " ((CASE d.key_mode WHEN 'major' THEN 8 ELSE 5 END"
    f" + 7 * (list_position([{', '.join(repr(t) for t in TONICS)}], d.key_tonic) - 1) + 11) % 12 + 1) * 2"
    " + (d.key_mode = 'major')::INTEGER END"
)

# Sort keys a caller may choose, mapped to fixed SQL: never the caller's text.
SORTABLE = {
    "created_at": "t.created_at", "filename": "lower(t.filename)", "duration": "t.duration",
    "tempo": "f.tempo", "spectral_centroid": "f.spectral_centroid", "rms_energy": "f.rms_energy",
    "zero_crossing_rate": "f.zero_crossing_rate", "file_size": "t.file_size", "format": "t.format",
    "kind": "d.kind", "key": CAMELOT_ORDER, "category": "c.members[1]",
}

# Every table holding rows of a track, children first.
_TRACK_TABLES = [
    ("favourites", "track_id"),
    ("track_tags", "track_id"),
    ("collection_tracks", "track_id"),
    ("waveforms", "track_id"),
    ("track_categories", "track_id"),
    ("descriptions", "track_id"),
    ("missing_tracks", "track_id"),
    ("window_sets", "track_id"),
    ("track_embeddings", "track_id"),
    ("embedding_errors", "track_id"),
    ("features", "track_id"),
    ("sources", "track_id"),
    ("tracks", "id"),
]


class Tracks:
    def __init__(self, db: Database, journal: Journal, files: ManagedFiles, sources: Sources, curation: Curation):
        self._db = db
        self._journal = journal
        self._files = files
        self._sources = sources
        self._curation = curation
        self._recent = Recent(db, size=RECENT_TRACKS)  # a search's hits, read again by the next rerun or page
        # Counts asked again before anything changes: the library's size at every /health (each
        # command sent through the server asks it first) and every page view; 36 ms at 100k tracks.
        self._counts = Recent(db, size=RECENT_COUNTS)

    # -- writing --------------------------------------------------------------

    def add(self, new: NewTrack) -> bool:
        """Write a new track whole. Returns False, writing nothing but the source path,
        when a track with this content already exists.

        A managed file is moved into place inside the transaction and moved
        back out if the commit does not happen, so a track never exists
        without its file or the file without its track.
        """
        record = new.record
        placed: Path | None = None
        try:
            with self._db.transaction(f"save {record.filename}") as conn:
                if conn.execute("SELECT 1 FROM tracks WHERE id = ?", [record.id]).fetchone():
                    if new.source:
                        upsert_source(conn, record.id, new.source)
                    return False
                if new.managed_file is not None:
                    placed = self._files.place(new.managed_file, record.path)
                conn.execute(
                    "INSERT INTO tracks (id, filename, storage, path, format, codec, file_size, file_mtime,"
                    " sample_rate, channels, duration, analysed_duration, truncated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [record.id, record.filename, record.storage, record.path, record.format, record.codec,
                     record.file_size, record.file_mtime, record.sample_rate, record.channels,
                     record.duration, record.analysed_duration, record.truncated],
                )
                m = new.measurements
                conn.execute(
                    "INSERT INTO features (track_id, tempo, spectral_centroid, zero_crossing_rate, rms_energy,"
                    " feature_version) VALUES (?, ?, ?, ?, ?, ?)",
                    [record.id, m.tempo, m.spectral_centroid, m.zero_crossing_rate, m.rms_energy,
                     m.feature_version],
                )
                if new.description is not None:
                    write_description(conn, record.id, new.description)
                if new.source:
                    upsert_source(conn, record.id, new.source)
                if new.categories is not None:
                    write_categories(conn, record.id, new.categories)
                if new.waveform is not None:
                    write_waveform(conn, record.id, new.waveform)
                if isinstance(new.embedding, EmbeddingWrite):
                    write_embedding(conn, record.id, new.embedding)
                elif new.embedding is not None:
                    write_failure(conn, record.id, new.embedding)
                if new.job_id:
                    finish_job(conn, new.job_id, JobStatus.ADDED, "Added to the library.", record.id)
        except BaseException:
            if placed is not None:
                placed.unlink(missing_ok=True)
            raise
        written = embedded(new.embedding) if isinstance(new.embedding, EmbeddingWrite) else None
        self._journal.record("add", record.id, written)
        return True

    def delete(self, track_id: str) -> Track:
        """Remove a track's rows, then its managed copy. A user's own file is never touched."""
        track = self.get(track_id)
        managed = self._files.absolute_path(track) if track.storage == "managed" else None
        # One lock over rows and file, so a re-import of the same content
        # cannot place its copy between the commit and the unlink.
        with self._db.lock:
            with self._db.transaction(f"delete {track.filename}") as conn:
                for table, column in _TRACK_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [track_id])  # noqa: S608 (fixed names)
            self._journal.record("delete", track_id)
            if managed is not None:
                try:
                    managed.unlink(missing_ok=True)
                except OSError as exc:  # the rows are gone; the next open sweeps the file
                    log.warning("could not remove %s: %s", managed, exc)
        return track

    def sweep_orphans(self) -> list[Path]:
        """Remove managed files that belong to no track (left by a crash)."""
        with self._db.lock:
            known = {path for (path,) in self._db.rows("list managed files",
                                                       "SELECT path FROM tracks WHERE storage = 'managed'")}
            return self._files.sweep(known)

    # -- reading --------------------------------------------------------------

    def get(self, track_id: str) -> Track:
        rows = self._db.rows("read a track", f"SELECT {TRACK_COLUMNS} {TRACK_FROM} WHERE t.id = ?", [track_id])
        if not rows:
            raise NotFoundError(f"no track with id {track_id!r} in the library.", hint="List tracks with 'list'.")
        return self._located(rows)[0]

    def get_many(self, track_ids: list[str], *, located: bool = True) -> dict[str, Track]:
        """Tracks by id; ``located=False`` leaves ``locations`` empty (a search's hits and the
        index's replay need none, and the lookup is a third of a cached search at 100k tracks).
        Without locations, tracks read since the last write come from memory (engine.store.recent)."""
        if not track_ids:
            return {}
        found, writes = self._recent.take(track_ids) if not located else ({}, None)
        wanted = [track_id for track_id in track_ids if track_id not in found]
        if wanted:
            in_list, values = id_list(wanted)
            rows = self._db.rows("read tracks", f"SELECT {TRACK_COLUMNS} {TRACK_FROM} WHERE t.id IN {in_list}",
                                 values)
            tracks = self._located(rows) if located else self._assemble(rows)
            if not located:
                self._recent.keep({track.id: track for track in tracks}, writes)
            found.update((track.id, track) for track in tracks)
        return found

    def _assemble(self, rows: list[tuple]) -> list[Track]:
        """Tracks from TRACK_COLUMNS rows, with their descriptions and shown categories."""
        if not rows:
            return []
        in_list, values = id_list([row[0] for row in rows])
        described = {row[0]: row[1:] for row in self._db.rows(
            "read descriptions", f"SELECT track_id, {', '.join(DESCRIBED_FIELDS)} FROM descriptions"
            f" WHERE track_id IN {in_list}", values)}
        model = self._db.rows("read the category model", f"SELECT {CATEGORY_MODEL}")[0][0]
        keys, key_values = id_list([category_key(row[0], model) for row in rows] if model else [])
        categorised = {row[0]: row[1:] for row in self._db.rows(
            "read categories", f"SELECT track_id, members, scores FROM track_categories WHERE key IN {keys}",
            key_values)} if model else {}
        curated = self._curation.of([row[0] for row in rows])
        return [replace(track_from_row(row, described.get(row[0]), categorised.get(row[0])),
                        **dict(zip(CURATED_FIELDS, curated[row[0]]))) for row in rows]

    def _located(self, rows: list[tuple]) -> list[Track]:
        """``_assemble``, with every path where each track's content is."""
        paths = self._sources.of([row[0] for row in rows])
        tracks = []
        for track in self._assemble(rows):
            managed = [str(self._files.absolute_path(track))] if track.storage == "managed" else []
            tracks.append(replace(track, locations=tuple(managed + paths.get(track.id, []))))
        return tracks

    def exists(self, track_id: str) -> bool:
        return bool(self._db.rows("look up a track", "SELECT 1 FROM tracks WHERE id = ?", [track_id]))

    def resolve_id(self, prefix: str) -> str:
        """Accept a full id or a unique prefix of at least 6 characters (like git)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 6:
            raise NotFoundError(f"track id {prefix!r} is too short; give at least 6 characters.")
        rows = self._db.rows("find a track", "SELECT id FROM tracks WHERE starts_with(id, ?) ORDER BY id LIMIT 2",
                             [prefix])
        if not rows:
            raise NotFoundError(f"no track with id {prefix!r} in the library.", hint="List tracks with 'list'.")
        if len(rows) > 1:
            raise NotFoundError(f"track id {prefix!r} is ambiguous; give more characters.")
        return rows[0][0]

    def browse(self, filters: Filters = Filters(), *, name: str | None = None, missing: bool = False,
               sort: str = "created_at", descending: bool = True, limit: int = 50, offset: int = 0) -> list[Track]:
        """A page of tracks passing ``filters`` whose name contains ``name``, sorted by a SORTABLE key:
        present tracks, or with ``missing`` those whose files are all gone."""
        where, params = _where(filters, name, missing)
        order = SORTABLE.get(sort, SORTABLE["created_at"])
        direction = "DESC" if descending else "ASC"
        rows = self._db.rows(
            "list tracks",
            f"SELECT {TRACK_COLUMNS} {_from(where + ' ' + order)} WHERE {where}"
            f" ORDER BY {order} {direction} NULLS LAST, t.id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return self._located(rows)

    def count(self, filters: Filters = Filters(), *, name: str | None = None, missing: bool = False) -> int:
        key = (filters, name, missing)
        found, writes = self._counts.take([key])
        if key in found:
            return found[key]
        where, params = _where(filters, name, missing)
        count = self._db.rows("count tracks", f"SELECT count(*) {_from(where)} WHERE {where}", params)[0][0]
        self._counts.keep({key: count}, writes)
        return count

    def within(self, filters: Filters, column: str) -> tuple[str, list]:
        """SQL (and its parameters) keeping rows whose ``column`` is the id of a present track
        passing ``filters``; "TRUE" without filters. For queries over other tables (analytics)."""
        if filters == Filters():
            return "TRUE", []
        where, params = _where(filters, None)
        return f"{column} IN (SELECT t.id {_from(where)} WHERE {where})", params

    def matching_ids(self, filters: Filters) -> set[str]:
        """Ids of present tracks passing ``filters`` (a search's filter on what a sample is)."""
        where, params = _where(filters, None)
        return {track_id for (track_id,) in self._db.rows("filter tracks", f"SELECT t.id {_from(where)} WHERE {where}",
                                                           params)}

    def stats(self) -> dict:
        tracks, duration, size, missing = self._db.rows(
            "read library statistics",
            "SELECT count(*), coalesce(sum(duration), 0), coalesce(sum(file_size), 0),"
            " (SELECT count(*) FROM missing_tracks) FROM tracks",
        )[0]
        formats = self._db.rows("read library statistics",
                                "SELECT format, count(*) AS n FROM tracks GROUP BY format ORDER BY n DESC")
        return {"tracks": tracks, "total_duration_s": duration, "total_bytes": size,
                "formats": {fmt: n for fmt, n in formats}, "missing": missing}

    # -- after a sync -----------------------------------------------------------

    def set_location(self, track_id: str, *, path: str, missing: bool) -> None:
        """Where a referenced track plays from, and whether every file of it is gone
        (a missing track keeps its last path, so it is recognised when it comes back)."""
        self.set_locations([(track_id, path, missing)])

    def set_locations(self, changes: list[tuple[str, str, bool]]) -> None:
        """``set_location`` for many (track id, path, missing) at once, in one transaction."""
        if not changes:
            return
        flipped = []
        with self._db.transaction("update track locations") as conn:
            for track_id, path, missing in changes:
                was = conn.execute("SELECT EXISTS (SELECT 1 FROM missing_tracks WHERE track_id = id) FROM tracks"
                                   " WHERE id = ?", [track_id]).fetchone()
                if was is None:
                    continue
                conn.execute("UPDATE tracks SET path = ? WHERE id = ? AND path <> ?", [path, track_id, path])
                if missing and not was[0]:
                    conn.execute("INSERT INTO missing_tracks (track_id) VALUES (?)", [track_id])
                elif was[0] and not missing:
                    conn.execute("DELETE FROM missing_tracks WHERE track_id = ?", [track_id])
                if was[0] != missing:
                    flipped.append((track_id, missing))
        for track_id, missing in flipped:  # search indexes drop a missing track and take a found one back
            self._journal.record("missing" if missing else "found", track_id)

    def found_at(self, track_id: str, path: str) -> None:
        """A missing track's content turned up at ``path`` (a referenced file): it plays from there again."""
        rows = self._db.rows("look up a track", "SELECT storage, EXISTS (SELECT 1 FROM missing_tracks"
                             " WHERE track_id = id) FROM tracks WHERE id = ?", [track_id])
        if rows and rows[0] == ("referenced", True):
            self.set_location(track_id, path=path, missing=False)

    def missing_ids(self, roots: list[str] | None = None) -> list[str]:
        """Ids of missing tracks (last seen under one of ``roots``, when given)."""
        if roots is None:
            return [i for (i,) in self._db.rows("list missing tracks", "SELECT track_id FROM missing_tracks")]
        ids: list[str] = []
        for root in roots:
            where, params = at_or_under("s.path", root)
            ids += [i for (i,) in self._db.rows(
                "list missing tracks",
                "SELECT DISTINCT m.track_id FROM missing_tracks m JOIN sources s ON s.track_id = m.track_id"
                f" WHERE {where}", params)]
        return sorted(set(ids))


def _from(sql: str) -> str:
    """TRACK_FROM, joined with descriptions (d) and categories (c) when ``sql`` refers to them."""
    return (TRACK_FROM + (DESCRIPTION_JOIN if re.search(r"\bd\.", sql) else "")
            + (CATEGORY_JOIN if re.search(r"\bc\.", sql) else ""))


def _where(filters: Filters, name: str | None, missing: bool = False) -> tuple[str, list]:
    clauses, params = [f"{IS_MISSING} = ?"], [missing]
    if name:
        clauses.append("contains(lower(t.filename), lower(?))")
        params.append(name)
    if filters.formats:
        clauses.append("t.format IN (SELECT unnest(?::VARCHAR[]))")
        params.append([f.lower().lstrip(".") for f in filters.formats])
    for sql, value in (("f.tempo >= ?", filters.min_tempo), ("f.tempo <= ?", filters.max_tempo),
                       ("t.duration >= ?", filters.min_duration), ("t.duration <= ?", filters.max_duration)):
        if value is not None:
            clauses.append(sql)
            params.append(value)
    for sql, values in (description_where(filters), curation_where(favourite=filters.favourite, tags=filters.tags,
                                                                   collection=filters.collection)):
        if sql:
            clauses.append(sql)
            params += values
    return " AND ".join(clauses), params


def description_where(filters: Filters) -> tuple[str, list]:
    """SQL over d (descriptions) and c (categories) for the filters on what a sample is ("" when there
    are none); ``_from`` joins what it uses."""
    clauses, params = [], []
    if filters.kinds:
        clauses.append("d.kind IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(filters.kinds))
    labels = filters.key_labels()
    if labels is not None:
        clauses.append("concat_ws(' ', d.key_tonic, d.key_mode) IN (SELECT unnest(?::VARCHAR[]))")
        params.append(labels)
    if filters.categories:
        clauses.append("len(list_intersect(c.members, ?::VARCHAR[])) > 0")
        params.append(list(filters.categories))
    return " AND ".join(clauses), params
