"""The SQLite store's pruning beyond the contract: every statement an index probe,
the schema step that adds the consumed-events index, and no content left aside."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from spindle._testing._store_helpers import at
from spindle.core.model import RunState, RunStatus
from spindle.core.store import Commit
from spindle.plugins.stores._sqlite_prune import DELETE_RUN, FAMILY, TOPS
from spindle.plugins.stores._sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from spindle.plugins.stores.sqlite import SQLiteStore


async def test_prune_statements_are_served_by_indexes(tmp_path: Path) -> None:
    """Each statement of a batch searches an index; none scans a table of runs,
    ledgers, events or artifacts."""
    path = tmp_path / "s.db"
    async with SQLiteStore.from_url(f"sqlite:///{path}"):
        pass
    conn = sqlite3.connect(path)
    params = {"status": "completed", "before_s": 1.0, "before_us": 1, "now": 1.0, "limit": 5}
    one = {"run_no": 1, "run_id": "r", "cancel_key": "c", "low": 1, "high": 2}
    plans = {
        sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", values)]
        for sql, values in [
            (TOPS, params),
            (FAMILY, (1,)),
            ("SELECT run_id FROM artifacts WHERE digest = ?", ("d",)),
            (
                "SELECT count(*) FROM inbox WHERE consumed_by = ?1"
                " OR (key = ?2 AND consumed_by IS NULL)",
                ("r", "c"),
            ),
            *((sql, one) for sql in DELETE_RUN),
        ]
    }
    conn.close()
    for sql, plan in plans.items():
        scans = [step for step in plan if step.startswith("SCAN") and step != "SCAN family"]
        assert not scans, (sql, plan)
        assert any(step.startswith("SEARCH") for step in plan), (sql, plan)
    assert "inbox_consumed" in " ".join(plans["DELETE FROM inbox WHERE consumed_by = :run_id"])


async def test_a_version_3_file_gets_the_consumed_events_index(tmp_path: Path) -> None:
    """A store file at schema version 3 opens migrated to the version with inbox_consumed."""
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path)
    with conn:
        for step in MIGRATIONS[:3]:
            for statement in step:
                conn.execute(statement)
        conn.execute("INSERT INTO spindle_schema (version) VALUES (3)")
    conn.close()
    async with SQLiteStore.from_url(f"sqlite:///{path}") as store:
        assert await store.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "inbox_consumed" in names


async def test_pruned_content_leaves_no_file_behind(tmp_path: Path) -> None:
    """Content no run references is deleted from disk, with nothing left set aside."""
    path = tmp_path / "s.db"
    async with SQLiteStore.from_url(f"sqlite:///{path}") as store:
        done = RunState("r1", "wf", status=RunStatus.COMPLETED, created_at=at(0), updated_at=at(0))
        await store.commit(Commit(done, create=True))
        await store.put_artifact("r1", b"content")
        files = [p for p in store.artifacts_dir.rglob("*") if p.is_file()]
        assert len(files) == 1
        assert (await store.prune(before=at(10), now=at(10))).artifacts == 1
        assert [p for p in store.artifacts_dir.rglob("*") if p.is_file()] == []
