"""The SQLite store's cached node results: the ``cache`` table (schema version 7)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from attrs import define

from spindle.core.model import CacheEntry
from spindle.core.store import check_aware
from spindle.plugins.stores._cache_rows import cache_body, cache_from
from spindle.plugins.stores._sqlite_schedules import SQLiteSchedules

__all__ = ["SQLiteCache"]


@define
class SQLiteCache(SQLiteSchedules):
    """Cached results in a SQLite file, one row per fingerprint."""

    def _entry(self, body: str) -> CacheEntry:
        return cache_from(body, where=f"SQLite store {self.path}", medium="file")

    async def put_cached(self, entry: CacheEntry) -> None:
        """Keep ``entry``, replacing one with the same fingerprint."""
        expires = entry.expires_at
        await self._execute(
            "INSERT OR REPLACE INTO cache (fingerprint, workflow, created_at, expires_at, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                entry.fingerprint,
                entry.workflow,
                check_aware(entry.created_at).timestamp(),
                None if expires is None else check_aware(expires).timestamp(),
                cache_body(entry),
            ),
        )

    async def get_cached(self, fingerprint: str, now: datetime) -> CacheEntry | None:
        """The live entry with this fingerprint, or None."""
        rows = self._read(
            "SELECT body FROM cache WHERE fingerprint = ? AND (expires_at IS NULL"
            " OR expires_at > ?)",
            (fingerprint, check_aware(now).timestamp()),
        )
        return self._entry(rows[0][0]) if rows else None

    async def list_cached(self, *, workflow: str | None = None) -> list[CacheEntry]:
        """Every entry (of one workflow), newest first."""
        if workflow is None:
            rows = self._read("SELECT body FROM cache ORDER BY created_at DESC, fingerprint DESC")
        else:
            rows = self._read(
                "SELECT body FROM cache WHERE workflow = ?"
                " ORDER BY created_at DESC, fingerprint DESC",
                (workflow,),
            )
        return [self._entry(row[0]) for row in rows]

    async def clear_cached(
        self, *, workflow: str | None = None, before: datetime | None = None
    ) -> int:
        """Remove the matching entries in one transaction; return how many."""
        where, params = _filters(workflow, before)

        def clear(conn: sqlite3.Connection) -> int:
            return conn.execute(f"DELETE FROM cache{where}", params).rowcount

        return await self._transact(clear)


def _filters(workflow: str | None, before: datetime | None) -> tuple[str, tuple[object, ...]]:
    parts: list[str] = []
    params: list[object] = []
    if workflow is not None:
        parts.append("workflow = ?")
        params.append(workflow)
    if before is not None:
        parts.append("created_at < ?")
        params.append(check_aware(before).timestamp())
    return (" WHERE " + " AND ".join(parts) if parts else ""), tuple(params)
