"""The SQLite store when its file fails: full, locked, read-only, damaged, empty, foreign.

Every failure here is a real one from the real SQLite engine — a size limit
(``PRAGMA max_page_count``) for a full disk, a second connection holding the
write lock, ``PRAGMA query_only`` for a file that cannot be written, bytes
overwritten in the file — never a mock. Each is reported as one spindle
error naming the file, and a failed write leaves the store as it was.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from pathlib import Path

import pytest

from spindle.core.errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from spindle.core.model import RunState, RunStatus, StepRecord
from spindle.core.store import Commit
from spindle.plugins.stores._sqlite_errors import file_failure, sqlite_failure
from spindle.plugins.stores._sqlite_schema import MIGRATIONS, _tables
from spindle.plugins.stores.sqlite import SQLiteStore


def at_path(path: Path, **options: object) -> SQLiteStore:
    return SQLiteStore.from_url(f"sqlite:///{path}", **options)


def connection(store: SQLiteStore) -> sqlite3.Connection:
    conn = store._conn  # the limits under test are set on the store's own connection
    assert conn is not None
    return conn


def limit_to_current_size(store: SQLiteStore) -> None:
    """Let the file grow no more: the next write that needs a page fails with SQLITE_FULL."""
    conn = connection(store)
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")


def real_error(make: str) -> sqlite3.Error:
    """A real sqlite3 error of one kind, raised by SQLite itself."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    try:
        if make == "full":
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            conn.execute(f"PRAGMA max_page_count = {pages}")
            conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
        elif make == "readonly":
            conn.execute("PRAGMA query_only = 1")
            conn.execute("INSERT INTO t VALUES (1)")
        elif make == "no such table":
            conn.execute("SELECT * FROM ledger")
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"no error for {make}")


async def first_run(store: SQLiteStore, chain: object) -> tuple[RunState, list[StepRecord]]:
    records = chain("r1", 2)  # type: ignore[operator]
    state = RunState("r1", "wf", status=RunStatus.RUNNING, step_count=2)
    await store.commit(Commit(state, records, create=True))
    return state, records


# --- the mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        ("full", StoreFull, "disk full writing SQLite store /s.db"),
        ("readonly", StoreReadOnly, "SQLite store /s.db cannot be written"),
        ("no such table", StoreCorrupt, "SQLite store /s.db lacks part of spindle's schema"),
    ],
)
def test_sqlite_errors_map_by_their_result_code(
    make: str, error: type[StoreError], says: str
) -> None:
    """Each kind of SQLite failure becomes its spindle error, naming the file and the cause."""
    exc = real_error(make)
    found = sqlite_failure(exc, "/s.db", writing=True, busy_timeout=10, run_id="r1")
    assert type(found) is error
    assert str(found).startswith(says)
    assert str(exc) in str(found)


def test_a_failed_write_for_a_run_says_how_to_resume_it() -> None:
    """A full disk during a run's write says the write was rolled back and how to resume."""
    found = str(
        sqlite_failure(real_error("full"), "/s.db", writing=True, busy_timeout=1, run_id="r1")
    )
    assert "run 'spindle resume r1' to continue run r1" in found
    assert "the write was rolled back and nothing committed was lost" in found


def test_a_failed_run_creation_says_it_was_not_created() -> None:
    """A write that was creating a run says the run does not exist and to start it again."""
    exc = real_error("full")
    found = str(
        sqlite_failure(exc, "/s.db", writing=True, busy_timeout=1, run_id="r1", creating=True)
    )
    assert "run r1 was not created" in found
    assert "spindle resume" not in found


@pytest.mark.parametrize(
    ("code", "error"),
    [(errno.ENOSPC, StoreFull), (errno.EACCES, StoreReadOnly), (errno.EIO, StoreError)],
)
def test_os_errors_on_store_files_map_by_errno(code: int, error: type[StoreError]) -> None:
    """An OS error writing a file of the store (an artifact) names the file and the store."""
    found = file_failure(OSError(code, os.strerror(code)), "/s.db", "artifact /s.db.artifacts/x")
    assert type(found) is error
    assert "artifact /s.db.artifacts/x of SQLite store /s.db" in str(found)


