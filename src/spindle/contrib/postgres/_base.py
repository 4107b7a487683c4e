"""The PostgreSQL store's connections: a pool, transactions retried over transient
failures, driver errors turned into spindle's store errors, and the schema check.

Every operation borrows a connection from a ``psycopg_pool.AsyncConnectionPool``
and runs in one transaction. A failure that leaves the outcome known and
nothing written (the server restarting, a dropped connection before the
commit, a serialization conflict or deadlock) is retried with a growing
pause, for up to ``retry_for`` seconds; the pool replaces broken
connections, so a restarted server is reconnected to. A commit whose
connection dropped while it was being committed is checked before it is
retried (see ``PostgresStore.commit``): it is never applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from attrs import define, field
from psycopg_pool import AsyncConnectionPool

from spindle.contrib.postgres._schema import SCHEMA_VERSION, steps_from, version_rows
from spindle.contrib.postgres._text import register
from spindle.core.errors import (
    RunNotFound,
    SchemaTooNew,
    SchemaTooOld,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from spindle.core.store import Store, check_durability
from spindle.plugins.stores._common import run_not_found, stored

__all__ = ["WORK_CHANNEL", "PostgresBase", "redacted"]

#: The LISTEN/NOTIFY channel that wakes workers.
WORK_CHANNEL = "spindle_work"

T = TypeVar("T")
_log = logging.getLogger("spindle.store.postgres")

#: SQLSTATE classes and codes after which nothing was written and the same
#: transaction can simply run again.
_TRANSIENT_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention
_TRANSIENT_CODES = {"40001", "40P01"}  # serialization failure, deadlock


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` left nothing written and the operation may run again."""
    if isinstance(exc, psycopg.OperationalError | psycopg.errors.ConnectionTimeout):
        return True
    state = getattr(exc, "sqlstate", None) or ""
    return state in _TRANSIENT_CODES or state[:2] in _TRANSIENT_CLASSES


