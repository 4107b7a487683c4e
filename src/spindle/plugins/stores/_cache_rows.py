"""How the durable stores keep cached node results: the entry as JSON, with the
columns lookups and clears filter on (fingerprint, workflow, created, expires).
"""

from __future__ import annotations

from spindle.core.model import CacheEntry, converter
from spindle.plugins.stores._common import stored, to_json

__all__ = ["POSTGRES_CACHE", "SQLITE_CACHE", "cache_body", "cache_from"]

#: The SQLite store's cache table and index (schema version 7): times are epoch
#: seconds; ``cache clear --workflow W --older-than D`` reads the index.
SQLITE_CACHE: tuple[str, ...] = (
    "CREATE TABLE cache (fingerprint TEXT PRIMARY KEY, workflow TEXT NOT NULL,"
    " created_at REAL NOT NULL, expires_at REAL, body TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX cache_workflow ON cache (workflow, created_at)",
)

#: The PostgreSQL store's cache table and index (schema version 4).
POSTGRES_CACHE: tuple[str, ...] = (
    "CREATE TABLE spindle_cache (fingerprint TEXT PRIMARY KEY, workflow TEXT NOT NULL,"
    " created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ, body TEXT NOT NULL)",
    "CREATE INDEX spindle_cache_workflow ON spindle_cache (workflow, created_at)",
)


def cache_body(entry: CacheEntry) -> str:
    """The JSON text of ``entry``.

    Raises:
        StoreError: its result cannot be represented as JSON.
    """
    return to_json(converter.unstructure(entry), f"cached result of node {entry.node_id!r}")


def cache_from(body: str, *, where: str, medium: str) -> CacheEntry:
    """The entry a row holds.

    Raises:
        StoreCorrupt: the body is not what spindle wrote.
    """
    return stored(body, CacheEntry, "cached result", where, medium)
