"""Group commit in the SQLite store: many writes in flight, one transaction, one fsync.

With ``group_commit`` on (the default at ``durability=full``) every write goes
to one writer thread, which writes everything queued as one transaction (with
a savepoint per write only when one of them fails). These tests hold the
file's write lock from a second connection to make writes queue up behind
it, so that a batch holds exactly the writes a test means it to; every
outcome is then read back through a fresh store on the same file.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spindle.core.errors import (
    ConfigError,
    LeaseLost,
    LedgerError,
    RunNotFound,
    StoreBusy,
    StoreError,
    StoreFull,
)
from spindle.core.model import RunState, RunStatus, StepRecord, utcnow
from spindle.core.store import Commit, Store
from spindle.plugins.stores._sqlite_checkpoint import BACKSTOP_PAGES, CHECKPOINT_PAGES
from spindle.plugins.stores._sqlite_group import GroupWriter
from spindle.plugins.stores._sqlite_jobs import Job, outcome
from spindle.plugins.stores.memory import MemoryStore
from spindle.plugins.stores.sqlite import SQLiteStore

Chain = Callable[..., list[StepRecord]]


def grouped(path: Path, **options: Any) -> SQLiteStore:
    """A store on ``path`` with group commit on (at durability=normal: no fsync to wait)."""
    options.setdefault("group_commit", "on")
    return SQLiteStore.from_url(f"sqlite:///{path}", **options)


def writer(store: SQLiteStore) -> GroupWriter:
    group = store._group
    assert group is not None
    return group


class Blocker:
    """A second connection holding the file's write lock: writes queue behind it."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.conn.execute("COMMIT")
            self.conn.close()


@pytest.fixture
def blocker(tmp_path: Path) -> Iterator[Callable[[], Blocker]]:
    made: list[Blocker] = []

    def make() -> Blocker:
        made.append(Blocker(tmp_path / "s.db"))
        return made[-1]

    yield make
    for held in made:
        held.release()


async def queued(store: SQLiteStore, count: int) -> None:
    """Wait until exactly ``count`` writes wait in the writer's queue."""
    group = writer(store)
    for _ in range(1000):
        if len(group._queue) == count:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"{count} writes never queued ({len(group._queue)} did)")


async def held_writer(store: SQLiteStore, blocker: Callable[[], Blocker]) -> tuple[Blocker, Any]:
    """Lock the file and give the writer one write, which it takes and waits on: writes
    made from now on queue up, to be written together in the next batch."""
    held = blocker()
    first = asyncio.ensure_future(store.put_definition("first", {}))
    await asyncio.sleep(0)  # it is queued
    await queued(store, 0)  # the writer took it, and waits for the lock
    return held, first


def running(run_id: str, **changes: Any) -> RunState:
    return RunState(run_id, "wf", status=RunStatus.RUNNING, **changes)


async def reopened(path: Path) -> SQLiteStore:
    store = SQLiteStore.from_url(f"sqlite:///{path}", group_commit="off")
    await store.open()
    return store


# --- the option -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "on"),
    [
        ("", False),
        ("?durability=full", True),
        ("?group_commit=on", True),
        ("?durability=full&group_commit=off", False),
        ("?group_commit=auto", False),
    ],
)
def test_group_commit_is_on_at_full_durability_unless_set(
    tmp_path: Path, query: str, on: bool
) -> None:
    """group_commit=auto (the default) is on at durability=full and off at normal."""
    assert SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db{query}").grouped is on


@pytest.mark.parametrize("build", ["url", "keyword"])
def test_an_unknown_group_commit_value_raises(tmp_path: Path, build: str) -> None:
    """A group_commit value other than auto, on or off raises ConfigError naming all three."""
    url = f"sqlite:///{tmp_path}/a.db"
    with pytest.raises(ConfigError, match=r"unknown group_commit 'yes'; use 'auto'.*'on'.*'off'"):
        if build == "url":
            SQLiteStore.from_url(url + "?group_commit=yes")
        else:
            SQLiteStore.from_url(url, group_commit="yes")