# --- a full disk --------------------------------------------------------------------------


async def test_a_commit_on_a_full_disk_is_rolled_back_and_can_be_made_again(
    tmp_path: Path, chain: object
) -> None:
    """SQLITE_FULL during a commit raises StoreFull, leaves the run and its ledger as they
    were, and the same commit succeeds once there is room."""
    async with at_path(tmp_path / "s.db") as store:
        state, records = await first_run(store, chain)
        before = await store.load_run("r1")
        limit_to_current_size(store)
        more = chain("r1", 1, start=2, head=records[-1].record_hash)  # type: ignore[operator]
        more[0].result = "x" * 100_000
        state.status = RunStatus.WAITING
        with pytest.raises(StoreFull, match=rf"disk full writing SQLite store {tmp_path}/s.db"):
            await store.commit(Commit(state, more, state_changed=True))
        assert not connection(store).in_transaction
        assert await store.load_run("r1") == before
        assert await store.ledger("r1") == records
        connection(store).execute("PRAGMA max_page_count = 1073741823")
        await store.commit(Commit(state, more, state_changed=True))
        assert await store.ledger("r1") == [*records, *more]
        assert (await store.load_run("r1")).status == RunStatus.WAITING


async def test_a_run_created_on_a_full_disk_does_not_exist(tmp_path: Path, chain: object) -> None:
    """A run whose creation hit a full disk is not created, and can be created later."""
    async with at_path(tmp_path / "s.db") as store:
        limit_to_current_size(store)
        state = RunState("r1", "wf", status=RunStatus.RUNNING, inputs={"big": "x" * 100_000})
        with pytest.raises(StoreFull, match="run r1 was not created"):
            await store.commit(Commit(state, [], create=True))
        assert await store.list_runs() == []
        connection(store).execute("PRAGMA max_page_count = 1073741823")
        await store.commit(Commit(state, [], create=True))
        assert [s.run_id for s in await store.list_runs()] == ["r1"]


# --- locks, read-only files -----------------------------------------------------------------


async def test_a_lock_held_past_busy_timeout_raises_store_busy(
    tmp_path: Path, chain: object
) -> None:
    """A write lock another connection holds past busy_timeout raises StoreBusy, names the
    file and the timeout; once released, the write goes through."""
    path = tmp_path / "s.db"
    async with at_path(path, busy_timeout=0.05) as store:
        state, records = await first_run(store, chain)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        more = chain("r1", 1, start=2, head=records[-1].record_hash)  # type: ignore[operator]
        try:
            with pytest.raises(StoreBusy, match=rf"{path} is locked.*busy_timeout=0.05s"):
                await store.commit(Commit(state, more))
            with pytest.raises(StoreBusy):
                await store.release_lease("r1", owner="w", token=1)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await store.commit(Commit(state, more))
        assert len(await store.ledger("r1")) == 3


async def test_a_store_that_cannot_be_written_raises_store_read_only(
    tmp_path: Path, chain: object
) -> None:
    """A write SQLite refuses as read-only raises StoreReadOnly naming the file; reads work."""
    async with at_path(tmp_path / "s.db") as store:
        await first_run(store, chain)
        connection(store).execute("PRAGMA query_only = 1")
        with pytest.raises(StoreReadOnly, match=rf"{tmp_path}/s.db cannot be written"):
            await store.deliver_event("k", 1)
        assert [s.run_id for s in await store.list_runs()] == ["r1"]


async def test_an_artifact_that_cannot_be_written_raises_a_store_error(tmp_path: Path) -> None:
    """An artifact directory that cannot be made raises a StoreError naming the artifact."""
    path = tmp_path / "s.db"
    async with at_path(path) as store:
        Path(f"{path}.artifacts").write_text("in the way")
        with pytest.raises(StoreError, match=rf"artifact .* of SQLite store {path}"):
            await store.put_artifact("r1", b"data")


# --- damaged, empty and foreign files ---------------------------------------------------------


