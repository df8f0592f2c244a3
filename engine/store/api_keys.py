"""API keys: a name and the digest of a key shown once."""

from __future__ import annotations

from engine.errors import ConflictError, NotFoundError
from engine.store.database import Database


class ApiKeys:
    def __init__(self, db: Database):
        self._db = db

    def add(self, name: str, digest: str) -> None:
        with self._db.transaction("create an API key") as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE name = ?", [name]).fetchone():
                raise ConflictError(f"an API key named {name!r} exists already.",
                                    hint="Revoke it first, or choose another name.")
            conn.execute("INSERT INTO api_keys (name, digest) VALUES (?, ?)", [name, digest])

    def remove(self, name: str) -> None:
        with self._db.transaction("revoke an API key") as conn:
            if not conn.execute("SELECT 1 FROM api_keys WHERE name = ?", [name]).fetchone():
                raise NotFoundError(f"no API key named {name!r}.", hint="List them with 'api-key list'.")
            conn.execute("DELETE FROM api_keys WHERE name = ?", [name])

    def known(self, digest: str) -> bool:
        return bool(self._db.rows("check an API key", "SELECT 1 FROM api_keys WHERE digest = ?", [digest]))

    def list(self) -> list[dict]:
        return [{"name": name, "created_at": created} for name, created in self._db.rows(
            "list API keys", "SELECT name, created_at FROM api_keys ORDER BY name")]
