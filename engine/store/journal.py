"""The in-process change journal that keeps search indexes in step with the library.

Every add, delete and re-embed is appended as a :class:`Change`; an index
replays what happened since its own revision before each query, so it is
never stale. An embedding written in this process travels with its change,
so replaying it reads nothing back. Enough on its own because DuckDB gives
one process the file.
"""

from __future__ import annotations

import bisect
import threading

from engine.store.types import Change, Embedded

JOURNAL_LIMIT = 50_000  # changes kept in memory; an index further behind rebuilds


class Journal:
    def __init__(self):
        self._lock = threading.Lock()
        self.revision = 0
        self._changes: list[Change] = []

    def record(self, kind: str, track_id: str, embedded: Embedded | None = None) -> None:
        with self._lock:
            self.revision += 1
            self._changes.append(Change(self.revision, kind, track_id, embedded))
            if len(self._changes) > JOURNAL_LIMIT:
                del self._changes[: len(self._changes) - JOURNAL_LIMIT // 2]

    def reload(self) -> None:
        """After a bulk change (import), make every index rebuild from scratch."""
        self.record("reload", "*")

    def since(self, revision: int) -> list[Change]:
        with self._lock:
            if revision >= self.revision:
                return []
            if not self._changes or revision < self._changes[0].revision - 1:  # trimmed away: start over
                return [Change(self.revision, "reload", "*")]
            first = bisect.bisect_right(self._changes, revision, key=lambda change: change.revision)
            return self._changes[first:]