@define
class PostgresBase(Store):
    """The pool, the retried transactions and the schema (the tables are added by
    ``PostgresTables``, the commit and leases by ``PostgresStore``).

    Attributes:
        conninfo: what psycopg connects with (the URL minus spindle's own options).
        pool_size: the most connections the store keeps open.
        retry_for: seconds a transient failure is retried before it is raised.
    """

    conninfo: str = ""
    pool_size: int = 10
    retry_for: float = 30.0
    _pool: AsyncConnectionPool | None = field(default=None, init=False, repr=False, eq=False)
    _listener: psycopg.AsyncConnection[Any] | None = field(
        default=None, init=False, repr=False, eq=False
    )

    def __attrs_post_init__(self) -> None:
        check_durability(self.durability, redacted(self.url))

    @property
    def where(self) -> str:
        """How messages name this store."""
        return f"PostgreSQL store {redacted(self.url)}"

    # --- opening -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and check the schema (an empty database gets the current one).

        Raises:
            StoreError: the server cannot be reached (after ``retry_for`` seconds).
            SchemaTooOld: the database needs ``spindle db upgrade``.
            SchemaTooNew: the database was written by a newer spindle.
        """
        await self._open_pool()
        try:
            await self._check_schema(upgrade=False)
        except BaseException:
            await self.aclose()
            raise

    async def _probe(self) -> None:
        """Connect once, retrying transient refusals for ``retry_for`` seconds, so that a
        server that is not there is reported with what the driver said."""
        deadline = time.monotonic() + self.retry_for
        pause = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            except psycopg.Error as exc:
                if time.monotonic() + pause < deadline and transient(exc):
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                raise StoreError(
                    f"{self.where}: cannot connect ({_first_line(exc)}); check that the "
                    "server is running and the URL (host, port, database, user) is right"
                ) from exc
            await conn.close()
            return

    async def _open_pool(self) -> None:
        if self._pool is not None:
            return
        await self._probe()
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max(1, self.pool_size),
            open=False,
            kwargs={"autocommit": True},
            configure=_configure,
            reconnect_timeout=max(self.retry_for, 1.0),
        )
        try:
            await pool.open(wait=True, timeout=max(self.retry_for, 1.0))
        except Exception as exc:
            await pool.close()
            raise StoreError(
                f"{self.where}: cannot connect ({_first_line(exc)}); check that the server "
                "is running and the URL (host, port, database, user) is right"
            ) from exc
        self._pool = pool

    async def wait_for_work(self, timeout: float) -> bool:
        """Wait for a ``NOTIFY`` on the work channel (a run created pending, an event
        delivered, by any process on any machine), or ``timeout`` seconds.

        The listening connection is opened on first use and opened again if the
        server dropped it; while it cannot be, this sleeps, and the worker polls.
        """
        try:
            if self._listener is None or self._listener.closed:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {WORK_CHANNEL}")
                except BaseException:  # cancelled too (a stopping worker): do not leak it
                    await asyncio.shield(conn.close())
                    raise
                self._listener = conn
            async for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error as exc:
            _log.warning("%s: cannot listen for work (%s); polling", self.where, _first_line(exc))
            listener, self._listener = self._listener, None
            if listener is not None:
                await listener.close()
            await asyncio.sleep(timeout)
            return False

    async def aclose(self) -> None:
        """Close the pool (what is committed stays committed)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def upgrade(self) -> tuple[int | None, int | None]:
        """Bring the schema to this version (``spindle db upgrade``): ``(before, after)``.

        Concurrent upgrades (and stores opening meanwhile) wait for each other on an
        advisory lock, so each migration runs once.
        """
        await self._open_pool()
        return await self._check_schema(upgrade=True)

    async def schema_version(self) -> int | None:
        """The database's schema version (0: no spindle tables yet)."""
        await self._open_pool()
        return await self._run(_read_version)

    async def _check_schema(self, *, upgrade: bool) -> tuple[int, int]:
        async def check(conn: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
            # One migrator at a time: the others wait here, then see the new version.
            await conn.execute("SELECT pg_advisory_xact_lock(7301112)")
            before = await _read_version(conn)
            if before > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.where} has schema version {before}, newer than this spindle "
                    f"reads ({SCHEMA_VERSION}); upgrade spindle on this machine"
                )
            if before and before < SCHEMA_VERSION and not upgrade:
                raise SchemaTooOld(
                    f"{self.where} has schema version {before}; this spindle needs "
                    f"{SCHEMA_VERSION}. Run: spindle db upgrade --store '{redacted(self.url)}' "
                    "(once, from one machine; workers on older spindles must stop first)"
                )
            for number, statements in steps_from(before):
                for sql in statements:
                    await conn.execute(sql)
                if number == 1:
                    await conn.execute("INSERT INTO spindle_schema (version) VALUES (1)")
                else:
                    await conn.execute("UPDATE spindle_schema SET version = %s", (number,))
                _log.info("%s: schema version %d", self.where, number)
            return before, SCHEMA_VERSION

        return await self._run(check)

    # --- running transactions ------------------------------------------------------------

    async def _run(
        self,
        work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
        *,
        run_id: str | None = None,
        retry: bool = True,
    ) -> T:
        """``work(conn)`` in one transaction, retried over transient failures."""
        if self._pool is None:
            raise StoreError(f"{self.where} is not open; use 'async with store:' or open()")
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    return await work(conn)
            except psycopg.Error as exc:
                if retry and transient(exc) and time.monotonic() < deadline:
                    _log.warning("%s: %s; retrying", self.where, _first_line(exc))
                    await asyncio.sleep(pause * (1 + random.random()))
                    pause = min(pause * 2, 2.0)
                    continue
                raise self._failure(exc, run_id) from exc
            except Exception as exc:
                if "PoolTimeout" in type(exc).__name__ and time.monotonic() < deadline:
                    await asyncio.sleep(pause)
                    continue
                if "PoolTimeout" in type(exc).__name__ or "PoolClosed" in type(exc).__name__:
                    raise StoreError(
                        f"{self.where}: no connection to the server ({_first_line(exc)}); "
                        "check that it is running"
                    ) from exc
                raise

    def _failure(self, exc: psycopg.Error, run_id: str | None) -> StoreError:
        """The spindle error for a driver error (what was being written was not)."""
        state = getattr(exc, "sqlstate", None) or ""
        about = f" (run {run_id!r})" if run_id else ""
        text = _first_line(exc)
        if state == "53100":
            return StoreFull(f"{self.where}{about}: the server's disk is full ({text})")
        if state == "25006" or state.startswith("42501"):
            return StoreReadOnly(
                f"{self.where}{about}: the database refuses writes ({text}); check the "
                "user's privileges and that the server is not a read-only replica"
            )
        if state in ("55P03", "57014"):
            return StoreBusy(f"{self.where}{about}: timed out waiting for a lock ({text})")
        if transient(exc):
            return StoreError(
                f"{self.where}{about}: the server is unreachable ({text}); retried for "
                f"{self.retry_for:g}s. Nothing was lost: resume the run once it is back"
            )
        if state.startswith("42"):
            return StoreCorrupt(
                f"{self.where}{about}: the database does not hold spindle's tables as this "
                f"version expects ({text}); run: spindle db upgrade"
            )
        return StoreError(f"{self.where}{about}: {text}")

    def _structure(self, body: str, cls: type[T], what: str) -> T:
        return stored(body, cls, what, self.where, "database")

    def _missing(self, run_id: str) -> RunNotFound:
        return run_not_found(run_id, self.where)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    register(conn)


async def _read_version(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT to_regclass('spindle_schema') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT version FROM spindle_schema")
    return version_rows(list(await cur.fetchall()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
