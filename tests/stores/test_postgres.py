"""What only the PostgreSQL store does: schema versions and ``spindle db upgrade``,
reconnecting after the server dropped its connections, its URL, and the CLI on it.

Against the real server ``.ci/run`` starts (``tests/pg.py``); each test has its
own schema.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spindle.core.errors import ConfigError, SchemaTooNew, SchemaTooOld, StoreError
from spindle.core.model import RunState, RunStatus, StepKind, StepRecord, StepStatus, utcnow
from spindle.core.store import Commit
from tests.pg import postgres_url, require_server

pytest.importorskip("psycopg")

from spindle.contrib.postgres import (
    PostgresStore,
    _schema,
)


def _schema_of(url: str) -> str:
    return url.split("search_path%3D", 1)[1].split("&", 1)[0]


def _sql(url: str, sql: str) -> list[Any]:
    import psycopg

    with psycopg.connect(require_server(), autocommit=True) as conn:
        conn.execute(f"SET search_path = {_schema_of(url)}")  # type: ignore[arg-type]
        cur = conn.execute(sql)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


def _state(run_id: str) -> RunState:
    now = utcnow()
    return RunState(run_id=run_id, workflow="w", created_at=now, updated_at=now)


def _record(run_id: str, seq: int, prev: str) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        seq=seq,
        node_id=f"n{seq}",
        kind=StepKind.NODE,
        status=StepStatus.COMPLETED,
        idempotency_key=f"{run_id}:n{seq}",
        result=seq,
        prev_hash=prev,
        record_hash=f"h{seq}",
    )


def test_an_empty_database_gets_the_schema_when_a_store_opens_it() -> None:
    url = postgres_url()

    async def main() -> tuple[int | None, int | None]:
        store = PostgresStore.from_url(url)
        before = await store.schema_version()
        await store.open()
        after = await store.schema_version()
        await store.aclose()
        return before, after

    assert asyncio.run(main()) == (0, _schema.SCHEMA_VERSION)
    assert _sql(url, "SELECT version FROM spindle_schema") == [(_schema.SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused_and_nothing_is_changed() -> None:
    url = postgres_url()
    asyncio.run(_open_close(url))
    _sql(url, "UPDATE spindle_schema SET version = 99")
    with pytest.raises(SchemaTooNew, match="schema version 99, newer than this spindle"):
        asyncio.run(_open_close(url))
    assert _sql(url, "SELECT version FROM spindle_schema") == [(99,)]


async def _open_close(url: str) -> None:
    store = PostgresStore.from_url(url)
    await store.open()
    await store.aclose()


def test_an_older_schema_is_refused_until_db_upgrade_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A release that adds a migration: opening refuses, naming the command; two
    upgrades at once run the step once; then the store opens."""
    url = postgres_url()
    asyncio.run(_open_close(url))
    current = _schema.SCHEMA_VERSION
    step = ("CREATE TABLE spindle_extra (n INTEGER)", "INSERT INTO spindle_extra VALUES (1)")
    monkeypatch.setattr(_schema, "MIGRATIONS", (*_schema.MIGRATIONS, step))
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", len(_schema.MIGRATIONS))
    import spindle.contrib.postgres._base as base

    monkeypatch.setattr(base, "SCHEMA_VERSION", _schema.SCHEMA_VERSION)
    with pytest.raises(SchemaTooOld, match="Run: spindle db upgrade --store"):
        asyncio.run(_open_close(url))

    async def upgrade_twice() -> list[tuple[int | None, int | None]]:
        stores = [PostgresStore.from_url(url), PostgresStore.from_url(url)]
        try:
            return list(await asyncio.gather(*(s.upgrade() for s in stores)))
        finally:
            for s in stores:
                await s.aclose()

    results = sorted(asyncio.run(upgrade_twice()), key=lambda r: r[0] or 0)
    assert results == [(current, current + 1), (current + 1, current + 1)]
    assert _sql(url, "SELECT n FROM spindle_extra") == [(1,)]
    asyncio.run(_open_close(url))


def test_the_store_reconnects_after_the_server_dropped_its_connections() -> None:
    """pg_terminate_backend stands for a server restart: the next commit and read
    succeed on new connections, and nothing committed is lost."""
    url = postgres_url()

    async def main() -> tuple[list[Any], RunState]:
        async with PostgresStore.from_url(url) as store:
            state = _state("r1")
            await store.commit(Commit(state=state, create=True, records=[_record("r1", 0, "")]))
            killed = _sql(
                url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND datname = current_database()"
                " AND application_name = ''",
            )
            assert killed, "no connection of the store was found to terminate"
            state.status = RunStatus.COMPLETED
            await store.commit(Commit(state=state, records=[_record("r1", 1, "h0")]))
            return await store.ledger("r1"), await store.load_run("r1")

    records, state = asyncio.run(main())
    assert [r.seq for r in records] == [0, 1]
    assert state.status == RunStatus.COMPLETED and state.step_count == 2


