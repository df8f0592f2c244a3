"""The DuckDB file: one connection per process, its lock, transactions and schema upgrades.

DuckDB lets one process write a file; inside that process one connection is
shared and serialised with a re-entrant lock. Every DuckDB error is re-raised
here as a titled ``StoreError`` naming what was being done, so no caller
sees a raw database exception. All SQL is bound.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from pathlib import Path

import duckdb

from engine.errors import LibraryLockedError, StoreError, first_line
from engine.store.migrations import MIGRATIONS

# Databases open in this process, by resolved path (see Database._claim).
_OPEN: dict[str, weakref.ref] = {}
_OPEN_LOCK = threading.Lock()


class Database:
    def __init__(self, db_path: Path):
        self.path = Path(db_path)
        self.lock = threading.RLock()
        # Counts ended writes (a transaction committed or rolled back, a lone statement): what was
        # read before it changed may be out of date (engine.store.recent).
        self.writes = 0
        self._claim()
        try:
            self._conn = _connect(self.path)
            # DuckDB's own default (80 % of the machine's memory), kept to restore after memory_capped.
            self.memory_limit = self._conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
            self._migrate()
        except BaseException:
            self._release()
            raise

    def close(self) -> None:
        with self.lock:
            self._conn.close()
            self._release()

    def _claim(self) -> None:
        # DuckDB keeps other processes out, but would let this one open the
        # file twice; two libraries would then each recover "stale" jobs, sweep
        # the other's uncommitted copies and keep separate change journals.
        key = str(self.path.resolve())
        with _OPEN_LOCK:
            holder = _OPEN.get(key)
            if holder is not None and holder() is not None:
                raise LibraryLockedError(
                    f"the library {self.path} is already open in this process.",
                    hint="Use the open library object instead of opening it twice.",
                )
            _OPEN[key] = weakref.ref(self)

    def _release(self) -> None:
        key = str(self.path.resolve())
        with _OPEN_LOCK:
            holder = _OPEN.get(key)
            if holder is not None and holder() in (None, self):
                del _OPEN[key]

    @contextlib.contextmanager
    def errors(self, action: str):
        """Turn DuckDB errors into a StoreError that says what could not be done."""
        try:
            yield
        except duckdb.Error as exc:
            raise StoreError(f"could not {action}: {first_line(exc)}", title="Library error") from exc

    @contextlib.contextmanager
    def transaction(self, action: str):
        """One transaction under the process lock; rolled back on any error."""
        with self.lock, self.errors(action):
            self._conn.execute("BEGIN TRANSACTION")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self.writes += 1

    def rows(self, action: str, sql: str, params=()) -> list[tuple]:
        with self.lock, self.errors(action):
            return self._conn.execute(sql, params).fetchall()

    def records(self, action: str, sql: str, params=()) -> list[dict]:
        """Rows as dicts keyed by column name."""
        with self.lock, self.errors(action):
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def execute(self, action: str, sql: str, params=()) -> list[tuple]:
        """A single write outside any explicit transaction (DuckDB commits it alone)."""
        with self.lock:
            try:
                return self.rows(action, sql, params)
            finally:
                self.writes += 1

    def arrow(self, action: str, sql: str, params=()):
        with self.lock, self.errors(action):
            return self._conn.execute(sql, params).to_arrow_table()

    def batches(self, action: str, sql: str, params=(), rows: int = 65_536):
        """A read query's result as pyarrow record batches of up to ``rows`` rows, streamed: the
        whole result is never in memory at once. The lock is held until the iteration ends."""
        import pyarrow as pa

        with self.lock, self.errors(action):
            try:
                yield from self._conn.execute(sql, params).to_arrow_reader(rows)
            except pa.ArrowException as exc:  # DuckDB's errors in the stream arrive through arrow
                raise StoreError(f"could not {action}: {first_line(exc)}", title="Library error") from exc

    @contextlib.contextmanager
    def registered(self, name: str, relation):
        """``relation`` (a pyarrow table) readable in SQL as ``name`` for the block, under the lock."""
        with self.lock, self.errors(f"register {name}"):
            self._conn.register(name, relation)
            try:
                yield
            finally:
                self._conn.unregister(name)

    @contextlib.contextmanager
    def memory_capped(self, limit: str):
        """Run a large read with DuckDB's memory held to ``limit`` ("1GB"), under the lock, then hand
        back what it cached. DuckDB keeps the blocks it read up to memory_limit (by default 80 % of
        the machine's memory; 2.2 GB after a scan of 1M vectors) and gives them back only under
        pressure; lowering the limit for a moment makes it evict them."""
        with self.lock:
            self._set_memory_limit(limit)
            try:
                yield
            finally:
                self._set_memory_limit("64MB")  # evicts the cached blocks (0.4 s at 2.2 GB)
                self._set_memory_limit(self.memory_limit)

    @contextlib.contextmanager
    def checkpoints_deferred(self, threshold: str):
        """Bulk writes (a shard merge) with DuckDB's automatic checkpoint put off until ``threshold``
        ("1GB") of write-ahead log, then one checkpoint at the end.

        DuckDB checkpoints at every 16 MB of log by default, so a merge rewrote the file's changed
        blocks after every shard (28 MB of vectors each), more of them as the library grew: 126 s
        for 100,000 tracks, 40 s with a 1 GB threshold, the last checkpoint included
        (docs/BENCHMARKS.md, "Merge"). Each shard is still its own committed transaction, so a crash
        keeps the shards merged before it (the log is replayed at the next open)."""
        with self.lock, self.errors("prepare a bulk write"):
            before = self._conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
            self._conn.execute(f"SET checkpoint_threshold = '{threshold}'")
        try:
            yield
        finally:
            with self.lock, self.errors("finish a bulk write"):
                self._conn.execute(f"SET checkpoint_threshold = '{before}'")
                try:
                    self._conn.execute("CHECKPOINT")
                except duckdb.Error:  # another transaction is open: the next automatic checkpoint writes it
                    pass

    def _set_memory_limit(self, limit: str) -> None:
        try:
            self._conn.execute(f"SET memory_limit = '{limit}'")
        except duckdb.Error:  # more than that is pinned right now: leave it as it is
            pass

    def frame(self, action: str, sql: str, params=()):
        """A read query as a pandas DataFrame (analytics)."""
        with self.lock, self.errors(action):
            return self._conn.execute(sql, params).df()

    def _migrate(self) -> None:
        """Apply the named migrations this file has not seen, in order, each in its own transaction."""
        with self.lock, self.errors("upgrade the library schema"):
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
            )
            applied = {row[0] for row in self._conn.execute("SELECT name FROM schema_migrations").fetchall()}
        upgraded = False
        for version, (name, step) in enumerate(MIGRATIONS, start=1):
            if name in applied:
                continue
            with self.transaction(f"apply migration {name}") as conn:
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            upgraded = True
        if upgraded:
            # Fold the schema changes into the file now, so a crash never leaves them to be
            # replayed from the write-ahead log: DuckDB 1.5.5 fails to replay some (an ALTER
            # TABLE ADD COLUMN made the library unopenable after a kill -9).
            with self.lock, self.errors("upgrade the library schema"):
                self._conn.execute("CHECKPOINT")

    def applied_migrations(self) -> list[str]:
        return [name for (name,) in self.rows("read migrations", "SELECT name FROM schema_migrations ORDER BY version")]


def id_list(ids: list[str]) -> tuple[str, list]:
    """An ``IN`` list for bound ids: one placeholder each for short lists (DuckDB then
    uses the primary key; an unnested array parameter scans the whole table), one
    array parameter for long ones."""
    if len(ids) <= 1000:
        return "(" + ", ".join("?" * len(ids)) + ")", list(ids)
    return "(SELECT unnest(?::VARCHAR[]))", [list(ids)]


def at_or_under(column: str, root: str) -> tuple[str, list]:
    """SQL keeping rows whose path ``column`` is ``root`` or inside it (engine.scan.within, in SQL)."""
    return f"({column} = ? OR starts_with({column}, ?))", [root, root.rstrip("/") + "/"]


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