async def test_with_group_commit_off_no_writer_thread_is_started(tmp_path: Path) -> None:
    """The default at durability=normal commits in the caller: no writer thread exists."""
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db") as store:
        assert store._group is None


# --- batching ---------------------------------------------------------------------------


async def test_concurrent_commits_of_many_runs_share_transactions(
    tmp_path: Path, chain: Chain
) -> None:
    """Commits of 40 runs in flight together are written in far fewer transactions than
    commits, and every one of them is in the file."""
    path = tmp_path / "s.db"
    runs = [f"r{i}" for i in range(40)]
    async with grouped(path) as store:
        await asyncio.gather(*(store.commit(Commit(running(r), create=True)) for r in runs))

        async def steps(run_id: str) -> None:
            head = ""
            for seq in range(10):
                records = chain(run_id, 1, start=seq, head=head)
                head = records[-1].record_hash
                state = running(run_id, step_count=seq + 1)
                await store.commit(Commit(state, records, state_changed=False))

        await asyncio.gather(*(steps(r) for r in runs))
        group = writer(store)
        assert group.jobs == 40 * 11
        assert group.batches < group.jobs / 4
    fresh = await reopened(path)
    for run_id in runs:
        assert await fresh.ledger_head(run_id) == (10, chain(run_id, 10)[-1].record_hash)
    await fresh.aclose()


