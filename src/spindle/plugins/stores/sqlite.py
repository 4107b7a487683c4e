"""The ``sqlite:///path`` store: the embedded default, one file plus artifacts.

Durability follows the store option: ``normal`` is WAL with
``synchronous=NORMAL`` (a killed process loses nothing), ``full`` fsyncs
every commit (power loss loses nothing). Many processes may share one file:
writes take the write lock up front (``BEGIN IMMEDIATE``) and wait up to
``busy_timeout`` seconds for it, and leases are granted by one conditional
``UPDATE``, so two workers never both hold a run.

Why synchronous calls inside ``async`` methods: a commit is tens of
microseconds of SQLite work, less than handing it to a thread and back
(``asyncio.to_thread`` costs about as much as the commit itself), and the
engine commits on every step. The event loop is blocked only that long, or
for up to ``busy_timeout`` when another process holds the write lock.

That changes when a commit waits for the disk. With group commit (the store
option ``group_commit``: ``on``; ``auto``, the default, is on at
``durability=full`` and off at ``normal``) every write goes to one writer
thread with its own connection, which writes all the writes queued while it
was busy as one transaction, with one fsync for all of them; each caller's
``await`` returns, or raises its own error, once that transaction is
durable (see ``_sqlite_group``). With many runs in flight at
``durability=full`` that turns one fsync a commit into one fsync a batch. At
``normal`` there is no fsync to share, and the thread hop (about 60 us a
commit, each way's wake-up) costs a lone commit more than the commit itself,
while many runs in flight gain nothing measurable, so ``auto`` leaves it off
there. (``benchmarks/group_commit.py`` measures both.)

Artifacts are files named by their digest under ``<file>.artifacts/sha256/``
(written to a temporary name, then renamed, so a reader never sees half a
file); each run's references to them are rows.

The class is built in layers, one concept a module: ``_sqlite_schema`` (the
tables and their migrations), ``_sqlite_base`` (the connections, and the
group-commit writer of ``_sqlite_group``), ``_sqlite_tables`` (the tables
beside runs), ``_sqlite_prune`` (retention), ``_sqlite_commit`` (the commit)
and this module (the URL, reading runs and ledgers, and leases).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

from attrs import define

from spindle.core.errors import ConfigError
from spindle.core.model import MISSING_HEAD, Lease, LedgerHead, RunState, RunStatus, StepRecord
from spindle.core.store import check_aware, from_epoch, lease_expiry
from spindle.plugins.stores._common import parse_options, split_url
from spindle.plugins.stores._sqlite_commit import ledger_tail
from spindle.plugins.stores._sqlite_known import EPOCH
from spindle.plugins.stores._sqlite_schema import (
    HEAD_KIND,
    SCHEMA_VERSION,
    SEQ_BITS,
    schema_version,
)
from spindle.plugins.stores._sqlite_work import SQLiteWork

__all__ = ["SQLiteStore"]


# --- statements reading runs and ledgers, and taking leases (prepared once) ----------

_STEP_COUNT = (
    f"(SELECT COALESCE(MAX(ledger.seq) + 1, 0) FROM ledger"
    f" WHERE ledger.id >= runs.run_no << {SEQ_BITS}"
    f" AND ledger.id < (runs.run_no + 1) << {SEQ_BITS})"
)
_STATE_COLUMNS = (
    f"runs.body, {_STEP_COUNT}, event_seq, updated_at,"
    " head_kept, h.attempt, h.record_hash, h.prev_hash, h.body"
)
# The run's ledger head (schema version 3) is the last head row of its key range:
# normally the one just after its last record (its columns are named in
# _sqlite_schema). Found by reading the range backwards from its end.
_RUNS = (
    "runs LEFT JOIN ledger AS h ON h.id = (SELECT id FROM ledger"
    f" WHERE id >= runs.run_no << {SEQ_BITS} AND id < (runs.run_no + 1) << {SEQ_BITS}"
    f" AND kind = '{HEAD_KIND}' ORDER BY id DESC LIMIT 1)"
)
# A run's records are the key range [run_no << SEQ_BITS, next run_no << SEQ_BITS),
# less its head row. (The kind test also lets find_step use the partial index.)
_RUN_RANGE = (
    f"ledger.id >= runs.run_no << {SEQ_BITS} AND ledger.id < (runs.run_no + 1) << {SEQ_BITS}"
    f" AND ledger.kind <> '{HEAD_KIND}'"
)
_LEDGER = (
    f"SELECT ledger.seq, ledger.body, ledger.prev_hash, ledger.record_hash FROM runs"
    f" JOIN ledger ON {_RUN_RANGE}"
    " WHERE runs.run_id = ? ORDER BY ledger.id"
)
_FIND_STEP = (
    f"SELECT ledger.seq, ledger.body, ledger.prev_hash, ledger.record_hash FROM runs"
    f" JOIN ledger ON {_RUN_RANGE}"
    " WHERE runs.run_id = ? AND ledger.idempotency_key = ? ORDER BY ledger.id DESC LIMIT 1"
)
# Without table statistics the planner prefers runs_status for the timer and
# lease parts, which reads every waiting (running) run; the partial indexes
# read only the due ones, so they are named.
_DUE = """
SELECT run_id FROM (
    SELECT * FROM (SELECT run_id, run_no, created_at AS t FROM runs
        WHERE status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
        ORDER BY created_at LIMIT :limit)
    UNION ALL
    SELECT * FROM (SELECT run_id, run_no, wake_at AS t FROM runs INDEXED BY runs_wake
        WHERE status = 'waiting' AND wake_at <= :now
        AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
        ORDER BY wake_at LIMIT :limit)
    UNION ALL
    SELECT * FROM (SELECT run_id, run_no, lease_expires_at AS t FROM runs INDEXED BY runs_lease
        WHERE status = 'running' AND lease_expires_at <= :now
        ORDER BY lease_expires_at LIMIT :limit)
) ORDER BY t, run_no LIMIT :limit
"""
_ACQUIRE = (
    "UPDATE runs SET lease_owner = :owner, lease_host = :host, lease_pid = :pid,"
    " lease_expires_at = :expires, lease_token = lease_token + 1"
    " WHERE run_id = :run_id AND (lease_owner IS NULL OR lease_expires_at <= :now"
    " OR lease_owner = :owner OR lease_token = :steal)"
)


@define
class SQLiteStore(SQLiteWork, kind="sqlite"):
    """Keeps runs, ledgers, the inbox and artifact references in one SQLite file.

    Args:
        path: the database file (relative paths are taken from the current
            directory when the store is built); created with its directory.
        durability: ``normal`` or ``full`` (see the module docs).
        busy_timeout: seconds a write waits for another process's lock.
        group_commit: ``auto`` (the default: on at ``durability=full``, off at
            ``normal``), ``on`` or ``off``. On, one writer thread writes the
            writes of every run in flight that arrive while it is busy as one
            transaction (one fsync); each caller still returns only once its
            own write is durable, and a write that fails raises in its caller
            alone. Off, each commit is its own transaction, made in the caller.

    Example::

        async with SQLiteStore.from_url("sqlite:///.spindle/spindle.db") as store:
            state = await store.load_run(run_id)
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """Build the store for ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``.

        Query options (``?durability=full&busy_timeout=30&group_commit=on``) are
        accepted; keyword ``options`` override them.

        Raises:
            ConfigError: the URL names no file, has a host, or an unknown option or value.
        """
        rest, query = split_url(url, "sqlite")
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(
                f"store URL {url!r} names no file; use 'sqlite:///relative.db' (from the "
                "current directory) or 'sqlite:////abs/path.db'"
            )
        parsers = {"durability": str, "busy_timeout": float, "group_commit": str}
        parsed = parse_options(url, query, parsers)
        return cls(url=url, path=unquote(rest[1:]), **{**parsed, **options})

    schema_target: ClassVar[int | None] = SCHEMA_VERSION

    async def schema_version(self) -> int | None:
        """The file's schema version, read without migrating it (0: no file or no tables)."""
        return schema_version(Path(self.path))

    # --- runs ----------------------------------------------------------------------------------

    async def load_run(self, run_id: str) -> RunState:
        """Return the run's state. Raises ``RunNotFound``."""
        rows = self._read(
            f"SELECT runs.run_id, {_STATE_COLUMNS} FROM {_RUNS} WHERE runs.run_id = ?", (run_id,)
        )
        if not rows:
            raise self._missing(run_id)
        return self._state(rows[0])

    def _state(self, row: Any) -> RunState:
        run_id, body, count, event_seq, updated, kept, head_count, head_hash, digest, key_id = row
        state = self._structure(body, RunState, f"state of run {run_id!r}")
        # Counters live in columns: the hot path updates them without the JSON.
        state.step_count = count
        state.event_seq = event_seq
        state.updated_at = EPOCH + timedelta(microseconds=updated)
        if head_count is not None:
            state.head = LedgerHead(head_count, head_hash, digest, key_id or None)
        elif kept:  # a head was written, and its row is gone
            state.head = MISSING_HEAD
        # else: last written before schema version 3, no head yet
        return state

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs matching every given filter, newest first (by ``created_at``)."""
        filters = {"status": status, "workflow": workflow, "parent_run_id": parent_run_id}
        where = " AND ".join(
            f"runs.{name} = :{name}" for name, v in filters.items() if v is not None
        )
        sql = (
            f"SELECT runs.run_id, {_STATE_COLUMNS} FROM {_RUNS} {'WHERE ' + where if where else ''}"
            " ORDER BY runs.created_at DESC, runs.run_no DESC LIMIT :limit"
        )
        rows = self._read(sql, {**filters, "limit": -1 if limit is None else limit})
        return [self._state(row) for row in rows]

    async def due_runs(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Runs with work and no live driver, the longest-due first.

        Due means: pending; waiting with a timer due at or before ``now``; or
        running under a lease that expired (its driver crashed). A run whose
        lease is still live is left to its holder.
        """
        rows = self._read(_DUE, {"now": check_aware(now).timestamp(), "limit": limit})
        return [run_id for (run_id,) in rows]

    # --- ledger --------------------------------------------------------------------------------

    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every record of the run in ``seq`` order. Raises ``RunNotFound``."""
        rows = self._read(_LEDGER, (run_id,))
        if not rows:
            self._check_run(run_id)
        what = f"ledger record of run {run_id!r} seq"
        return [self._record(row, f"{what} {row[0]}") for row in rows]

    async def find_step(self, run_id: str, idempotency_key: str) -> StepRecord | None:
        """The latest record of the run with this key (one index probe), or None."""
        rows = self._read(_FIND_STEP, (run_id, idempotency_key))
        if not rows:
            return None
        return self._record(rows[0], f"ledger record of run {run_id!r} seq {rows[0][0]}")

    def _record(self, row: Any, what: str) -> StepRecord:
        # The body is the record's canonical JSON without its hashes (what the
        # hash covers); the hashes are columns.
        _, body, prev_hash, record_hash = row
        record = self._structure(body, StepRecord, what)
        record.prev_hash = prev_hash
        record.record_hash = record_hash
        return record

    async def ledger_head(self, run_id: str) -> tuple[int, str]:
        """``(record count, last record_hash or "")``. Raises ``RunNotFound``."""
        rows = self._read("SELECT run_no FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise self._missing(run_id)
        conn = self._db()
        with self._lock:
            try:
                return ledger_tail(conn, rows[0][0])
            except sqlite3.Error as exc:
                raise self._failure(exc, writing=False) from exc

    # --- leases --------------------------------------------------------------------------------

    async def acquire_lease(
        self,
        run_id: str,
        *,
        owner: str,
        host: str,
        pid: int,
        ttl: float,
        now: datetime,
        steal_token: int | None = None,
    ) -> Lease | None:
        """Take the run's lease with the next fencing token, or return None.

        One conditional UPDATE decides, under the file's write lock, so of
        many processes racing for a run exactly one gets it.

        Raises:
            RunNotFound: no such run.
        """
        expires_at = lease_expiry(now, ttl)
        params = {
            "run_id": run_id,
            "owner": owner,
            "host": host,
            "pid": pid,
            "expires": expires_at.timestamp(),
            "now": now.timestamp(),
            "steal": steal_token,
        }

        def acquire(conn: sqlite3.Connection) -> int | None:
            if conn.execute(_ACQUIRE, params).rowcount != 1:
                self._must_exist(conn, run_id)
                return None
            (token,) = conn.execute(
                "SELECT lease_token FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            return int(token)

        token = await self._transact(acquire, run_id)
        if token is None:
            return None
        return Lease(owner=owner, host=host, pid=pid, expires_at=expires_at, token=token)

    async def renew_lease(
        self, run_id: str, *, owner: str, token: int, ttl: float, now: datetime
    ) -> bool:
        """Extend our lease to ``now + ttl``; False when it is no longer ours."""
        expires = lease_expiry(now, ttl).timestamp()

        def renew(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ?"
                " AND lease_token = ?",
                (expires, run_id, owner, token),
            )
            return cursor.rowcount == 1

        return await self._transact(renew, run_id)

    async def release_lease(self, run_id: str, *, owner: str, token: int) -> None:
        """Give the lease up if it is still ours; the token counter is kept."""
        await self._execute(
            "UPDATE runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
            " lease_expires_at = NULL WHERE run_id = ? AND lease_owner = ? AND lease_token = ?",
            (run_id, owner, token),
            run_id,
        )

    async def get_lease(self, run_id: str) -> Lease | None:
        """The run's current lease, expired or not. Raises ``RunNotFound``."""
        rows = self._read(
            "SELECT lease_owner, lease_host, lease_pid, lease_expires_at, lease_token"
            " FROM runs WHERE run_id = ?",
            (run_id,),
        )
        if not rows:
            raise self._missing(run_id)
        owner, host, pid, expires, token = rows[0]
        if owner is None:
            return None
        return Lease(owner=owner, host=host, pid=pid, expires_at=from_epoch(expires), token=token)
