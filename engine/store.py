"""The library on disk: one DuckDB file plus content-addressed audio copies.

All access goes through ``Store``. One connection is shared by the process
and serialised with a lock (DuckDB allows one writing process per file). Every
DuckDB error is re-raised as a titled ``StoreError``. All SQL is bound.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import re
import threading
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from engine.errors import LibraryLockedError, NotFoundError, StoreError, first_line
from engine.features import FEATURE_VERSION, Features
from engine.migrations import MIGRATIONS

log = logging.getLogger(__name__)

STORAGE_KINDS = ("managed", "referenced")
MANAGED_PATH = re.compile(r"audio/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,8}")

TRACK_COLUMNS = """
    t.id, t.filename, t.storage, t.path, t.format, t.codec, t.file_size, t.file_mtime,
    t.sample_rate, t.channels, t.duration, t.analysed_duration, t.truncated, t.created_at,
    f.tempo, f.spectral_centroid, f.zero_crossing_rate, f.rms_energy, f.feature_version
"""


@dataclass(frozen=True)
class TrackRecord:
    """What is stored about one file, besides its features."""

    id: str
    filename: str
    storage: str  # "managed" or "referenced"
    path: str
    format: str
    codec: str | None
    file_size: int
    file_mtime: float | None
    sample_rate: int
    channels: int
    duration: float
    analysed_duration: float
    truncated: bool


class Store:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.audio_dir = self.data_dir / "audio"
        self.db_path = self.data_dir / "traum.duckdb"
        self._lock = threading.RLock()
        # In-process change journal of Change rows. Search indexes replay it to
        # stay in step with every add, delete and re-embed; an embedding written
        # travels with its change, so replaying it reads nothing back.
        # Enough on its own because DuckDB gives one process the file.
        self.revision = 0
        self._changes: list[Change] = []
        try:
            self.audio_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {self.data_dir}: {exc.strerror}.",
                hint="Set TRAUM_DATA_DIR to a writable folder.",
            ) from None
        self._claim()
        try:
            self._conn = _connect(self.db_path)
            self._migrate()
        except BaseException:
            self._release()
            raise

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._release()

    def _claim(self) -> None:
        # DuckDB keeps other processes out, but would let this one open the
        # file twice; two Stores would then each recover "stale" jobs, sweep
        # the other's uncommitted copies and keep separate change journals.
        key = str(self.db_path.resolve())
        with _OPEN_LOCK:
            holder = _OPEN.get(key)
            if holder is not None and holder() is not None:
                raise LibraryLockedError(
                    f"the library {self.db_path} is already open in this process.",
                    hint="Use the open library object instead of opening it twice.",
                )
            _OPEN[key] = weakref.ref(self)

    def _release(self) -> None:
        key = str(self.db_path.resolve())
        with _OPEN_LOCK:
            holder = _OPEN.get(key)
            if holder is not None and holder() in (None, self):
                del _OPEN[key]

    @contextlib.contextmanager
    def _errors(self, action: str):
        try:
            yield
        except duckdb.Error as exc:
            raise StoreError(f"could not {action}: {first_line(exc)}", title="Library error") from exc

    @contextlib.contextmanager
    def transaction(self, action: str):
        """One transaction under the process lock; rolled back on any error."""
        with self._lock, self._errors(action):
            self._conn.execute("BEGIN TRANSACTION")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _journal(self, kind: str, track_id: str, embedded: Embedded | None = None) -> None:
        with self._lock:
            self.revision += 1
            self._changes.append(Change(self.revision, kind, track_id, embedded))
            if len(self._changes) > JOURNAL_LIMIT:
                del self._changes[: len(self._changes) - JOURNAL_LIMIT // 2]

    def reload_journal(self) -> None:
        """After a bulk change (import), make every index rebuild from scratch."""
        with self._lock:
            self.revision += 1
            self._changes.append(Change(self.revision, "reload", "*"))

    def changes_since(self, revision: int) -> list[Change]:
        with self._lock:
            if revision >= self.revision:
                return []
            if not self._changes or revision < self._changes[0].revision - 1:  # trimmed away: start over
                return [Change(self.revision, "reload", "*")]
            first = bisect.bisect_right(self._changes, revision, key=lambda change: change.revision)
            return self._changes[first:]

    def _query(self, action: str, sql: str, params=()) -> list[dict]:
        with self._lock, self._errors(action):
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def frame(self, action: str, sql: str, params=()):
        """A read query as a pandas DataFrame (analytics)."""
        with self._lock, self._errors(action):
            return self._conn.execute(sql, params).df()

    def _migrate(self) -> None:
        with self._lock, self._errors("upgrade the library schema"):
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
            )
            applied = {row[0] for row in self._conn.execute("SELECT name FROM schema_migrations").fetchall()}
        for version, (name, step) in enumerate(MIGRATIONS, start=1):
            if name in applied:
                continue
            with self.transaction(f"apply migration {name}") as conn:
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])

    def applied_migrations(self) -> list[str]:
        return [r["name"] for r in self._query("read migrations", "SELECT name FROM schema_migrations ORDER BY version")]

    # -- tracks -------------------------------------------------------------

    def managed_path_for(self, track_id: str, container: str) -> str:
        """Where a managed copy lives, relative to the data dir: audio/ab/<sha256>.<ext>."""
        ext = "".join(ch for ch in container.lower() if ch.isalnum())[:8] or "bin"
        return f"audio/{track_id[:2]}/{track_id}.{ext}"

    def add_track(
        self,
        record: TrackRecord,
        features: Features,
        *,
        source: tuple[str, int, float] | None = None,
        place_file=None,
        job_id: str | None = None,
        extra_writes=None,
    ) -> bool:
        """Insert a track, its features and its source path in one transaction.

        ``place_file(absolute_target)`` puts a managed copy in place; it runs
        inside the transaction and the file is removed again if the commit
        does not happen, so a track never exists without its file or vice
        versa. ``extra_writes(conn)`` lets later stages (embeddings) join the
        same transaction. Returns False, writing nothing but the source path,
        when a track with this id already exists.
        """
        placed: Path | None = None
        try:
            with self.transaction(f"save {record.filename}") as conn:
                exists = conn.execute("SELECT 1 FROM tracks WHERE id = ?", [record.id]).fetchone()
                if exists:
                    if source:
                        _upsert_source(conn, record.id, *source)
                    return False
                if place_file is not None:
                    placed = self.data_dir / record.path
                    placed.parent.mkdir(parents=True, exist_ok=True)
                    place_file(placed)
                conn.execute(
                    "INSERT INTO tracks (id, filename, storage, path, format, codec, file_size, file_mtime,"
                    " sample_rate, channels, duration, analysed_duration, truncated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        record.id, record.filename, record.storage, record.path, record.format, record.codec,
                        record.file_size, record.file_mtime, record.sample_rate, record.channels,
                        record.duration, record.analysed_duration, record.truncated,
                    ],
                )
                conn.execute(
                    "INSERT INTO features (track_id, tempo, spectral_centroid, zero_crossing_rate, rms_energy,"
                    " feature_version) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        record.id, features.tempo_bpm, features.spectral_centroid_hz,
                        features.zero_crossing_rate, features.rms_energy, FEATURE_VERSION,
                    ],
                )
                if source:
                    _upsert_source(conn, record.id, *source)
                if extra_writes is not None:
                    extra_writes(conn)
                if job_id:
                    _finish_job(conn, job_id, "added", "Added to the library.", record.id)
        except BaseException:
            if placed is not None:
                placed.unlink(missing_ok=True)
            raise
        self._journal("add", record.id, getattr(extra_writes, "embedded", None))
        return True

    def get_track(self, track_id: str) -> dict:
        rows = self._query(
            "read a track",
            f"SELECT {TRACK_COLUMNS} FROM tracks t LEFT JOIN features f ON f.track_id = t.id WHERE t.id = ?",
            [track_id],
        )
        if not rows:
            raise NotFoundError(f"no track with id {track_id!r} in the library.", hint="List tracks with 'list'.")
        return rows[0]

    def resolve_id(self, prefix: str) -> str:
        """Accept a full id or a unique prefix of at least 6 characters (like git)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 6:
            raise NotFoundError(f"track id {prefix!r} is too short; give at least 6 characters.")
        rows = self._query(
            "find a track", "SELECT id FROM tracks WHERE starts_with(id, ?) ORDER BY id LIMIT 2", [prefix]
        )
        if not rows:
            raise NotFoundError(f"no track with id {prefix!r} in the library.", hint="List tracks with 'list'.")
        if len(rows) > 1:
            raise NotFoundError(f"track id {prefix!r} is ambiguous; give more characters.")
        return rows[0]["id"]

    def list_tracks(self, *, limit: int = 50, offset: int = 0, sort: str = "created_at", descending: bool = True,
                    filename: str | None = None, formats: tuple[str, ...] = (), min_tempo: float | None = None,
                    max_tempo: float | None = None, min_duration: float | None = None,
                    max_duration: float | None = None) -> list[dict]:
        where, params = _track_filters(filename, formats, min_tempo, max_tempo, min_duration, max_duration)
        order = SORTABLE[sort] if sort in SORTABLE else SORTABLE["created_at"]
        direction = "DESC" if descending else "ASC"
        return self._query(
            "list tracks",
            f"SELECT {TRACK_COLUMNS} FROM tracks t LEFT JOIN features f ON f.track_id = t.id WHERE {where}"
            f" ORDER BY {order} {direction} NULLS LAST, t.id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    def count_tracks(self, *, filename: str | None = None, formats: tuple[str, ...] = (),
                     min_tempo: float | None = None, max_tempo: float | None = None,
                     min_duration: float | None = None, max_duration: float | None = None) -> int:
        where, params = _track_filters(filename, formats, min_tempo, max_tempo, min_duration, max_duration)
        return self._query(
            "count tracks",
            f"SELECT count(*) AS n FROM tracks t LEFT JOIN features f ON f.track_id = t.id WHERE {where}",
            params,
        )[0]["n"]

    def stats(self) -> dict:
        row = self._query(
            "read library statistics",
            "SELECT count(*) AS tracks, coalesce(sum(duration), 0) AS total_duration_s,"
            " coalesce(sum(file_size), 0) AS total_bytes FROM tracks",
        )[0]
        formats = self._query(
            "read library statistics", "SELECT format, count(*) AS n FROM tracks GROUP BY format ORDER BY n DESC"
        )
        row["formats"] = {r["format"]: r["n"] for r in formats}
        return row

    def track_id_for_source(self, path: str, size: int, mtime: float) -> str | None:
        """The track a path was indexed as, if the file is unchanged since (same size and mtime)."""
        rows = self._query(
            "look up a source path",
            "SELECT s.track_id FROM sources s JOIN tracks t ON t.id = s.track_id"
            " WHERE s.path = ? AND s.file_size = ? AND s.file_mtime = ?",
            [path, size, mtime],
        )
        return rows[0]["track_id"] if rows else None

    def add_source(self, track_id: str, path: str, size: int, mtime: float) -> None:
        with self.transaction("record a source path") as conn:
            _upsert_source(conn, track_id, path, size, mtime)

    def has_track(self, track_id: str) -> bool:
        return bool(self._query("look up a track", "SELECT 1 AS x FROM tracks WHERE id = ?", [track_id]))

    def delete_track(self, track_id: str) -> dict:
        """Remove a track's rows, then its managed copy. A user's own file is never touched."""
        track = self.get_track(track_id)
        managed = self.absolute_path(track) if track["storage"] == "managed" else None
        # One lock over rows and file, so a re-import of the same content
        # cannot place its copy between the commit and the unlink.
        with self._lock:
            with self.transaction(f"delete {track['filename']}") as conn:
                for table, column in _TRACK_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [track_id])  # noqa: S608 (fixed names)
            self._journal("delete", track_id)
            if managed is not None:
                try:
                    managed.unlink(missing_ok=True)
                except OSError as exc:  # the rows are gone; the next open sweeps the file
                    log.warning("could not remove %s: %s", managed, exc)
        return track

    def absolute_path(self, track: dict) -> Path:
        if track["storage"] != "managed":
            return Path(track["path"])
        if not MANAGED_PATH.fullmatch(track["path"]):  # never follow a path that could leave data/audio
            raise StoreError(f"refusing the unexpected library path {track['path']!r} of {track['filename']}.")
        return self.data_dir / track["path"]

    def sweep_orphans(self) -> list[Path]:
        """Remove files under data/audio that belong to no track (left by a crash)."""
        with self._lock:
            with self._errors("list managed files"):
                rows = self._conn.execute("SELECT path FROM tracks WHERE storage = 'managed'").fetchall()
            known = {row[0] for row in rows}
            removed = []
            # os.walk rather than Path.rglob: 0.06 s against 1 to 2 s for 100k files,
            # and this runs before the dashboard's first page.
            for root, _dirs, files in os.walk(self.audio_dir):
                relative_root = Path(root).relative_to(self.data_dir).as_posix()
                for name in files:
                    if f"{relative_root}/{name}" not in known:
                        orphan = Path(root, name)
                        orphan.unlink(missing_ok=True)
                        removed.append(orphan)
            return removed

    # -- embeddings -----------------------------------------------------------

    def embedding_writes(self, track_id: str, vectors, model_id: str, pipeline_version: int):
        """A callback writing one track's embeddings inside an open transaction.

        ``vectors`` has ``track`` (D,), ``windows`` (n, D), ``starts_s`` and
        ``ends_s``. Any earlier rows of this model for the track are replaced.
        """
        windows = np.ascontiguousarray(vectors.windows, dtype="<f4")

        def write(conn) -> None:
            conn.execute("DELETE FROM window_sets WHERE key = ?", [window_key(track_id, model_id)])
            conn.execute("DELETE FROM track_embeddings WHERE track_id = ? AND model_id = ?", [track_id, model_id])
            conn.execute("DELETE FROM embedding_errors WHERE track_id = ?", [track_id])
            conn.execute(
                "INSERT INTO track_embeddings (track_id, model_id, pipeline_version, dim, embedding, window_count)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [track_id, model_id, pipeline_version, windows.shape[1],
                 np.ascontiguousarray(vectors.track, dtype="<f4").tobytes(), len(windows)],
            )
            conn.execute(
                "INSERT INTO window_sets (key, track_id, model_id, dim, starts_s, ends_s, embeddings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [window_key(track_id, model_id), track_id, model_id, windows.shape[1],
                 [float(x) for x in vectors.starts_s], [float(x) for x in vectors.ends_s], windows.tobytes()],
            )

        write.embedded = Embedded(model_id, pipeline_version, np.array(vectors.track, dtype=np.float32), len(windows))
        return write

    def save_embeddings(self, track_id: str, vectors, model_id: str, pipeline_version: int) -> bool:
        """Store a track's embeddings; False (nothing written) when the track was deleted meanwhile."""
        with self.transaction("save embeddings") as conn:
            if not conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                return False
            write = self.embedding_writes(track_id, vectors, model_id, pipeline_version)
            write(conn)
        self._journal("embed", track_id, write.embedded)
        return True

    def embedding_error_writes(self, track_id: str, model_id: str | None, message: str):
        """A callback recording why a track has no embedding, inside an open transaction."""

        def write(conn) -> None:
            conn.execute(
                "INSERT INTO embedding_errors (track_id, model_id, message) VALUES (?, ?, ?)"
                " ON CONFLICT (track_id) DO UPDATE SET model_id = excluded.model_id,"
                " message = excluded.message, noted_at = now()",
                [track_id, model_id, message],
            )

        return write

    def note_embedding_error(self, track_id: str, model_id: str | None, message: str) -> None:
        with self.transaction("record an embedding error") as conn:
            if conn.execute("SELECT 1 FROM tracks WHERE id = ?", [track_id]).fetchone():
                self.embedding_error_writes(track_id, model_id, message)(conn)

    def pending_embeddings(self, model_id: str | None, pipeline_version: int) -> list[dict]:
        """Tracks with no embedding from this model and pipeline version (all tracks when model_id is None)."""
        return self._query(
            "list tracks awaiting embeddings",
            f"SELECT {TRACK_COLUMNS}, err.message AS embedding_error FROM tracks t"
            " LEFT JOIN features f ON f.track_id = t.id"
            " LEFT JOIN embedding_errors err ON err.track_id = t.id"
            " WHERE NOT EXISTS (SELECT 1 FROM track_embeddings e WHERE e.track_id = t.id"
            "   AND e.model_id = ? AND e.pipeline_version = ?)"
            " ORDER BY t.created_at, t.id",
            [model_id, pipeline_version],
        )

    def count_pending(self, model_id: str | None, pipeline_version: int) -> int:
        return self._query(
            "count tracks awaiting embeddings",
            "SELECT count(*) AS n FROM tracks t WHERE NOT EXISTS (SELECT 1 FROM track_embeddings e"
            " WHERE e.track_id = t.id AND e.model_id = ? AND e.pipeline_version = ?)",
            [model_id, pipeline_version],
        )[0]["n"]

    def embedding_table(self, model_id: str, pipeline_version: int, track_ids: list[str] | None = None):
        """Current track embeddings with the columns search filters on, as a pyarrow table."""
        sql = (
            "SELECT e.track_id, e.embedding, e.window_count, t.duration, f.tempo, t.format FROM track_embeddings e"
            " JOIN tracks t ON t.id = e.track_id LEFT JOIN features f ON f.track_id = e.track_id"
            " WHERE e.model_id = ? AND e.pipeline_version = ?"
        )
        params: list = [model_id, pipeline_version]
        if track_ids is not None:
            in_list, values = _id_list(track_ids)
            sql += f" AND e.track_id IN {in_list}"
            params += values
        # No ORDER BY: sorting rows that carry 2 KB vectors is most of a 1M-row load,
        # and search breaks ties by id itself.
        with self._lock, self._errors("read embeddings"):
            return self._conn.execute(sql, params).to_arrow_table()

    def windows(self, model_id: str, track_ids: list[str] | None = None) -> dict[str, WindowSet]:
        """Each track's window embeddings from this model (all tracks when ``track_ids`` is None)."""
        sql = "SELECT track_id, starts_s, ends_s, dim, embeddings FROM window_sets"
        wanted = None
        if track_ids is None or len(track_ids) > WINDOW_KEY_LOOKUP_LIMIT:
            # Many ids: one scan of this model's rows beats thousands of key lookups.
            sql, params = sql + " WHERE model_id = ?", [model_id]
            wanted = None if track_ids is None else set(track_ids)
        else:
            in_list, params = _id_list([window_key(track_id, model_id) for track_id in track_ids])
            sql += f" WHERE key IN {in_list}"
        with self._lock, self._errors("read window embeddings"):
            rows = self._conn.execute(sql, params).fetchall()
        return {
            track_id: WindowSet(starts, ends, np.frombuffer(blob, dtype="<f4").reshape(len(starts), dim))
            for track_id, starts, ends, dim, blob in rows
            if wanted is None or track_id in wanted
        }

    def get_tracks(self, track_ids: list[str]) -> dict[str, dict]:
        if not track_ids:
            return {}
        in_list, values = _id_list(track_ids)
        rows = self._query(
            "read tracks",
            f"SELECT {TRACK_COLUMNS} FROM tracks t LEFT JOIN features f ON f.track_id = t.id WHERE t.id IN {in_list}",
            values,
        )
        return {row["id"]: row for row in rows}

    # -- jobs ---------------------------------------------------------------

    def create_jobs(self, batch_id: str, sources: list[str]) -> list[str]:
        ids = [uuid.uuid4().hex for _ in sources]
        with self.transaction("queue jobs") as conn:
            conn.executemany(
                "INSERT INTO jobs (id, batch_id, source, status, stage) VALUES (?, ?, ?, 'queued', 'queued')",
                [[job_id, batch_id, source] for job_id, source in zip(ids, sources)],
            )
        return ids

    def update_job(self, job_id: str, *, status: str, stage: str | None = None, progress: float = 0.0,
                   message: str | None = None, track_id: str | None = None) -> None:
        with self._lock, self._errors("update a job"):
            self._conn.execute(
                "UPDATE jobs SET status = ?, stage = ?, progress = ?, message = ?, track_id = ?,"
                " updated_at = current_timestamp WHERE id = ?",
                [status, stage, progress, message, track_id, job_id],
            )

    def finish_job(self, job_id: str, status: str, message: str, track_id: str | None = None) -> None:
        with self.transaction("finish a job") as conn:
            _finish_job(conn, job_id, status, message, track_id)

    def job_status(self, job_id: str) -> str | None:
        rows = self._query("read a job", "SELECT status FROM jobs WHERE id = ?", [job_id])
        return rows[0]["status"] if rows else None

    def jobs(self, *, batch_id: str | None = None, limit: int = 200) -> list[dict]:
        if batch_id:
            return self._query(
                "list jobs", "SELECT * FROM jobs WHERE batch_id = ? ORDER BY created_at, source LIMIT ?", [batch_id, limit]
            )
        return self._query("list jobs", "SELECT * FROM jobs ORDER BY created_at DESC, source LIMIT ?", [limit])

    def interrupt_stale_jobs(self) -> int:
        """Jobs left queued or running by a process that died are marked interrupted.

        Safe at open: DuckDB lets only one process write this file, so no
        other process can be running them.
        """
        with self._lock, self._errors("recover interrupted jobs"):
            rows = self._conn.execute(
                "UPDATE jobs SET status = 'interrupted', message = 'Interrupted: the process stopped before this"
                " file finished. Run the import again to complete it.', updated_at = current_timestamp"
                " WHERE status IN ('queued', 'running') RETURNING id"
            ).fetchall()
        return len(rows)


