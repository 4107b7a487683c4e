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

Artifacts are files named by their digest under ``<file>.artifacts/sha256/``
(written to a temporary name, then renamed, so a reader never sees half a
file); each run's references to them are rows.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from attrs import define

from spindle.core.errors import ConfigError, LedgerError, StoreError
from spindle.core.model import Lease, RunState, RunStatus, StepRecord
from spindle.core.store import (
    Commit,
    check_aware,
    check_records,
    event_waits,
    from_epoch,
    lease_expiry,
    lease_lost,
    run_exists,
    unconsumable,
)
from spindle.plugins.stores._common import dumps, parse_options, split_url
from spindle.plugins.stores._sqlite_base import SQLiteBase
from spindle.plugins.stores._sqlite_schema import SEQ_BITS

__all__ = ["SQLiteStore"]


# --- the commit's statements (prepared once, reused from sqlite3's cache) ---------

_RUN_HEAD = (
    "SELECT run_no, lease_token, status, wake_at, wait_keys,"
    " workflow, parent_run_id, created_at FROM runs WHERE run_id = ?"
)
# A run's ledger count and head are not kept in its row (that would rewrite the
# row, and its page, on every step): they are read off the ledger's last key.
_LEDGER_TAIL = (
    "SELECT seq, record_hash FROM ledger WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 1"
)
_STEP_COUNT = (
    f"(SELECT COALESCE(MAX(ledger.seq) + 1, 0) FROM ledger"
    f" WHERE ledger.id >= runs.run_no << {SEQ_BITS}"
    f" AND ledger.id < (runs.run_no + 1) << {SEQ_BITS})"
)
_INSERT_RUN = (
    "INSERT INTO runs (status, wake_at, wait_keys, workflow, parent_run_id, created_at,"
    " updated_at, body, event_seq, run_id, lease_owner, lease_host,"
    " lease_pid, lease_expires_at, lease_token) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
# The hot path (Commit.state_changed is false) writes only ledger rows; the run's
# row changes only when its event counter moved (observers are listening).
_FAST_HEAD = "SELECT lease_token, event_seq FROM runs WHERE run_id = ?"
_PREVIOUS_HASH = "SELECT record_hash FROM ledger WHERE id = ?"
_UPDATE_COUNTERS = "UPDATE runs SET updated_at = ?, event_seq = ? WHERE run_id = ?"
_RELEASE = (
    "UPDATE runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
    " lease_expires_at = NULL WHERE run_id = ? AND lease_token = ?"
)
_STATE_COLUMNS = f"body, {_STEP_COUNT}, event_seq, updated_at"
# Most commits change neither the status nor a timer, so they set only
# unindexed columns: every indexed column in a SET costs index page writes.
_UPDATE_BODY = "UPDATE runs SET updated_at = ?, body = ?, event_seq = ? WHERE run_id = ?"
_UPDATE_ALL = (
    "UPDATE runs SET status = ?, wake_at = ?, wait_keys = ?, workflow = ?, parent_run_id = ?,"
    " created_at = ?, updated_at = ?, body = ?, event_seq = ? WHERE run_id = ?"
)
_INSERT_RECORD = (
    "INSERT INTO ledger (id, run_id, seq, node_id, kind, status, idempotency_key, attempt,"
    " prev_hash, record_hash, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_CONSUME = (
    "UPDATE inbox SET consumed_by = ?1 WHERE event_id = ?2"
    " AND (consumed_by IS NULL OR consumed_by = ?1)"
)
# A run's ledger rows are the key range [run_no << SEQ_BITS, next run_no << SEQ_BITS).
_RUN_RANGE = (
    f"ledger.id >= runs.run_no << {SEQ_BITS} AND ledger.id < (runs.run_no + 1) << {SEQ_BITS}"
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp loses them far from 1970)."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def _tail(conn: sqlite3.Connection, run_no: int) -> tuple[int, str]:
    """``(record count, last record_hash)`` of a run's ledger, from its last key."""
    base = run_no << SEQ_BITS
    row = conn.execute(_LEDGER_TAIL, (base, base + (1 << SEQ_BITS))).fetchone()
    return (0, "") if row is None else (row[0] + 1, row[1])


def _wait_rows(run_id: str, state: RunState) -> tuple[str, list[tuple[str, str, float]]]:
    """The ``waits`` rows of ``state`` and a signature that changes when they do."""
    rows = sorted((run_id, key, since.timestamp()) for key, since in event_waits(state).items())
    return (dumps([row[1:] for row in rows]) if rows else ""), rows


def _record_row(record: StepRecord) -> list[Any]:
    # The id (which needs the run's number) is filled in under the write lock.
    body = record.canonical_body()
    return [
        0,
        record.run_id,
        record.seq,
        record.node_id,
        record.kind,
        record.status,
        record.idempotency_key,
        record.attempt,
        record.prev_hash,
        record.record_hash,
        body,
    ]


@define
class SQLiteStore(SQLiteBase, kind="sqlite"):
    """Keeps runs, ledgers, the inbox and artifact references in one SQLite file.

    Args:
        path: the database file (relative paths are taken from the current
            directory when the store is built); created with its directory.
        durability: ``normal`` or ``full`` (see the module docs).
        busy_timeout: seconds a write waits for another process's lock.

    Example::

        async with SQLiteStore.from_url("sqlite:///.spindle/spindle.db") as store:
            state = await store.load_run(run_id)
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """Build the store for ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``.

        Query options (``?durability=full&busy_timeout=30``) are accepted;
        keyword ``options`` override them.

        Raises:
            ConfigError: the URL names no file, has a host, or an unknown option.
        """
        rest, query = split_url(url, "sqlite")
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(
                f"store URL {url!r} names no file; use 'sqlite:///relative.db' (from the "
                "current directory) or 'sqlite:////abs/path.db'"
            )
        parsed = parse_options(url, query, {"durability": str, "busy_timeout": float})
        return cls(url=url, path=unquote(rest[1:]), **{**parsed, **options})

    # --- runs ----------------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> None:
        """Write the run's state, its new ledger records and consumed events in one transaction.

        The hot path is one indexed read of the run's row (token, ledger
        head, indexed columns), one UPDATE that touches indexes only when an
        indexed column changed, and one INSERT per record.

        Raises:
            LeaseLost: ``commit.token`` is not the run's current lease token.
            LedgerError: the records do not continue the run's ledger.
            RunNotFound: the run does not exist and ``commit.create`` is false.
            StoreError: the run already exists (``create``), or an event to
                consume is unknown or consumed by another run.
        """
        state = commit.state
        run_id = state.run_id
        records = commit.records
        light = not (commit.state_changed or commit.create)
        # Serialize before taking the write lock, to hold it as briefly as possible.
        try:
            body = "" if light else dumps(state.to_dict())
            rows = [_record_row(r) for r in records]
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoreError(
                f"run {run_id!r}: the state or a ledger record is not JSON-serializable ({exc}); "
                "results and outputs must be JSON data (or be stored as artifacts)"
            ) from exc
        wait_keys: str = ""
        waits: list[tuple[str, str, float]] = []
        indexed: tuple[Any, ...] = ()
        if not light:
            wait_keys, waits = _wait_rows(run_id, state) if state.waits else ("", [])
            wake = state.wake_at
            # The indexed columns, in _RUN_HEAD's order, to see whether any changed.
            indexed = (
                state.status,
                None if wake is None else wake.timestamp(),
                wait_keys,
                state.workflow,
                state.parent_run_id,
                state.created_at.timestamp(),
            )
        lease = commit.lease
        if lease is not None and not commit.create:
            raise StoreError(f"run {run_id!r}: Commit.lease is only for creating a run")
        conn = self._conn or self._db()
        # The transaction is spelled out instead of ``with self._write()``: that
        # generator-based context manager costs about 2% of a commit.
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                run_no = self._run_nos.get(run_id) if light and records else None
                if run_no is not None and self._fast_commit(conn, commit, run_no, rows):
                    conn.execute("COMMIT")
                    return
                row = conn.execute(_RUN_HEAD, (run_id,)).fetchone()
                if commit.create:
                    if row is not None:
                        raise run_exists(run_id, f"SQLite store {self.path}")
                    if commit.token is not None:
                        raise lease_lost(run_id, commit.token, 0, new=True)
                    run_no, count, head, old_wait_keys = 0, 0, "", ""
                else:
                    if row is None:
                        raise self._missing(run_id)
                    run_no, token = row[:2]
                    self._run_nos[run_id] = run_no
                    old_wait_keys = row[4]
                    if commit.token is not None and commit.token != token:
                        raise lease_lost(run_id, commit.token, token)
                    count, head = _tail(conn, run_no)
                if records:
                    head = check_records(run_id, records, count, head)
                    count += len(records)
                    if count > 1 << SEQ_BITS:
                        raise LedgerError(
                            f"run {run_id!r}: the ledger cannot hold more than 2**{SEQ_BITS} "
                            "records; continue the work in a new run"
                        )
                updated = _micros(state.updated_at)
                if light:
                    conn.execute(_UPDATE_COUNTERS, (updated, state.event_seq, run_id))
                else:
                    tail = (updated, body, state.event_seq, run_id)
                    if row is None:
                        held = (
                            (None, None, None, None, 0)
                            if lease is None
                            else (
                                lease.owner,
                                lease.host,
                                lease.pid,
                                lease.expires_at.timestamp(),
                                1,
                            )
                        )
                        run_no = conn.execute(_INSERT_RUN, indexed + tail + held).lastrowid or 0
                        self._run_nos[run_id] = run_no
                    elif row[2:] == indexed:
                        conn.execute(_UPDATE_BODY, tail)
                    else:
                        conn.execute(_UPDATE_ALL, indexed + tail)
                if rows:
                    base = run_no << SEQ_BITS
                    for record_row in rows:
                        record_row[0] = base | record_row[2]
                    if len(rows) == 1:
                        conn.execute(_INSERT_RECORD, rows[0])
                    else:
                        conn.executemany(_INSERT_RECORD, rows)
                if not light and wait_keys != old_wait_keys:
                    conn.execute("DELETE FROM waits WHERE run_id = ?", (run_id,))
                    conn.executemany("INSERT INTO waits VALUES (?, ?, ?)", waits)
                for event_id in commit.consume_events:
                    if conn.execute(_CONSUME, (run_id, event_id)).rowcount != 1:
                        raise self._unconsumable(conn, event_id, run_id)
                if commit.release_lease and commit.token is not None:
                    conn.execute(_RELEASE, (run_id, commit.token))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _fast_commit(
        self, conn: sqlite3.Connection, commit: Commit, run_no: int, rows: list[list[Any]]
    ) -> bool:
        """The counters-only commit: ledger rows, and the run's row only if its event
        counter moved.

        Reads instead of writes check that the lease is still ours and that the
        records continue the ledger (a record at their first ``seq`` fails the
        ledger's primary key). Returns False, having written nothing, whenever
        something is off, so the full path can find out what and raise it.
        """
        records = commit.records
        state = commit.state
        run_id = state.run_id
        first = records[0]
        found = conn.execute(_FAST_HEAD, (run_id,)).fetchone()
        if found is None:
            return False
        token, event_seq = found
        if commit.token is not None and commit.token != token:
            return False
        base = run_no << SEQ_BITS
        if first.seq == 0:
            if first.prev_hash:
                return False
        else:
            before = conn.execute(_PREVIOUS_HASH, (base | (first.seq - 1),)).fetchone()
            if before is None or before[0] != first.prev_hash:
                return False
        try:
            check_records(run_id, records, first.seq, first.prev_hash)
        except LedgerError:
            return False
        if first.seq + len(records) > 1 << SEQ_BITS:
            return False
        for record_row in rows:
            record_row[0] = base | record_row[2]
        try:
            if len(rows) == 1:
                conn.execute(_INSERT_RECORD, rows[0])
            else:
                conn.executemany(_INSERT_RECORD, rows)
        except sqlite3.IntegrityError:
            return False  # a record already holds one of these seqs
        if state.event_seq != event_seq:
            conn.execute(_UPDATE_COUNTERS, (_micros(state.updated_at), state.event_seq, run_id))
        for event_id in commit.consume_events:
            if conn.execute(_CONSUME, (run_id, event_id)).rowcount != 1:
                raise self._unconsumable(conn, event_id, run_id)
        if commit.release_lease and commit.token is not None:
            conn.execute(_RELEASE, (run_id, commit.token))
        return True

    def _unconsumable(self, conn: sqlite3.Connection, event_id: str, run_id: str) -> StoreError:
        row = conn.execute("SELECT consumed_by FROM inbox WHERE event_id = ?", (event_id,))
        found = row.fetchone()
        where = f"SQLite store {self.path}"
        return unconsumable(event_id, run_id, None if found is None else found[0], where)

    async def load_run(self, run_id: str) -> RunState:
        """Return the run's state. Raises ``RunNotFound``."""
        rows = self._read(f"SELECT run_id, {_STATE_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise self._missing(run_id)
        return self._state(rows[0])

    def _state(self, row: Any) -> RunState:
        run_id, body, count, event_seq, updated = row
        state = self._structure(body, RunState, f"state of run {run_id!r}")
        # Counters live in columns: the hot path updates them without the JSON.
        state.step_count = count
        state.event_seq = event_seq
        state.updated_at = _EPOCH + timedelta(microseconds=updated)
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
        where = " AND ".join(f"{name} = :{name}" for name, v in filters.items() if v is not None)
        sql = (
            f"SELECT run_id, {_STATE_COLUMNS} FROM runs {'WHERE ' + where if where else ''}"
            " ORDER BY created_at DESC, run_no DESC LIMIT :limit"
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
            return _tail(conn, rows[0][0])

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
        with self._write() as conn:
            if conn.execute(_ACQUIRE, params).rowcount != 1:
                self._must_exist(conn, run_id)
                return None
            (token,) = conn.execute(
                "SELECT lease_token FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return Lease(owner=owner, host=host, pid=pid, expires_at=expires_at, token=token)

    async def renew_lease(
        self, run_id: str, *, owner: str, token: int, ttl: float, now: datetime
    ) -> bool:
        """Extend our lease to ``now + ttl``; False when it is no longer ours."""
        expires = lease_expiry(now, ttl).timestamp()
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ?"
                " AND lease_token = ?",
                (expires, run_id, owner, token),
            )
            return cursor.rowcount == 1

    async def release_lease(self, run_id: str, *, owner: str, token: int) -> None:
        """Give the lease up if it is still ours; the token counter is kept."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
                " lease_expires_at = NULL WHERE run_id = ? AND lease_owner = ?"
                " AND lease_token = ?",
                (run_id, owner, token),
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
