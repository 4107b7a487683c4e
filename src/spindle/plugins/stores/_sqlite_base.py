"""The SQLite store's connections: opening them, the write transaction, reading back.

:class:`~spindle.plugins.stores.sqlite.SQLiteStore` is split in layers so each
module holds one concept: this base owns the connection (opening, the write
transaction, and with group commit the writer thread that does every write,
see ``_sqlite_group``; reading back JSON); ``_sqlite_tables.py`` holds the
tables around runs -- definitions, the inbox, artifacts, audit entries and
handoffs; ``_sqlite_commit.py`` the commit a run's progress goes through, and
``sqlite.py`` reading runs and ledgers, and leases.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from attrs import define, field

from spindle.core.errors import ConfigError, RunNotFound, StoreError
from spindle.core.store import Store, check_durability
from spindle.plugins.stores._common import run_not_found, stored
from spindle.plugins.stores._sqlite_errors import rollback, sqlite_failure
from spindle.plugins.stores._sqlite_group import GroupWriter
from spindle.plugins.stores._sqlite_known import Known
from spindle.plugins.stores._sqlite_open import open_store
from spindle.plugins.stores._sqlite_schema import connect

__all__ = ["GROUP_COMMIT", "SQLiteBase"]

#: The values of the store option ``group_commit``.
GROUP_COMMIT = ("auto", "on", "off")

T = TypeVar("T")


@define
class SQLiteBase(Store):
    """A SQLite file's connections (``SQLiteTables`` adds the side tables, then the commit).

    Args:
        path: the database file (relative paths are taken from the current
            directory when the store is built); created with its directory.
        durability: ``normal`` or ``full``.
        busy_timeout: seconds a write waits for another process's lock.
        group_commit: ``auto``, ``on`` or ``off`` (see ``SQLiteStore``).
    """

    path: str = ""
    busy_timeout: float = 10.0
    group_commit: str = "auto"
    _conn: sqlite3.Connection | None = field(default=None, init=False, repr=False, eq=False)
    # One connection serves every coroutine; the lock keeps a transaction's
    # statements together when a host also calls the store from other threads.
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False, eq=False)
    # run_id -> what this store's last commit of the run left in the file (its number,
    # indexed columns, counters and ledger head), so the next commit needs no read: a
    # hint its statements check (see _sqlite_known), dropped when a commit fails.
    _known: dict[str, Known] = field(factory=dict, init=False, repr=False, eq=False)
    # With group commit: the thread that does every write, on its own connection.
    _group: GroupWriter | None = field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not self.path or self.path == ":memory:":
            raise ConfigError(
                f"SQLite store needs a file path, got {self.path!r}; use "
                "'sqlite:///relative.db' or 'sqlite:////abs/path.db' (or 'memory://')"
            )
        self.path = os.path.abspath(self.path)
        self.url = self.url or f"sqlite:///{self.path}"
        check_durability(self.durability, self.url)
        if self.group_commit not in GROUP_COMMIT:
            raise ConfigError(
                f"store {self.url}: unknown group_commit {self.group_commit!r}; use 'auto' "
                "(on at durability=full, off at normal), 'on' (one writer thread batches "
                "concurrent commits into one transaction) or 'off' (each commit is its own "
                "transaction, written in the caller)"
            )

    @property
    def grouped(self) -> bool:
        """Whether writes go through group commit (``group_commit``, ``auto`` resolved)."""
        if self.group_commit == "auto":
            return self.durability == "full"
        return self.group_commit == "on"

    @property
    def artifacts_dir(self) -> Path:
        """Where artifact content is kept: ``<file>.artifacts`` beside the database."""
        return Path(self.path + ".artifacts")

    async def open(self) -> None:
        """Open the file (creating it and its directory) and create or migrate the schema.

        Raises:
            StoreCorrupt: the file is not a spindle SQLite store or is damaged.
            SchemaTooNew: the file was written by a newer spindle.
        """
        if self._conn is not None:
            return
        path = Path(self.path)
        conn = open_store(path, durability=self.durability, busy_timeout=self.busy_timeout)
        if self.grouped:
            try:
                writer = connect(path, durability=self.durability, busy_timeout=self.busy_timeout)
            except BaseException:
                conn.close()
                raise
            self._group = GroupWriter(writer, self.path)
        self._conn = conn

    async def aclose(self) -> None:
        """Write what is queued, then close the connections (the store can be opened again)."""
        group = self._group
        if group is not None:
            await group.aclose()  # writes refused from here on; those queued are written
            self._group = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise StoreError(
                f"SQLite store {self.path} is not open; call 'await store.open()' or use "
                "'async with store:'"
            )
        return conn

    @contextlib.contextmanager
    def _write(self, run_id: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's write lock from the start.

        Any failure rolls it back; a SQLite one is raised as the spindle error
        for it (see ``_sqlite_errors``), saying how ``run_id`` continues.
        """
        conn = self._db()
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
            except sqlite3.Error as exc:
                raise self._failure(exc, run_id=run_id) from exc

    async def _transact(
        self, work: Callable[[sqlite3.Connection], T], run_id: str | None = None
    ) -> T:
        """Run ``work`` in a write transaction: here, or in the next group-commit batch.

        Returns once the transaction is committed (durably, as ``durability`` says),
        with what ``work`` returned; an error rolls ``work`` back and is raised
        (a SQLite one as the spindle error for it, like ``_write``).
        """
        group = self._group
        if group is None:
            with self._write(run_id) as conn:
                return work(conn)
        result: T = await group.submit(work, lambda exc: self._failure(exc, run_id=run_id))
        return result

    async def _execute(self, sql: str, params: Any, run_id: str | None = None) -> None:
        """One statement in its own write transaction (see ``_transact``)."""

        def execute(conn: sqlite3.Connection) -> None:
            conn.execute(sql, params)

        await self._transact(execute, run_id)

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        conn = self._db()
        with self._lock:
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._failure(exc, writing=False) from exc

    def _failure(
        self,
        exc: sqlite3.Error,
        *,
        writing: bool = True,
        run_id: str | None = None,
        creating: bool = False,
    ) -> StoreError:
        """The spindle error for a SQLite failure on this store's file."""
        return sqlite_failure(
            exc,
            self.path,
            writing=writing,
            busy_timeout=self.busy_timeout,
            run_id=run_id,
            creating=creating,
        )

    def _structure(self, body: str, cls: type[T], what: str) -> T:
        return stored(body, cls, what, f"SQLite store {self.path}", "file")

    def _missing(self, run_id: str) -> RunNotFound:
        return run_not_found(run_id, f"SQLite store {self.path}")

    def _must_exist(self, conn: sqlite3.Connection, run_id: str) -> None:
        """Raise ``RunNotFound`` unless the run exists (inside a transaction)."""
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise self._missing(run_id)

    def _check_run(self, run_id: str) -> None:
        """Raise ``RunNotFound`` unless the run exists."""
        if not self._read("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
            raise self._missing(run_id)
