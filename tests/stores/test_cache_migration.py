"""Stores written before result caching: a SQLite file at schema version 6 opens
migrated to 7, and a PostgreSQL database at version 3 is refused until
``spindle db upgrade`` (``Store.upgrade``) adds the cache table; then runs and
cached results are kept as in a new store."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spindle.core.errors import SchemaTooOld
from spindle.core.model import CacheEntry, RunState, RunStatus
from spindle.core.store import Commit
from spindle.plugins.stores._sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from spindle.plugins.stores.sqlite import SQLiteStore
from tests.pg import postgres_url

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ENTRY = CacheEntry("f" * 64, "wf", "r0", "n", {"v": 1}, NOW)


def test_a_version_6_sqlite_file_opens_migrated_with_a_cache_table(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 7
    path = tmp_path / "v6.db"
    conn = sqlite3.connect(path)
    with conn:
        for step in MIGRATIONS[:6]:
            for statement in step:
                conn.execute(statement)
        conn.execute("INSERT INTO spindle_schema (version) VALUES (6)")
    conn.close()

    async def main() -> CacheEntry | None:
        store = SQLiteStore.from_url(f"sqlite:///{path}")
        assert await store.schema_version() == 6
        await store.open()
        try:
            await store.put_cached(ENTRY)
            return await store.get_cached(ENTRY.fingerprint, NOW)
        finally:
            await store.aclose()

    assert asyncio.run(main()) == ENTRY
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM spindle_schema").fetchall() == [(7,)]
    conn.close()


def test_a_version_3_postgres_database_is_upgraded_to_keep_cached_results() -> None:
    pytest.importorskip("psycopg")
    import psycopg

    from spindle.contrib.postgres import PostgresStore, _schema

    assert _schema.SCHEMA_VERSION == 4
    url = postgres_url()
    schema = url.split("search_path%3D", 1)[1].split("&", 1)[0]
    from tests.pg import require_server

    with psycopg.connect(require_server(), autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")  # type: ignore[arg-type]
        for step in _schema.MIGRATIONS[:3]:
            for statement in step:
                conn.execute(statement)  # type: ignore[arg-type]
        conn.execute("INSERT INTO spindle_schema (version) VALUES (3)")

    async def main() -> tuple[tuple[int | None, int | None], CacheEntry | None, RunState]:
        store = PostgresStore.from_url(url)
        with pytest.raises(SchemaTooOld, match="spindle db upgrade"):
            await store.open()
        await store.aclose()
        store = PostgresStore.from_url(url)
        try:
            versions = await store.upgrade()
            await store.open()
            state = RunState("r1", "wf", status=RunStatus.PENDING, created_at=NOW, updated_at=NOW)
            await store.commit(Commit(state, create=True))
            await store.put_cached(ENTRY)
            return (
                versions,
                await store.get_cached(ENTRY.fingerprint, NOW),
                await store.load_run("r1"),
            )
        finally:
            await store.aclose()

    versions, found, state = asyncio.run(main())
    assert versions == (3, 4)
    assert found == ENTRY
    assert state.status is RunStatus.PENDING