# Sort keys a caller may choose, mapped to fixed SQL: never the caller's text.
SORTABLE = {
    "created_at": "t.created_at", "filename": "lower(t.filename)", "duration": "t.duration",
    "tempo": "f.tempo", "spectral_centroid": "f.spectral_centroid", "rms_energy": "f.rms_energy",
    "zero_crossing_rate": "f.zero_crossing_rate", "file_size": "t.file_size", "format": "t.format",
}


def _id_list(ids: list[str]) -> tuple[str, list]:
    """An ``IN`` list for bound ids: one placeholder each for short lists (DuckDB then
    uses the primary key; an unnested array parameter scans the whole table), one
    array parameter for long ones."""
    if len(ids) <= 1000:
        return "(" + ", ".join("?" * len(ids)) + ")", list(ids)
    return "(SELECT unnest(?::VARCHAR[]))", [list(ids)]


def _track_filters(filename, formats, min_tempo, max_tempo, min_duration, max_duration) -> tuple[str, list]:
    clauses, params = ["TRUE"], []
    if filename:
        clauses.append("contains(lower(t.filename), lower(?))")
        params.append(filename)
    if formats:
        clauses.append("t.format IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(formats))
    for sql, value in (("f.tempo >= ?", min_tempo), ("f.tempo <= ?", max_tempo),
                       ("t.duration >= ?", min_duration), ("t.duration <= ?", max_duration)):
        if value is not None:
            clauses.append(sql)
            params.append(value)
    return " AND ".join(clauses), params


@dataclass(frozen=True)
class Embedded:
    """What an embedding write stored: enough for a search index to take the track in."""

    model_id: str
    pipeline_version: int
    vector: np.ndarray  # float32 (D,)
    window_count: int


@dataclass(frozen=True)
class Change:
    revision: int
    kind: str  # add, delete, embed, reload
    track_id: str
    embedded: Embedded | None = None  # add and embed: the embedding written with the change, if any


def window_key(track_id: str, model_id: str) -> str:
    """window_sets' one-column key: DuckDB looks single-column keys up through their index."""
    return f"{track_id}:{model_id}"


@dataclass(frozen=True)
class WindowSet:
    starts_s: list[float]
    ends_s: list[float]
    embeddings: np.ndarray  # float32 (len(starts_s), D), read-only


_OPEN: dict[str, weakref.ref] = {}
_OPEN_LOCK = threading.Lock()
JOURNAL_LIMIT = 50_000  # changes kept in memory; an index further behind rebuilds

WINDOW_KEY_LOOKUP_LIMIT = 1000

_TRACK_TABLES = [
    ("window_sets", "track_id"),
    ("track_embeddings", "track_id"),
    ("embedding_errors", "track_id"),
    ("features", "track_id"),
    ("sources", "track_id"),
    ("tracks", "id"),
]


def _upsert_source(conn, track_id: str, path: str, size: int, mtime: float) -> None:
    conn.execute(
        "INSERT INTO sources (path, track_id, file_size, file_mtime) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (path) DO UPDATE SET track_id = excluded.track_id, file_size = excluded.file_size,"
        " file_mtime = excluded.file_mtime, seen_at = now()",
        [path, track_id, size, mtime],
    )


def _finish_job(conn, job_id: str, status: str, message: str, track_id: str | None) -> None:
    conn.execute(
        "UPDATE jobs SET status = ?, stage = 'done', progress = 1.0, message = ?, track_id = ?,"
        " updated_at = current_timestamp WHERE id = ?",
        [status, message, track_id, job_id],
    )


def _connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    try:
        # No progress bar: DuckDB draws it on stdout during long statements (an upgrade of a
        # large library), where the CLI's --json promises one JSON document and nothing else.
        conn = duckdb.connect(str(db_path))
        conn.execute("SET enable_progress_bar = false")
        return conn
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise LibraryLockedError(
                f"the library {db_path} is open in another Traum-Engine process.",
                hint="Stop the dashboard or the other command first, or point TRAUM_DATA_DIR at another library.",
            ) from None
        raise StoreError(f"cannot open the library {db_path}: {first_line(exc)}") from None
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot open the library {db_path}: {first_line(exc)}",
            hint="If the file is damaged, restore it from an export or move it away to start a new library.",
        ) from None


def move_into_place(source: Path):
    """A ``place_file`` callback that moves a spooled upload into the library."""

    def place(target: Path) -> None:
        os.replace(source, target)

    return place