async def test_a_failing_commit_raises_in_its_caller_alone(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """In one batch, a commit under a stale lease, one that breaks its ledger, a create of
    an existing run and one consuming an unknown event each raise their own error in
    their own caller; the other commits of the batch are durable."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        for run_id in ("a", "b", "c", "d", "e"):
            await store.commit(Commit(running(run_id), chain(run_id, 1), create=True))
        a_next = chain("a", 1, start=1, head=chain("a", 1)[0].record_hash)
        commits = {
            "good a": Commit(running("a", step_count=2), a_next, state_changed=False),
            "lease": Commit(running("b"), token=7),
            "ledger": Commit(running("c"), chain("c", 1, start=5)),
            "exists": Commit(running("d"), create=True),
            "event": Commit(running("e"), consume_events=["nope"]),
            "good new": Commit(running("f"), chain("f", 2), create=True),
            "good e": Commit(running("e", labels={"x": "y"})),
        }
        held, first = await held_writer(store, blocker)
        batches = writer(store).batches
        tasks = {name: asyncio.ensure_future(store.commit(c)) for name, c in commits.items()}
        await queued(store, len(commits))
        held.release()
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        await first
        assert writer(store).batches == batches + 2  # the first write's, then all of these
    outcomes = dict(zip(tasks, results, strict=True))
    assert isinstance(outcomes.pop("lease"), LeaseLost)
    assert isinstance(outcomes.pop("ledger"), LedgerError)
    exists = outcomes.pop("exists")
    assert isinstance(exists, StoreError) and "already exists" in str(exists)
    event = outcomes.pop("event")
    assert isinstance(event, StoreError) and "inbox event 'nope'" in str(event)
    assert outcomes == {"good a": None, "good new": None, "good e": None}
    fresh = await reopened(path)
    assert (await fresh.ledger_head("a"))[0] == 2
    assert (await fresh.ledger_head("f"))[0] == 2
    assert (await fresh.load_run("e")).labels == {"x": "y"}
    assert (await fresh.ledger_head("c"))[0] == 1  # the bad record was rolled back
    assert (await fresh.ledger_head("d"))[0] == 1
    await fresh.aclose()


async def test_a_batch_that_fails_nowhere_is_written_without_savepoints(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """Commits that all succeed are written as one transaction without a savepoint each
    (a savepoint copies every page a write first touches); with one failing commit in
    the batch, the batch is written again with savepoints and only that one fails."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        for run_id in ("a", "b", "c"):
            await store.commit(Commit(running(run_id), chain(run_id, 1), create=True))
        statements: list[str] = []
        writer(store)._conn.set_trace_callback(statements.append)
        for bad in (False, True):
            statements.clear()
            held, first = await held_writer(store, blocker)
            seq = 2 if bad else 1
            heads = {run_id: (await store.ledger(run_id))[-1].record_hash for run_id in "abc"}
            commits = [
                Commit(running(run_id), chain(run_id, 1, start=seq, head=heads[run_id]))
                for run_id in "abc"
            ]
            if bad:
                commits[1] = Commit(running("b"), chain("b", 1, start=7))  # a gap: LedgerError
            tasks = [asyncio.ensure_future(store.commit(c)) for c in commits]
            await queued(store, len(commits))
            held.release()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await first
            savepoints = [sql for sql in statements if sql.startswith("SAVEPOINT")]
            if bad:
                assert isinstance(results[1], LedgerError)
                assert results[0] is None and results[2] is None
                assert len(savepoints) == 3  # the batch again, one savepoint a commit
            else:
                assert results == [None, None, None]
                assert savepoints == []
    fresh = await reopened(path)
    assert [(await fresh.ledger_head(run_id))[0] for run_id in ("a", "b", "c")] == [3, 2, 3]
    assert [r.seq for r in await fresh.ledger("a")] == [0, 1, 2]
    await fresh.aclose()


async def test_a_run_whose_creation_was_rolled_back_can_be_created_and_stepped(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """A create rolled back to its savepoint (it consumed an unknown event) leaves no
    trace: the run does not exist, its number goes to the next run created in the same
    batch, and creating it again and stepping it on the hot path writes its own ledger."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        held, first = await held_writer(store, blocker)
        bad = asyncio.ensure_future(
            store.commit(Commit(running("x"), chain("x", 1), ["nope"], create=True))
        )
        good = asyncio.ensure_future(store.commit(Commit(running("y"), chain("y", 1), create=True)))
        await queued(store, 2)
        held.release()
        await first
        with pytest.raises(StoreError, match="does not exist"):
            await bad
        await good
        with pytest.raises(RunNotFound):
            await store.load_run("x")
        records = chain("x", 3)
        await store.commit(Commit(running("x"), records[:1], create=True))
        await store.commit(Commit(running("x"), records[1:], state_changed=False))
    fresh = await reopened(path)
    assert [r.seq for r in await fresh.ledger("x")] == [0, 1, 2]
    assert await fresh.ledger_head("x") == (3, records[-1].record_hash)
    assert [r.record_hash for r in await fresh.ledger("y")] == [chain("y", 1)[0].record_hash]
    await fresh.aclose()


# --- a batch that fails -----------------------------------------------------------------


async def test_a_full_disk_fails_every_commit_of_the_batch_then_the_store_goes_on(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """SQLITE_FULL in the writer fails each commit of its batch with the StoreFull a commit
    without group commit raises; once there is room, the same commits succeed."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        runs = [f"r{i}" for i in range(8)]
        conn = writer(store)._conn  # the limit is set on the writer's own connection
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        held, first = await held_writer(store, blocker)
        big = {"blob": "x" * 20_000}
        tasks = [
            asyncio.ensure_future(store.commit(Commit(running(r, inputs=big), create=True)))
            for r in runs
        ]
        await queued(store, len(runs))
        held.release()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(first, return_exceptions=True)  # it may not fit either
        for run_id, result in zip(runs, results, strict=True):
            assert isinstance(result, StoreFull), result
            assert str(result).startswith(f"disk full writing SQLite store {path}")
            assert f"then start it again (run {run_id} was not created)" in str(result)
        conn.execute("PRAGMA max_page_count = 1073741823")
        await asyncio.gather(*(store.commit(Commit(running(r), create=True)) for r in runs))
    fresh = await reopened(path)
    assert sorted(s.run_id for s in await fresh.list_runs()) == sorted(runs)
    await fresh.aclose()


async def test_a_lock_held_past_busy_timeout_fails_the_batch_then_the_store_goes_on(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """A batch that cannot get the write lock within busy_timeout fails each of its commits
    with StoreBusy, naming the run to resume; the next batch is written."""
    path = tmp_path / "s.db"
    async with grouped(path, busy_timeout=0.2) as store:
        await store.commit(Commit(running("r1"), create=True))
        held = blocker()
        results = await asyncio.gather(
            store.commit(Commit(running("r1", labels={"a": "1"}))),
            store.acquire_lease("r1", owner="w", host="h", pid=1, ttl=30, now=utcnow()),
            return_exceptions=True,
        )
        held.release()
        assert all(isinstance(r, StoreBusy) for r in results), results
        assert "busy_timeout=0.2s" in str(results[0])
        assert "spindle resume r1" in str(results[0])
        await store.commit(Commit(running("r1", labels={"a": "2"})))
        assert (await store.load_run("r1")).labels == {"a": "2"}


# --- closing and cancelling -------------------------------------------------------------


async def test_closing_writes_the_commits_in_flight_then_refuses_more(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """aclose with commits queued writes them all before it returns; a write after it
    raises a StoreError saying to open the store again."""
    path = tmp_path / "s.db"
    store = grouped(path)
    await store.open()
    runs = [f"r{i}" for i in range(10)]
    held, first = await held_writer(store, blocker)
    tasks = [asyncio.ensure_future(store.commit(Commit(running(r), create=True))) for r in runs]
    await queued(store, len(runs))
    closing = asyncio.ensure_future(store.aclose())
    await asyncio.sleep(0.01)
    assert not closing.done()  # it waits for the queued commits
    held.release()
    await closing
    assert all(task.done() and task.exception() is None for task in tasks)
    await first
    with pytest.raises(StoreError, match="is not open"):
        await store.commit(Commit(running("late"), create=True))
    fresh = await reopened(path)
    assert sorted(s.run_id for s in await fresh.list_runs()) == sorted(runs)
    await fresh.aclose()


async def test_a_write_made_while_the_store_closes_is_refused(
    tmp_path: Path, blocker: Callable[[], Blocker]
) -> None:
    """A write that arrives while aclose flushes the queue raises StoreError (closed)."""
    store = grouped(tmp_path / "s.db")
    await store.open()
    held, first = await held_writer(store, blocker)
    closing = asyncio.ensure_future(store.aclose())
    await asyncio.sleep(0.01)
    with pytest.raises(StoreError, match="is closed; open it again"):
        await store.commit(Commit(running("late"), create=True))
    held.release()
    await closing
    await first


async def test_a_cancelled_caller_learns_its_commit_before_the_cancellation(
    tmp_path: Path, chain: Chain, blocker: Callable[[], Blocker]
) -> None:
    """A caller cancelled while its commit is queued goes on once the commit is written
    (as if it had not been cancelled yet) and is cancelled at its next await."""
    path = tmp_path / "s.db"
    after: list[str] = []

    async def step(store: SQLiteStore) -> None:
        await store.commit(Commit(running("r1"), chain("r1", 1), create=True))
        after.append("committed")
        await asyncio.sleep(10)
        after.append("slept")

    async with grouped(path) as store:
        held, first = await held_writer(store, blocker)
        task = asyncio.ensure_future(step(store))
        await queued(store, 1)
        task.cancel()
        await asyncio.sleep(0.01)
        assert not task.done()  # still waiting for its commit's outcome
        held.release()
        with pytest.raises(asyncio.CancelledError):
            await task
        await first
        assert after == ["committed"]
        assert (await store.ledger_head("r1"))[0] == 1


async def test_a_timeout_around_a_queued_commit_still_raises_timeout_error(
    tmp_path: Path, blocker: Callable[[], Blocker]
) -> None:
    """asyncio.timeout expiring during a queued commit raises TimeoutError after it."""
    async with grouped(tmp_path / "s.db") as store:
        held, first = await held_writer(store, blocker)
        asyncio.get_running_loop().call_later(0.05, held.release)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await store.commit(Commit(running("r1"), create=True))
                await asyncio.sleep(10)
        await first
        assert (await store.load_run("r1")).run_id == "r1"


# --- against the memory store -----------------------------------------------------------


def random_commit(
    rng: random.Random, chain: Chain, run_id: str, heads: dict[str, tuple[int, str]]
) -> tuple[Commit, float]:
    """A commit of ``run_id`` continuing its ledger as ``heads`` has it, or, by the
    ``choice`` also returned, one that leaves a gap (LedgerError), carries a stale lease
    token (LeaseLost) or creates the run again (StoreError)."""
    count, head = heads.get(run_id, (0, ""))
    choice = rng.random()
    start = count + 1 if choice < 0.1 else count  # a gap: LedgerError
    records = chain(run_id, rng.randint(0, 3), start=start, head=head)
    create = run_id not in heads or choice > 0.95
    token = 3 if 0.1 <= choice < 0.15 else None  # stale: LeaseLost
    return Commit(running(run_id), records, token=token, create=create), choice


async def same_ledgers(path: Path, memory: Store, runs: list[str]) -> None:
    """Each run's ledger head in the file at ``path`` is the one ``memory`` holds."""
    fresh = await reopened(path)
    for run_id in runs:
        try:
            expected = await memory.ledger_head(run_id)
        except RunNotFound:
            continue
        assert await fresh.ledger_head(run_id) == expected
    await fresh.aclose()


@pytest.mark.parametrize("seed", range(6))
async def test_random_concurrent_commits_end_as_serial_ones_do(
    tmp_path: Path, chain: Chain, seed: int
) -> None:
    """Random rounds of concurrent commits (some stale, some breaking the ledger, some
    creating twice) give each caller the outcome, and leave each ledger, as the same
    commits made one by one in the same order on the memory store."""
    rng = random.Random(seed)
    path = tmp_path / "s.db"
    runs = [f"r{i}" for i in range(12)]
    memory: Store = MemoryStore()
    heads: dict[str, tuple[int, str]] = {}
    async with grouped(path) as store:
        for _ in range(15):
            plan: list[Commit] = []
            for run_id in rng.sample(runs, rng.randint(1, len(runs))):
                count = heads.get(run_id, (0, ""))[0]
                commit, choice = random_commit(rng, chain, run_id, heads)
                plan.append(commit)
                records, create = commit.records, commit.create
                if not create and choice >= 0.15 and records:
                    heads[run_id] = (count + len(records), records[-1].record_hash)
                elif create and run_id not in heads and choice >= 0.15:
                    heads[run_id] = (len(records), records[-1].record_hash if records else "")
            got = await asyncio.gather(*(store.commit(c) for c in plan), return_exceptions=True)
            want = []
            for c in plan:
                try:
                    want.append(await memory.commit(c))
                except Exception as exc:
                    want.append(exc)
            assert [type(g) for g in got] == [type(w) for w in want]
        assert writer(store).batches < writer(store).jobs
    await same_ledgers(path, memory, runs)


# --- a lone caller ----------------------------------------------------------------------


def failing(exc: sqlite3.Error) -> StoreError:
    return StoreError(f"store failure: {exc}")


async def test_a_lone_caller_writes_in_its_own_thread_and_its_writes_are_durable(
    tmp_path: Path,
) -> None:
    """A task whose writes follow one another with nothing else in flight writes them in
    its own thread (no hop to the writer and back), each its own committed transaction;
    its first write, with no write before it from that task, goes to the writer."""
    path = tmp_path / "s.db"
    threads: list[int] = []

    def insert(value: int) -> Callable[[sqlite3.Connection], int]:
        def work(conn: sqlite3.Connection) -> int:
            threads.append(threading.get_ident())
            conn.execute("INSERT INTO queues (name, body) VALUES (?, '{}')", (f"q{value}",))
            return value

        return work

    async with grouped(path) as store:
        group = writer(store)
        results = [await group.submit(insert(i), failing) for i in range(20)]
        assert results == list(range(20))
        assert group.alone == 19
        assert threads[0] != threading.get_ident()
        assert threads[1:] == [threading.get_ident()] * 19
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM queues").fetchone() == (20,)
    conn.close()


async def test_writes_of_concurrent_tasks_never_go_alone(tmp_path: Path, chain: Chain) -> None:
    """20 runs stepping together write from 20 tasks: every write goes to the writer and
    they share transactions, none is written alone in its caller."""
    path = tmp_path / "s.db"
    runs = [f"r{i}" for i in range(20)]
    async with grouped(path) as store:

        async def steps(run_id: str) -> None:
            await store.commit(Commit(running(run_id), create=True))
            head = ""
            for seq in range(5):
                records = chain(run_id, 1, start=seq, head=head)
                head = records[-1].record_hash
                await store.commit(Commit(running(run_id), records, state_changed=False))

        await asyncio.gather(*(steps(r) for r in runs))
        group = writer(store)
        assert group.alone == 0
        assert group.jobs == 20 * 6
        assert group.batches <= 12


async def test_a_lone_write_that_fails_raises_in_its_caller_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """A lone write whose statements raise is rolled back and raises its own error (a
    SQLite failure as the store's error, caused by it); what it cached is forgotten, and
    the next lone write commits."""
    path = tmp_path / "s.db"
    forgotten: list[str] = []

    def half_then(exc: Exception) -> Callable[[sqlite3.Connection], None]:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO queues (name, body) VALUES ('half', '{}')")
            raise exc

        return work

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO queues (name, body) VALUES ('whole', '{}')")

    async with grouped(path) as store:
        group = writer(store)
        await group.submit(lambda conn: None, failing)  # the first goes to the writer
        ledger_error = LedgerError("does not continue")
        with pytest.raises(LedgerError) as raised:
            await group.submit(half_then(ledger_error), failing, lambda: forgotten.append("a"))
        assert raised.value is ledger_error
        broken = sqlite3.IntegrityError("constraint failed")
        with pytest.raises(StoreError, match="store failure: constraint failed") as failed:
            await group.submit(half_then(broken), failing, lambda: forgotten.append("b"))
        assert failed.value.__cause__ is broken
        await group.submit(insert, failing)
        assert group.alone == 3
        assert forgotten == ["a", "b"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM queues").fetchall() == [("whole",)]
    conn.close()


async def test_a_lone_write_behind_another_process_lock_fails_as_a_batch_would(
    tmp_path: Path, blocker: Callable[[], Blocker]
) -> None:
    """A lone write that cannot take the file's lock within busy_timeout fails with the
    StoreBusy a write without group commit raises; once the lock is free it commits."""
    path = tmp_path / "s.db"
    async with grouped(path, busy_timeout=0.2) as store:
        await store.commit(Commit(running("r1"), create=True))
        await store.commit(Commit(running("r1", labels={"a": "1"})))  # alone from here on
        held = blocker()
        with pytest.raises(StoreBusy, match=r"busy_timeout=0\.2s"):
            await store.commit(Commit(running("r1", labels={"a": "2"})))
        held.release()
        await store.commit(Commit(running("r1", labels={"a": "3"})))
        assert writer(store).alone == 3
        assert (await store.load_run("r1")).labels == {"a": "3"}


@pytest.mark.parametrize("seed", range(4))
async def test_random_lone_commits_end_as_serial_ones_do(
    tmp_path: Path, chain: Chain, seed: int
) -> None:
    """One task's random commits, one after another (some stale, some breaking the
    ledger, some creating twice), give it the outcome, and leave each ledger, as the
    same commits on the memory store; almost all of them are written alone."""
    rng = random.Random(seed)
    path = tmp_path / "s.db"
    runs = [f"r{i}" for i in range(6)]
    memory: Store = MemoryStore()
    heads: dict[str, tuple[int, str]] = {}
    async with grouped(path) as store:
        for _ in range(60):
            run_id = rng.choice(runs)
            commit, _ = random_commit(rng, chain, run_id, heads)
            outcomes = []
            for target in (store, memory):
                try:
                    outcomes.append(await target.commit(commit))
                except Exception as exc:
                    outcomes.append(exc)
            assert type(outcomes[0]) is type(outcomes[1])
            if not isinstance(outcomes[1], Exception):  # the run exists, its ledger moved
                last = commit.records[-1] if commit.records else None
                moved = (last.seq + 1, last.record_hash) if last else None
                heads[run_id] = moved or heads.get(run_id, (0, ""))
        assert writer(store).alone >= 55
    await same_ledgers(path, memory, runs)


# --- checkpoints between batches --------------------------------------------------------


class Checkpoints:
    """The writer's connection, with its ``PRAGMA wal_checkpoint`` answered by ``answer``
    (every other statement goes to the real connection)."""

    def __init__(self, conn: sqlite3.Connection, answer: Callable[[], Any]) -> None:
        self.conn = conn
        self.answer = answer
        self.asked = 0

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql.startswith("PRAGMA wal_checkpoint"):
            self.asked += 1
            return self.answer()
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def big_runs(store: SQLiteStore, count: int, *, at_once: int = 25) -> list[str]:
    """Create ``count`` runs with 16 KB of inputs each (four or five log pages a run),
    ``at_once`` in flight together."""
    big = {"blob": "x" * 16_000}
    runs = [f"r{i}" for i in range(count)]
    for start in range(0, count, at_once):
        await asyncio.gather(
            *(
                store.commit(Commit(running(r, inputs=big), create=True))
                for r in runs[start : start + at_once]
            )
        )
    return runs


def log_pages(path: Path) -> int:
    """How large the store's write-ahead log file grew, in the file's pages."""
    wal = Path(f"{path}-wal")
    if not wal.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    finally:
        conn.close()
    return int(wal.stat().st_size // page_size)


async def test_the_writer_checkpoints_the_log_between_batches_near_its_usual_size(
    tmp_path: Path,
) -> None:
    """Writes of ~4,500 log pages are checkpointed by the writer itself, between batches,
    at about SQLite's usual 1,000 pages: the log file never grows near the backstop at which
    SQLite would checkpoint inside a COMMIT, and every run is in the file."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        runs = await big_runs(store, 1000)
        group = writer(store)
        assert group.log.made >= 3
        assert group.log.failed == 0
        assert log_pages(path) < 2 * CHECKPOINT_PAGES < BACKSTOP_PAGES
    fresh = await reopened(path)
    assert len(await fresh.list_runs(limit=2000)) == len(runs)
    await fresh.aclose()


async def test_without_the_writers_checkpoints_the_log_grows_to_the_backstop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart of the test above, so that it can fail: with the writer's own
    checkpoints out of reach, only SQLite's at the backstop keeps the log in check."""
    monkeypatch.setattr("spindle.plugins.stores._sqlite_checkpoint.CHECKPOINT_PAGES", 10**9)
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        await big_runs(store, 1000)
        assert writer(store).log.made == 0
        assert log_pages(path) >= 2 * CHECKPOINT_PAGES


async def test_a_failing_checkpoint_loses_nothing_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    """A checkpoint that fails (an I/O error, say) is counted and kept, not raised: every
    write still commits, is read back, and the writer tries again later."""
    path = tmp_path / "s.db"
    broken = sqlite3.OperationalError("disk I/O error")

    def fail() -> Any:
        raise broken

    async with grouped(path) as store:
        group = writer(store)
        proxy = Checkpoints(group._conn, fail)
        group._conn = proxy  # type: ignore[assignment]
        runs = await big_runs(store, 600)
        assert group.log.failed == proxy.asked >= 2
        assert group.log.error is broken
        assert group.log.made == 0
        await store.commit(Commit(running("after"), create=True))
    fresh = await reopened(path)
    assert len(await fresh.list_runs(limit=2000)) == len(runs) + 1
    await fresh.aclose()


async def test_a_checkpoint_that_finds_another_checkpointing_is_tried_again(
    tmp_path: Path,
) -> None:
    """``wal_checkpoint`` answering busy (another connection, say another process's
    writer, was checkpointing the file) is neither a failure nor "no log": the writer
    asks again after more writes, and its checkpoints resume."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        group = writer(store)
        real = group._conn
        answers = iter(["busy", "busy"])

        def answer() -> Any:
            if next(answers, "done") == "busy":
                return real.execute("SELECT 1, -1, -1")
            return real.execute("PRAGMA wal_checkpoint(PASSIVE)")

        proxy = Checkpoints(real, answer)
        group._conn = proxy  # type: ignore[assignment]
        await big_runs(store, 1000)
        assert proxy.asked >= 3
        assert group.log.made == proxy.asked - 2 >= 1
        assert group.log.failed == 0


async def test_a_file_with_no_log_to_checkpoint_is_not_asked_again(tmp_path: Path) -> None:
    """``wal_checkpoint`` answering -1 pages (the file is not in WAL mode) stops the
    writer's checkpoints: it does not ask after every batch from then on."""
    path = tmp_path / "s.db"
    async with grouped(path) as store:
        group = writer(store)
        real = group._conn
        proxy = Checkpoints(real, lambda: real.execute("SELECT 0, -1, -1"))
        group._conn = proxy  # type: ignore[assignment]
        await big_runs(store, 600)
        assert proxy.asked == 1
        assert group.log.made == group.log.failed == 0


# --- through the engine -----------------------------------------------------------------


def ten_nodes() -> Any:
    """A workflow of 10 chained no-op nodes."""
    from spindle import Workflow

    async def noop() -> None:
        return None

    wf = Workflow("chain")
    for i in range(10):
        wf.node(noop, name=f"s{i}", after=[f"s{i - 1}"] if i else [])
    return wf


async def test_concurrent_engine_runs_at_full_durability_share_commits(tmp_path: Path) -> None:
    """30 runs of 10 chained nodes driven together at durability=full all complete, with
    verified ledgers, in fewer transactions than commits."""
    from spindle import Settings
    from spindle.core.engine import Engine

    wf = ten_nodes()
    url = f"sqlite:///{tmp_path}/s.db?durability=full"
    async with Engine(url, settings=Settings(runs_dir=str(tmp_path / "runs"))) as engine:
        states = await asyncio.gather(*(engine.run(wf) for _ in range(30)))
        assert {s.status for s in states} == {RunStatus.COMPLETED}
        for s in states:
            assert (await engine.verify_ledger(s.run_id)).ok
        store = engine.store
        assert isinstance(store, SQLiteStore)
        assert writer(store).batches < writer(store).jobs / 3


async def test_a_lone_engine_run_at_full_durability_commits_in_its_caller(
    tmp_path: Path,
) -> None:
    """One run at a time at durability=full writes its commits in the engine's own thread
    (after its first), and its ledger verifies."""
    from spindle import Settings
    from spindle.core.engine import Engine

    wf = ten_nodes()
    url = f"sqlite:///{tmp_path}/s.db?durability=full"
    async with Engine(url, settings=Settings(runs_dir=str(tmp_path / "runs"))) as engine:
        for _ in range(3):
            state = await engine.run(wf)
            assert state.status == RunStatus.COMPLETED
            assert (await engine.verify_ledger(state.run_id)).ok
        store = engine.store
        assert isinstance(store, SQLiteStore)
        assert writer(store).alone >= writer(store).jobs - 1 >= 29


# --- a caller's wait, when it is cancelled ----------------------------------------------


def a_job(loop: asyncio.AbstractEventLoop) -> Job:
    return Job(lambda conn: None, lambda exc: StoreError(str(exc)), None, loop)


@pytest.mark.parametrize("when", ["with the outcome", "before the outcome", "settled meanwhile"])
async def test_a_cancelled_wait_returns_the_outcome_then_raises_the_cancellation(
    when: str,
) -> None:
    """However a cancellation meets the outcome of a write, the caller gets the outcome
    first and the cancellation at its next await, counted once (uncancel balances it)."""
    loop = asyncio.get_running_loop()
    job = a_job(loop)
    after: list[Any] = []

    async def caller() -> None:
        after.append(await outcome(job))
        await asyncio.sleep(10)
        after.append("slept")

    task = loop.create_task(caller())
    await asyncio.sleep(0)  # it waits for the outcome
    if when == "with the outcome":
        job.future.set_result(42)
        task.cancel()
    elif when == "before the outcome":
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()
        job.settled = True
        job.result = 42
        job.future.set_result(42)
    else:  # the outcome is handed over after the cancellation, before the caller runs
        task.cancel()
        job.result = 42
        job.settled = True  # (what the writer's resolve does to a cancelled future)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == [42]
    assert task.cancelling() == 1
