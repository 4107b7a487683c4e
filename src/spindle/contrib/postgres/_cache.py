"""The PostgreSQL store's cached node results: ``spindle_cache`` (schema version 4)."""

from __future__ import annotations

from datetime import datetime

from attrs import define

from spindle.contrib.postgres._schedules import PostgresSchedules
from spindle.core.model import CacheEntry
from spindle.core.store import check_aware
from spindle.plugins.stores._cache_rows import cache_body, cache_from

__all__ = ["PostgresCache"]


@define
class PostgresCache(PostgresSchedules):
    """Cached results of a PostgreSQL store, one row per fingerprint."""

    def _entry(self, body: str) -> CacheEntry:
        return cache_from(body, where=self.where, medium="database")

    async def put_cached(self, entry: CacheEntry) -> None:
        """Keep ``entry``, replacing one with the same fingerprint."""
        await self._rows(
            "INSERT INTO spindle_cache (fingerprint, workflow, created_at, expires_at, body)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (fingerprint) DO UPDATE SET"
            " workflow = EXCLUDED.workflow, created_at = EXCLUDED.created_at,"
            " expires_at = EXCLUDED.expires_at, body = EXCLUDED.body RETURNING 1",
            (
                entry.fingerprint,
                entry.workflow,
                check_aware(entry.created_at),
                entry.expires_at,
                cache_body(entry),
            ),
        )

    async def get_cached(self, fingerprint: str, now: datetime) -> CacheEntry | None:
        """The live entry with this fingerprint, or None."""
        rows = await self._rows(
            "SELECT body FROM spindle_cache WHERE fingerprint = %s"
            " AND (expires_at IS NULL OR expires_at > %s)",
            (fingerprint, check_aware(now)),
        )
        return self._entry(rows[0][0]) if rows else None

    async def list_cached(self, *, workflow: str | None = None) -> list[CacheEntry]:
        """Every entry (of one workflow), newest first."""
        rows = await self._rows(
            "SELECT body FROM spindle_cache WHERE (%s::text IS NULL OR workflow = %s)"
            " ORDER BY created_at DESC, fingerprint DESC",
            (workflow, workflow),
        )
        return [self._entry(row[0]) for row in rows]

    async def clear_cached(
        self, *, workflow: str | None = None, before: datetime | None = None
    ) -> int:
        """Remove the matching entries in one statement; return how many."""
        rows = await self._rows(
            "DELETE FROM spindle_cache WHERE (%s::text IS NULL OR workflow = %s)"
            " AND (%s::timestamptz IS NULL OR created_at < %s) RETURNING 1",
            (workflow, workflow, before, before),
        )
        return len(rows)
