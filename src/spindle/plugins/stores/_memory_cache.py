"""The memory store's cached node results (a dict by fingerprint; see ``CacheStore``)."""

from __future__ import annotations

from datetime import datetime

from attrs import define, field

from spindle.core.model import CacheEntry
from spindle.plugins.stores._memory_copy import clone
from spindle.plugins.stores._memory_schedules import MemorySchedules

__all__ = ["MemoryCache"]


@define
class MemoryCache(MemorySchedules):
    """Cached results kept in a dict; each method is atomic on its event loop (none awaits)."""

    _cached: dict[str, CacheEntry] = field(factory=dict, init=False, repr=False, eq=False)

    async def put_cached(self, entry: CacheEntry) -> None:
        """Keep a copy of ``entry``, replacing one with the same fingerprint."""
        self._cached[entry.fingerprint] = clone(entry)

    async def get_cached(self, fingerprint: str, now: datetime) -> CacheEntry | None:
        """A copy of the live entry with this fingerprint, or None."""
        found = self._cached.get(fingerprint)
        return clone(found) if found is not None and found.live(now) else None

    async def list_cached(self, *, workflow: str | None = None) -> list[CacheEntry]:
        """Copies of every entry (of one workflow), newest first."""
        found = [e for e in self._cached.values() if workflow is None or e.workflow == workflow]
        found.sort(key=lambda e: (e.created_at, e.fingerprint), reverse=True)
        return [clone(e) for e in found]

    async def clear_cached(
        self, *, workflow: str | None = None, before: datetime | None = None
    ) -> int:
        """Remove the matching entries; return how many."""
        gone = [
            k
            for k, e in self._cached.items()
            if (workflow is None or e.workflow == workflow)
            and (before is None or e.created_at < before)
        ]
        for k in gone:
            del self._cached[k]
        return len(gone)
