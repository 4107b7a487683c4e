"""What only the PostgreSQL store's pruning does: rows another transaction holds are
skipped, never waited for, and a live member's row is never locked by a batch."""

from __future__ import annotations

import asyncio

import pytest

from spindle._testing._store_helpers import at
from spindle.core.model import RunState, RunStatus
from spindle.core.store import Commit, Store
from tests.pg import postgres_url, require_server

pytest.importorskip("psycopg")

from spindle.contrib.postgres import PostgresStore


def _schema(url: str) -> str:
    return url.split("search_path%3D", 1)[1].split("&", 1)[0]


async def _finished(store: Store, run_id: str, **kw: object) -> None:
    status = kw.pop("status", RunStatus.COMPLETED)
    state = RunState(
        run_id=run_id, workflow="w", status=status, created_at=at(0), updated_at=at(0), **kw
    )
    await store.commit(Commit(state, create=True))


def test_a_run_another_transaction_holds_is_skipped_not_waited_for() -> None:
    """A run whose row a commit holds right now is skipped by the batch (which does
    not wait for it) and pruned by a later one."""
    import psycopg

    url = postgres_url()

    async def main() -> tuple[int, int]:
        async with PostgresStore.from_url(url) as store:
            await _finished(store, "held")
            await _finished(store, "free")
            with psycopg.connect(require_server()) as other:
                other.execute(f"SET search_path = {_schema(url)}")  # type: ignore[arg-type]
                other.execute("SELECT 1 FROM spindle_runs WHERE run_id = 'held' FOR UPDATE")
                first = await asyncio.wait_for(store.prune(before=at(10), now=at(10)), 10)
                other.rollback()
            second = await store.prune(before=at(10), now=at(10))
            return first.runs, second.runs

    assert asyncio.run(main()) == (1, 1)


def test_a_batch_never_locks_a_live_descendants_row() -> None:
    """While a batch is under way (held up here on a blob a put_artifact holds), a
    running grandchild of a finished family it looked at can be locked at once:
    the batch locks only the runs it deletes."""
    import psycopg

    url = postgres_url()

    def connect() -> psycopg.Connection:  # type: ignore[type-arg]
        conn = psycopg.connect(require_server())
        conn.execute(f"SET search_path = {_schema(url)}")  # type: ignore[arg-type]
        conn.commit()  # kept by the rollbacks below
        return conn

    async def main() -> tuple[bool, int]:
        async with PostgresStore.from_url(url) as store:
            await _finished(store, "parent")
            await _finished(store, "child", parent_run_id="parent")
            await _finished(store, "live", status=RunStatus.RUNNING, parent_run_id="child")
            await _finished(store, "done")
            ref = await store.put_artifact("done", b"content")
            holder, probe = connect(), connect()
            try:
                holder.execute(
                    "SELECT 1 FROM spindle_blobs WHERE digest = %s FOR KEY SHARE", (ref.digest,)
                )
                batch = asyncio.ensure_future(store.prune(before=at(10), now=at(10)))
                for _ in range(200):  # until the batch waits for the blob's lock
                    await asyncio.sleep(0.02)
                    waiting = probe.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    ).fetchone()
                    probe.rollback()
                    if waiting and waiting[0]:
                        break
                assert not batch.done()
                probe.execute("SET lock_timeout = '1s'")
                row = probe.execute(
                    "SELECT 1 FROM spindle_runs WHERE run_id = 'live' FOR UPDATE NOWAIT"
                ).fetchone()
                probe.rollback()
                holder.rollback()
                result = await asyncio.wait_for(batch, 10)
            finally:
                holder.close()
                probe.close()
            return row is not None, result.runs

    assert asyncio.run(main()) == (True, 1)