def test_a_commit_that_landed_is_recognised_before_a_retry() -> None:
    url = postgres_url()

    async def main() -> tuple[bool, bool]:
        async with PostgresStore.from_url(url) as store:
            first = Commit(state=_state("r1"), create=True, records=[_record("r1", 0, "")])
            await store.commit(first)
            second = Commit(state=_state("r1"), records=[_record("r1", 1, "h0")])
            return await store._landed(first), await store._landed(second)

    assert asyncio.run(main()) == (True, False)


def test_a_server_that_is_not_there_is_a_clear_error_without_the_password() -> None:
    require_server()
    url = "postgresql://spindle:s3cret@127.0.0.1:1/nowhere?retry_for=0.2&connect_timeout=1"
    with pytest.raises(StoreError) as info:
        asyncio.run(_open_close(url))
    text = str(info.value)
    assert "cannot connect" in text and "check that the server is running" in text
    assert "s3cret" not in text and "spindle:***@127.0.0.1:1" in text


def test_url_options_are_spindles_or_libpqs_and_nothing_else() -> None:
    store = PostgresStore.from_url("postgresql://u@h/db?pool_size=3&sslmode=disable")
    assert store.pool_size == 3 and "sslmode=disable" in store.conninfo
    assert "pool_size" not in store.conninfo
    with pytest.raises(ConfigError, match="unknown option 'pool'"):
        PostgresStore.from_url("postgresql://u@h/db?pool=3")
    with pytest.raises(ConfigError, match="pool_size='x' is invalid"):
        PostgresStore.from_url("postgresql://u@h/db?pool_size=x")


def test_the_cli_runs_and_shows_a_workflow_on_postgresql(tmp_path: Path) -> None:
    """`spindle run` and `spindle show` with --store postgresql://..., as a user would."""
    url = postgres_url()
    examples = Path(__file__).resolve().parents[2] / "examples"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "spindle", *args, "--store", url],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ran = cli("run", str(examples / "control_flow" / "map.yaml"), "--json")
    assert ran.returncode == 0, ran.stderr
    import json

    run_id = json.loads(ran.stdout)["run_id"]
    shown = cli("show", run_id, "--graph")
    assert shown.returncode == 0, shown.stderr
    assert "measure[4]  completed" in shown.stdout
    status = cli("db", "status")
    assert status.returncode == 0 and "up to date" in status.stdout
    assert "postgresql://postgres@" in status.stdout


def test_a_new_pending_run_or_event_wakes_a_listening_store_at_once() -> None:
    """LISTEN/NOTIFY: a worker's wait for work ends when another store creates a pending
    run (or delivers an event), instead of at its timeout."""
    url = postgres_url()

    async def main() -> list[bool]:
        woken = []
        async with PostgresStore.from_url(url) as listener, PostgresStore.from_url(url) as other:
            await listener.wait_for_work(0.01)  # LISTEN is in place from here on
            waiting = asyncio.create_task(listener.wait_for_work(60))
            await asyncio.sleep(0.1)
            await other.commit(Commit(state=_state("fresh"), create=True))
            woken.append(await asyncio.wait_for(waiting, 30))
            waiting = asyncio.create_task(listener.wait_for_work(60))
            await asyncio.sleep(0.1)
            await other.deliver_event("payment", {"ok": True})
            woken.append(await asyncio.wait_for(waiting, 30))
        return woken

    assert asyncio.run(main()) == [True, True]


def test_a_store_without_push_sleeps_for_the_timeout(tmp_path: Path) -> None:
    from spindle.plugins.stores.sqlite import SQLiteStore

    async def main() -> bool:
        async with SQLiteStore.from_url(f"sqlite:///{tmp_path / 'x.db'}") as store:
            return await store.wait_for_work(0.05)

    assert asyncio.run(main()) is False


def test_a_version_2_database_is_upgraded_to_keep_schedules() -> None:
    """A database at schema version 2 (before schedules) is refused until ``upgrade``,
    which adds the schedules table: (2, current) and then schedules are kept."""
    from spindle.core.model import Schedule

    url = postgres_url()
    asyncio.run(_open_close(url))
    _sql(url, "DROP TABLE spindle_schedules")
    _sql(url, "DROP TABLE spindle_cache")  # version 4's, made by the first open
    _sql(url, "UPDATE spindle_schema SET version = 2")
    with pytest.raises(SchemaTooOld, match="spindle db upgrade"):
        asyncio.run(_open_close(url))
    kept = Schedule("s", "wf", "d", "@daily", "UTC", next_slot=utcnow())

    async def upgrade() -> tuple[tuple[int | None, int | None], list[Schedule]]:
        store = PostgresStore.from_url(url)
        try:
            versions = await store.upgrade()
            await store.put_schedule(kept)
            return versions, await store.list_schedules()
        finally:
            await store.aclose()

    assert asyncio.run(upgrade()) == ((2, _schema.SCHEMA_VERSION), [kept])
