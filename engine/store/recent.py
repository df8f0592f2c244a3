"""What was read lately, kept until the next write to the library.

A search's hits are read back by id, and DuckDB answers 20 ids by scanning
each table they come from (tracks, features, descriptions, categories, what a
person kept, the window vectors): 15-20 ms for the rows and 10-20 ms for the
windows at 100k tracks, more than the vector scan itself, and more again
inside the server, where other threads want the cores. The same hits come back
again and again: every rerun of a dashboard page repeats its search, paging
asks for the next rows of the same ranking, a script polls the same query.

Any ended write (``Database.writes``) empties a cache, so nothing is served as
it was before a change, whichever code path made it; what is read while a
write ends is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from engine.store.database import Database


class Recent:
    """Up to ``size`` values by key, least recently used dropped first, emptied by any write."""

    def __init__(self, db: Database, *, size: int):
        self._db = db
        self._size = size
        self._lock = threading.Lock()
        self._writes = db.writes
        self._values: OrderedDict = OrderedDict()

    def take(self, keys: Iterable[Hashable]) -> tuple[dict, int]:
        """The values of ``keys`` held now, and the write count to pass to :meth:`keep` with the
        rest once they are read (taken before reading, so a write meanwhile is noticed)."""
        with self._lock:
            writes = self._db.writes
            if writes != self._writes:
                self._values.clear()
                self._writes = writes
            found = {}
            for key in keys:
                value = self._values.get(key)
                if value is not None:
                    self._values.move_to_end(key)
                    found[key] = value
            return found, writes

    def keep(self, values: dict, writes: int) -> None:
        """Hold ``values`` (key to value), read after :meth:`take` returned ``writes``, unless a
        write ended since."""
        with self._lock:
            if writes != self._db.writes or writes != self._writes:
                return
            for key, value in values.items():
                self._values[key] = value
                self._values.move_to_end(key)
            while len(self._values) > self._size:
                self._values.popitem(last=False)
