"""The result-cache part of the store contract: node results later runs may reuse.

An entry is found by its fingerprint (a node's runtime configuration, inputs,
file contents and cache key hashed; see ``spindle.core.engine._caching``),
whatever run produced it. Putting an entry with a fingerprint already kept
replaces it. An expired entry is never returned; it stays until cleared.

The store contract suite (``spindle.testing.StoreContract``, its cache
tests) is this part's definition.
"""

from __future__ import annotations

import abc
from datetime import datetime

from spindle.core.model import CacheEntry

__all__ = ["CacheStore"]


class CacheStore(abc.ABC):
    """Cached node results: put, look up by fingerprint, list, clear."""

    @abc.abstractmethod
    async def put_cached(self, entry: CacheEntry) -> None:
        """Keep ``entry``, replacing one with the same fingerprint."""

    @abc.abstractmethod
    async def get_cached(self, fingerprint: str, now: datetime) -> CacheEntry | None:
        """The entry with this fingerprint that has not expired at ``now``, or None."""

    @abc.abstractmethod
    async def list_cached(self, *, workflow: str | None = None) -> list[CacheEntry]:
        """Every entry (of one workflow), expired ones included, newest first."""

    @abc.abstractmethod
    async def clear_cached(
        self, *, workflow: str | None = None, before: datetime | None = None
    ) -> int:
        """Remove the entries of ``workflow`` (all workflows: None) created before
        ``before`` (any time: None); return how many were removed."""