async def test_a_table_dropped_while_open_raises_store_corrupt(
    tmp_path: Path, chain: object
) -> None:
    """A table dropped by another connection while the store is open raises StoreCorrupt."""
    path = tmp_path / "s.db"
    async with at_path(path) as store:
        await first_run(store, chain)
        other = sqlite3.connect(path)
        other.execute("DROP TABLE ledger")
        other.commit()
        other.close()
        with pytest.raises(StoreCorrupt, match=rf"{path} lacks part of spindle's schema"):
            await store.ledger("r1")


async def test_a_store_missing_a_table_is_refused_at_open(tmp_path: Path) -> None:
    """A spindle store with a dropped table is refused when opened, naming the table."""
    path = tmp_path / "s.db"
    async with at_path(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE inbox")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupt, match=rf"{path} lacks spindle's table inbox"):
        await at_path(path).open()


async def test_overwritten_pages_raise_store_corrupt(tmp_path: Path, chain: object) -> None:
    """A file whose pages were overwritten raises StoreCorrupt, not a sqlite3 error."""
    path = tmp_path / "s.db"
    async with at_path(path) as store:
        await first_run(store, chain)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(4096)  # every page but the first (the header and the schema's root)
        f.write(b"\xff" * (size - 4096))
    with pytest.raises(StoreCorrupt, match=rf"{path} is not a database or is damaged"):
        async with at_path(path) as store:
            await store.list_runs()


async def test_an_empty_file_is_refused_and_left_empty(tmp_path: Path) -> None:
    """A 0-byte file at the store's path is refused (StoreCorrupt) and not written to."""
    path = tmp_path / "s.db"
    path.touch()
    with pytest.raises(StoreCorrupt, match=rf"{path} exists but is empty \(0 bytes\)"):
        await at_path(path).open()
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


async def test_a_sqlite_file_without_tables_is_refused(tmp_path: Path) -> None:
    """A SQLite database with no tables at all is not taken for a new store."""
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")  # writes the header: a real, empty database
    conn.close()
    with pytest.raises(StoreCorrupt, match=rf"{path} is a SQLite database without spindle's"):
        await at_path(path).open()


@pytest.mark.parametrize("kind", ["directory", "under a file"])
async def test_a_path_that_cannot_hold_a_store_is_refused(tmp_path: Path, kind: str) -> None:
    """A directory, or a path below a regular file, raises StoreError naming what is wrong."""
    if kind == "directory":
        path = tmp_path / "s.db"
        path.mkdir()
        says = rf"{path} is a directory, not a file"
    else:
        (tmp_path / "afile").write_text("x")
        path = tmp_path / "afile" / "s.db"
        says = rf"{path}: {tmp_path}/afile is a file, not a directory"
    with pytest.raises(StoreError, match=says):
        await at_path(path).open()


# --- creating a new store --------------------------------------------------------------------


async def test_a_new_store_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Creating a store leaves the store file alone beside it (no temporary name)."""
    async with at_path(tmp_path / "s.db"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


async def test_stores_opened_together_on_a_new_path_share_one_file(tmp_path: Path) -> None:
    """Many stores opening one new path at once all open it (none finds a half-made file),
    and a run written through one is seen by the others."""
    path = tmp_path / "new" / "s.db"
    stores = [at_path(path) for _ in range(8)]

    def open_one(store: SQLiteStore) -> None:
        asyncio.run(store.open())

    await asyncio.gather(*(asyncio.to_thread(open_one, s) for s in stores))
    try:
        await stores[0].commit(Commit(RunState("r1", "wf"), [], create=True))
        for store in stores:
            assert [s.run_id for s in await store.list_runs()] == ["r1"]
    finally:
        for store in stores:
            await store.aclose()


def test_the_tables_expected_follow_the_migrations() -> None:
    """The tables a store must have follow every step: created, dropped and renamed."""
    steps = (
        ("CREATE TABLE a (x)", "CREATE TABLE IF NOT EXISTS b (x)"),
        ("DROP TABLE a", "ALTER TABLE b RENAME TO c", "ALTER TABLE c ADD COLUMN y"),
    )
    assert _tables(steps) == {"c"}
    assert {"runs", "ledger", "inbox", "spindle_schema"} <= _tables(MIGRATIONS)
