"""The SQLite store's commits of runs it knows: no reads, checks in the writes, never wrong.

A store keeps what its last commit of a run left in the file and writes the
next commit without reading it back; these tests pin the statements that
costs (a step reads nothing) and that the hint is never trusted: a stale
lease token still writes nothing, and a row or ledger changed by another
process since is still written (or refused) exactly as if nothing were known.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spindle.core.errors import LeaseLost, LedgerError, StoreError
from spindle.core.model import RunState, RunStatus, StepRecord
from spindle.core.store import Commit
from spindle.plugins.stores import _sqlite_commit
from spindle.plugins.stores.sqlite import SQLiteStore

Chain = Callable[..., list[StepRecord]]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def at_path(path: Path, **options: object) -> SQLiteStore:
    return SQLiteStore.from_url(f"sqlite:///{path}", **options)


@contextmanager
def traced(store: SQLiteStore) -> Iterator[list[str]]:
    """The statements ``store`` runs on its connection inside the block, first word upper."""
    conn = store._conn  # the statements are what is pinned here; nothing public shows them
    assert conn is not None
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        conn.set_trace_callback(None)


async def started(store: SQLiteStore, chain: Chain) -> tuple[RunState, int]:
    """Run r1 created with its first record and leased, as ``engine.run`` starts one."""
    state = RunState("r1", "wf", status=RunStatus.RUNNING)
    await store.commit(Commit(state, chain("r1", 1), create=True))
    lease = await store.acquire_lease("r1", owner="a", host="h", pid=1, ttl=60, now=NOW)
    assert lease is not None
    return state, lease.token


async def test_a_step_of_a_run_it_committed_reads_nothing(tmp_path: Path, chain: Chain) -> None:
    """A counters-only step is BEGIN, the fenced head UPDATE, the head INSERT, COMMIT."""
    async with at_path(tmp_path / "s.db") as store:
        state, token = await started(store, chain)
        first = chain("r1", 2)
        with traced(store) as statements:
            step = Commit(state, [first[1]], token=token, state_changed=False)
            await store.commit(step)
        verbs = [" ".join(sql.split()[:2]) for sql in statements]
        assert verbs == ["BEGIN IMMEDIATE", "UPDATE ledger", "INSERT INTO", "COMMIT"]
        assert "lease_token" in statements[1]  # the fence is in the write itself
        assert len(await store.ledger("r1")) == 2


async def test_a_runs_end_is_one_update_of_its_row(tmp_path: Path, chain: Chain) -> None:
    """The end of a known run reads nothing, releases the lease in the row's one UPDATE,
    and sets only the indexed column that changed (the status)."""
    async with at_path(tmp_path / "s.db") as store:
        state, token = await started(store, chain)
        state.status = RunStatus.COMPLETED
        end = Commit(state, chain("r1", 2)[1:], token=token, release_lease=True)
        with traced(store) as statements:
            await store.commit(end)
        assert not [sql for sql in statements if sql.startswith("SELECT")]
        updates = [sql for sql in statements if sql.startswith("UPDATE runs")]
        assert len(updates) == 1
        assert "status = " in updates[0] and "lease_owner = NULL" in updates[0]
        assert "workflow = " not in updates[0] and "created_at = " not in updates[0]
        assert await store.get_lease("r1") is None
        assert [run.run_id for run in await store.list_runs(status=RunStatus.COMPLETED)] == ["r1"]


@pytest.mark.parametrize("light", [True, False], ids=["step", "state"])
async def test_a_stale_token_writes_nothing_though_the_run_is_known(
    tmp_path: Path, chain: Chain, light: bool
) -> None:
    """A process whose lease was taken over commits with its old token: LeaseLost, and
    neither the ledger nor the row changes (the taker's view is what is stored)."""
    path = tmp_path / "s.db"
    async with at_path(path) as one, at_path(path) as two:
        state, token = await started(one, chain)
        stolen = await two.acquire_lease(
            "r1", owner="b", host="h", pid=2, ttl=60, now=NOW, steal_token=token
        )
        assert stolen is not None
        state.event_seq = 9
        state.status = RunStatus.COMPLETED
        stale = Commit(state, chain("r1", 2)[1:], token=token, state_changed=not light)
        with pytest.raises(LeaseLost, match=f"fencing token {token} is stale"):
            await one.commit(stale)
        assert len(await two.ledger("r1")) == 1
        stored = await two.load_run("r1")
        assert (stored.status, stored.event_seq, stored.step_count) == (RunStatus.RUNNING, 0, 1)
        assert (await two.get_lease("r1")) == stolen


async def test_a_row_changed_by_another_process_is_written_as_committed(
    tmp_path: Path, chain: Chain
) -> None:
    """What the store knew of a run is checked, not trusted: after another process
    rewrote the row, a state commit still stores its status (and the status index),
    and a step its event counter, as if the store knew nothing."""
    path = tmp_path / "s.db"
    async with at_path(path) as one, at_path(path) as two:
        state, token = await started(one, chain)
        records = chain("r1", 3)
        other = await two.load_run("r1")
        other.status = RunStatus.WAITING
        await two.commit(Commit(other, token=token))  # the row moves behind one's back
        await one.commit(Commit(state, [records[1]], token=token))  # status: still running
        stored = await two.load_run("r1")
        assert (stored.status, stored.step_count) == (RunStatus.RUNNING, 2)
        assert [run.run_id for run in await two.list_runs(status=RunStatus.RUNNING)] == ["r1"]
        assert await two.list_runs(status=RunStatus.WAITING) == []
        other = await two.load_run("r1")
        other.event_seq = 7
        await two.commit(Commit(other, token=token, state_changed=False))
        await one.commit(Commit(state, [records[2]], token=token, state_changed=False))
        stored = await two.load_run("r1")
        assert (stored.event_seq, stored.step_count) == (0, 3)  # one's counter, not two's


async def test_a_ledger_extended_behind_the_stores_back_is_refused(
    tmp_path: Path, chain: Chain
) -> None:
    """Records another process appended since this store's last commit are seen: the next
    commit from the old position raises LedgerError and writes nothing."""
    path = tmp_path / "s.db"
    async with at_path(path) as one, at_path(path) as two:
        state, token = await started(one, chain)
        records = chain("r1", 2)
        await two.commit(Commit(await two.load_run("r1"), [records[1]], token=token))
        for light in (True, False):
            with pytest.raises(LedgerError, match="expects seq 2"):
                await one.commit(Commit(state, [records[1]], token=token, state_changed=not light))
        assert len(await two.ledger("r1")) == 2


async def test_a_failed_commit_forgets_the_run(tmp_path: Path, chain: Chain) -> None:
    """After a commit of a run fails and is rolled back, the next one reads the run again
    (what was known may describe the writes rolled back) and succeeds."""
    async with at_path(tmp_path / "s.db") as store:
        state, token = await started(store, chain)
        records = chain("r1", 2)
        with pytest.raises(StoreError, match="'nope', which does not exist"):
            await store.commit(Commit(state, [records[1]], token=token, consume_events=["nope"]))
        assert "r1" not in store._known
        await store.commit(Commit(state, [records[1]], token=token, state_changed=False))
        assert len(await store.ledger("r1")) == 2


async def test_a_drives_last_commit_forgets_the_run(tmp_path: Path, chain: Chain) -> None:
    """The commit that releases the lease forgets the run, so a worker's memory does not
    grow with the runs it finished; the next drive's first commit reads the run again."""
    async with at_path(tmp_path / "s.db") as store:
        state, token = await started(store, chain)
        assert "r1" in store._known
        records = chain("r1", 3)
        await store.commit(Commit(state, [records[1]], token=token, release_lease=True))
        assert "r1" not in store._known
        lease = await store.acquire_lease("r1", owner="a", host="h", pid=1, ttl=60, now=NOW)
        assert lease is not None
        await store.commit(Commit(state, [records[2]], token=lease.token, state_changed=False))
        assert len(await store.ledger("r1")) == 3


async def test_at_most_known_runs_are_kept(
    tmp_path: Path, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past KNOWN_RUNS runs, the longest-known is dropped first."""
    monkeypatch.setattr(_sqlite_commit, "KNOWN_RUNS", 3)
    async with at_path(tmp_path / "s.db") as store:
        for run_id in ("a", "b", "c", "d", "e"):
            await store.commit(Commit(RunState(run_id, "wf"), chain(run_id, 1), create=True))
        assert list(store._known) == ["c", "d", "e"]


@pytest.mark.parametrize("with_records", [True, False], ids=["records", "state"])
async def test_a_record_removed_from_the_ledgers_end_is_refused_at_the_runs_end(
    tmp_path: Path, chain: Chain, with_records: bool
) -> None:
    """A state commit of a known run checks the ledger itself, as the full path does: with
    its last record deleted outside spindle (the head left), the run's end raises
    LedgerError naming the seq the ledger expects, or (with no records) re-reads the
    ledger, and writes nothing past the gap."""
    path = tmp_path / "s.db"
    async with at_path(path) as store:
        state, token = await started(store, chain)
        records = chain("r1", 3)
        await store.commit(Commit(state, [records[1]], token=token, state_changed=False))
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM ledger WHERE run_id = 'r1' AND seq = 1")
        conn.commit()
        conn.close()
        state.status = RunStatus.COMPLETED
        if with_records:
            end = Commit(state, [records[2]], token=token, release_lease=True)
            with pytest.raises(LedgerError, match="has seq 2 but the ledger expects seq 1"):
                await store.commit(end)
            assert [r.seq for r in await store.ledger("r1")] == [0]
        else:
            await store.commit(Commit(state, token=token, release_lease=True))
            assert (await store.load_run("r1")).head.count == 1  # type: ignore[union-attr]
