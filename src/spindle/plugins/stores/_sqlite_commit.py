"""The SQLite store's commit: the one transaction a run's progress goes through.

A commit writes the run's row, its new ledger records, its open waits and
the inbox events it consumed, in one transaction under the file's write
lock, with the run's ledger head (count, last hash, state digest, key id).
Most commits are the hot path (``Commit.state_changed`` is false: only
counters moved), which writes ledger rows and the head and checks the rest
with reads; the statements are shaped so that a step rewrites as few rows
and index pages as possible (their comments say how).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import define

from spindle.core.errors import LedgerError, StoreError
from spindle.core.model import RunState, StepRecord
from spindle.core.store import (
    Commit,
    check_records,
    event_waits,
    lease_lost,
    queued_elsewhere,
    run_exists,
    unconsumable,
)
from spindle.plugins.stores._common import dumps
from spindle.plugins.stores._sqlite_errors import rollback
from spindle.plugins.stores._sqlite_head import INSERT_RECORD, OVER_HEAD, append_full, insert_head
from spindle.plugins.stores._sqlite_schema import HEAD_KIND, MAX_RECORDS, SEQ_BITS
from spindle.plugins.stores._sqlite_tables import SQLiteTables

__all__ = ["EPOCH", "SQLiteCommitter", "ledger_tail"]


# --- the commit's statements (prepared once, reused from sqlite3's cache) ---------

_RUN_HEAD = (
    "SELECT run_no, lease_token, status, wake_at, wait_keys,"
    " workflow, parent_run_id, created_at FROM runs WHERE run_id = ?"
)
# The full path checks new records against the ledger itself, read off its last
# record's key (the head is what the ledger should be; the two agree unless edited).
_LEDGER_TAIL = (
    "SELECT seq, record_hash FROM ledger WHERE id >= ? AND id < ?"
    f" AND kind <> '{HEAD_KIND}' ORDER BY id DESC LIMIT 1"
)
_INSERT_RUN = (
    "INSERT INTO runs (status, wake_at, wait_keys, workflow, parent_run_id, created_at,"
    " updated_at, body, event_seq, run_id, lease_owner, lease_host,"
    " lease_pid, lease_expires_at, lease_token, head_kept) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)"
)
# The hot path (Commit.state_changed is false) writes ledger rows and the head
# (see _sqlite_head); the run's row changes only when its event counter moved
# (observers are listening). Its checks: one read of the lease token and event
# counter, and the first new record written over the head row, which matches only
# while the head is where the records continue from (a run with no head row yet
# takes the full path, which writes one).
_FAST_RUN = "SELECT lease_token, event_seq FROM runs WHERE run_id = ?"
_UPDATE_COUNTERS = "UPDATE runs SET updated_at = ?, event_seq = ? WHERE run_id = ?"
# The full path's updates also mark the run as keeping a head (a run written before
# version 3 gets its first one then).
_UPDATE_LIGHT = "UPDATE runs SET updated_at = ?, event_seq = ?, head_kept = 1 WHERE run_id = ?"
_RELEASE = (
    "UPDATE runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
    " lease_expires_at = NULL WHERE run_id = ? AND lease_token = ?"
)
# Most commits change neither the status nor a timer, so they set only
# unindexed columns: every indexed column in a SET costs index page writes.
_UPDATE_BODY = (
    "UPDATE runs SET updated_at = ?, body = ?, event_seq = ?, head_kept = 1 WHERE run_id = ?"
)
_UPDATE_ALL = (
    "UPDATE runs SET status = ?, wake_at = ?, wait_keys = ?, workflow = ?, parent_run_id = ?,"
    " created_at = ?, updated_at = ?, body = ?, event_seq = ?, head_kept = 1 WHERE run_id = ?"
)
# Events queued for the run under keys it no longer waits on go to any run.
_RELEASE_QUEUED = (
    "UPDATE inbox SET run_id = NULL WHERE run_id = ?1 AND consumed_by IS NULL"
    " AND key NOT IN (SELECT event_key FROM waits WHERE run_id = ?1)"
)
_CONSUME = (
    "UPDATE inbox SET consumed_by = ?1 WHERE event_id = ?2"
    " AND (consumed_by IS NULL OR consumed_by = ?1) AND (run_id IS NULL OR run_id = ?1)"
)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp loses them far from 1970)."""
    return (value - EPOCH) // timedelta(microseconds=1)


def ledger_tail(conn: sqlite3.Connection, run_no: int) -> tuple[int, str]:
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


class _Prepared:
    """A commit made ready outside the write lock: its JSON, and what it reads of the state.

    With group commit it is written later, by the writer thread, while the run's
    state object may be changing again in the event loop: so everything the
    transaction needs from the state is taken here, when ``commit`` is called.
    """

    __slots__ = (
        "body",
        "commit",
        "event_seq",
        "held",
        "indexed",
        "updated_at",
        "wait_keys",
        "waits",
    )

    def __init__(self, commit: Commit, light: bool) -> None:
        state = commit.state
        self.commit = commit
        self.updated_at = state.updated_at  # a datetime: immutable, so this is a snapshot
        self.event_seq = state.event_seq
        if light:
            return  # the counters are all a light commit writes of the state
        self.body = dumps(state.to_dict())
        self.wait_keys: str = ""
        self.waits: list[tuple[str, str, float]] = []
        if state.waits:
            self.wait_keys, self.waits = _wait_rows(state.run_id, state)
        wake = state.wake_at
        # The indexed columns, in _RUN_HEAD's order, to see whether any changed.
        self.indexed: tuple[Any, ...] = (
            state.status,
            None if wake is None else wake.timestamp(),
            self.wait_keys,
            state.workflow,
            state.parent_run_id,
            state.created_at.timestamp(),
        )
        lease = commit.lease
        self.held: tuple[Any, ...] = (
            (None, None, None, None, 0)
            if lease is None
            else (lease.owner, lease.host, lease.pid, lease.expires_at.timestamp(), 1)
        )


def _continued(
    run_id: str, records: Sequence[StepRecord], count: int, head: str
) -> tuple[str, int]:
    """The ledger's new head hash and count once ``records`` continue it.

    Raises:
        LedgerError: they do not continue it, or it would grow past its limit.
    """
    head = check_records(run_id, records, count, head)
    count += len(records)
    if count > MAX_RECORDS:
        raise LedgerError(
            f"run {run_id!r}: the ledger cannot hold more than "
            f"2**{SEQ_BITS} - 1 records; continue the work in a new run"
        )
    return head, count


@define
class SQLiteCommitter(SQLiteTables):
    """The SQLite store's commit (the connection is ``SQLiteBase``, the rest ``SQLiteStore``)."""

    async def commit(self, commit: Commit) -> None:
        """Write the run's state, its new ledger records and consumed events in one transaction.

        The hot path is one indexed read of the run's row (token, event
        counter), the first record written over the run's head row (an UPDATE
        that matches only while the head is where the records continue from),
        an INSERT per further record and one of the new head after them; the
        full path reads the row first, touches indexes only when an indexed
        column changed, and writes the head the same way. With group commit the
        transaction is the writer thread's next batch (one savepoint in it).

        Raises:
            LeaseLost: ``commit.token`` is not the run's current lease token.
            LedgerError: the records do not continue the run's ledger.
            RunNotFound: the run does not exist and ``commit.create`` is false.
            StoreError: the run already exists (``create``), or an event to
                consume is unknown or consumed by another run.
        """
        run_id = commit.state.run_id
        light = not (commit.state_changed or commit.create)
        # Serialize before taking the write lock, to hold it as briefly as possible.
        try:
            prepared = _Prepared(commit, light)
            rows = [_record_row(r) for r in commit.records]
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoreError(
                f"run {run_id!r}: the state or a ledger record is not JSON-serializable ({exc}); "
                "results and outputs must be JSON data (or be stored as artifacts)"
            ) from exc
        if commit.lease is not None and not commit.create:
            raise StoreError(f"run {run_id!r}: Commit.lease is only for creating a run")
        group = self._group
        if group is not None:
            await group.submit(
                lambda conn: self._apply(conn, prepared, rows, light),
                lambda exc: self._failure(exc, run_id=run_id, creating=commit.create),
                (lambda: self._run_nos.pop(run_id, None)) if commit.create else None,
            )
            return
        conn = self._conn or self._db()
        # The transaction is spelled out instead of ``with self._write()``: that
        # generator-based context manager costs about 2% of a commit.
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._apply(conn, prepared, rows, light)
                conn.execute("COMMIT")
            except BaseException as exc:
                rollback(conn)
                if commit.create:
                    self._run_nos.pop(run_id, None)  # its number was rolled back too
                if isinstance(exc, sqlite3.Error):
                    raise self._failure(exc, run_id=run_id, creating=commit.create) from exc
                raise

    def _apply(
        self, conn: sqlite3.Connection, prepared: _Prepared, rows: list[list[Any]], light: bool
    ) -> None:
        """The commit's statements, inside a write transaction (or a savepoint of one)."""
        commit = prepared.commit
        run_id = commit.state.run_id
        records = commit.records
        run_no = self._run_nos.get(run_id) if light and records else None
        if run_no is not None and self._fast_commit(conn, prepared, run_no, rows):
            return
        if commit.create:
            # No read first: the INSERT below fails on the unique run_id if it is taken.
            row = None
            if commit.token is not None:
                raise lease_lost(run_id, commit.token, 0, new=True)
            run_no, count, head, old_wait_keys = 0, 0, "", ""
        else:
            row = conn.execute(_RUN_HEAD, (run_id,)).fetchone()
            if row is None:
                raise self._missing(run_id)
            run_no, token = row[:2]
            self._run_nos[run_id] = run_no
            old_wait_keys = row[4]
            if commit.token is not None and commit.token != token:
                raise lease_lost(run_id, commit.token, token)
            count, head = ledger_tail(conn, run_no)
        if records and not commit.create:
            head, count = _continued(run_id, records, count, head)
        updated = _micros(prepared.updated_at)
        if light:
            wait_keys = old_wait_keys  # unchanged
            conn.execute(_UPDATE_LIGHT, (updated, prepared.event_seq, run_id))
        else:
            wait_keys = prepared.wait_keys
            tail = (updated, prepared.body, prepared.event_seq, run_id)
            indexed = prepared.indexed
            if row is None:
                try:
                    inserted = conn.execute(_INSERT_RUN, (*indexed, *tail, *prepared.held))
                except sqlite3.IntegrityError as exc:
                    if "runs.run_id" not in str(exc):
                        raise
                    raise run_exists(run_id, f"SQLite store {self.path}") from None
                if records:  # checked once the run is known to be new, as a read would
                    head, count = _continued(run_id, records, count, head)
                run_no = inserted.lastrowid or 0
                self._run_nos[run_id] = run_no
            elif row[2:] == indexed:
                conn.execute(_UPDATE_BODY, tail)
            else:
                conn.execute(_UPDATE_ALL, indexed + tail)
        moved = (commit.state_digest, head, commit.ledger_key_id or "")
        append_full(conn, run_no, rows, count, moved, fresh=row is None)
        if wait_keys != old_wait_keys:
            conn.execute("DELETE FROM waits WHERE run_id = ?", (run_id,))
            conn.executemany("INSERT INTO waits VALUES (?, ?, ?)", prepared.waits)
        for event_id in commit.consume_events:
            if conn.execute(_CONSUME, (run_id, event_id)).rowcount != 1:
                raise self._unconsumable(conn, event_id, run_id)
        if wait_keys != old_wait_keys:
            conn.execute(_RELEASE_QUEUED, (run_id,))
        if commit.release_lease and commit.token is not None:
            conn.execute(_RELEASE, (run_id, commit.token))

    def _fast_commit(
        self, conn: sqlite3.Connection, prepared: _Prepared, run_no: int, rows: list[list[Any]]
    ) -> bool:
        """The counters-only commit: ledger rows, the head, and the run's row only if
        its event counter moved.

        A read checks that the lease is still ours; the head moves only if the
        records continue it (a conditional UPDATE). Returns False, having written
        nothing, whenever something is off, so the full path can find out what
        and raise it.
        """
        commit = prepared.commit
        records = commit.records
        run_id = commit.state.run_id
        first = records[0]
        found = conn.execute(_FAST_RUN, (run_id,)).fetchone()
        if found is None:
            return False
        token, event_seq = found
        if commit.token is not None and commit.token != token:
            return False
        try:
            head = check_records(run_id, records, first.seq, first.prev_hash)
        except LedgerError:
            return False
        count = first.seq + len(records)
        if count > MAX_RECORDS:
            return False
        base = run_no << SEQ_BITS
        for record_row in rows:
            record_row[0] = base | record_row[2]
        over = rows[0]
        if conn.execute(OVER_HEAD, (*over[1:], over[0], first.seq, first.prev_hash)).rowcount != 1:
            return False
        try:
            if len(rows) > 1:
                conn.executemany(INSERT_RECORD, rows[1:])
            insert_head(conn, base, count, (commit.state_digest, head, commit.ledger_key_id or ""))
        except sqlite3.IntegrityError:
            # The head says the ledger ends before these seqs, but it holds one of
            # them: the ledger was written without its head.
            raise LedgerError(
                f"run {run_id!r}: the ledger already holds a record at seq {first.seq} or "
                f"after, but its head records {first.seq} records; the ledger was changed "
                f"outside spindle (check it with: spindle ledger verify {run_id})"
            ) from None
        if prepared.event_seq != event_seq:
            updated = _micros(prepared.updated_at)
            conn.execute(_UPDATE_COUNTERS, (updated, prepared.event_seq, run_id))
        for event_id in commit.consume_events:
            if conn.execute(_CONSUME, (run_id, event_id)).rowcount != 1:
                raise self._unconsumable(conn, event_id, run_id)
        if commit.release_lease and commit.token is not None:
            conn.execute(_RELEASE, (run_id, commit.token))
        return True

    def _unconsumable(self, conn: sqlite3.Connection, event_id: str, run_id: str) -> StoreError:
        row = conn.execute("SELECT consumed_by, run_id FROM inbox WHERE event_id = ?", (event_id,))
        found = row.fetchone()
        if found is not None and found[0] is None and found[1] not in (None, run_id):
            return queued_elsewhere(event_id, run_id, found[1])
        where = f"SQLite store {self.path}"
        return unconsumable(event_id, run_id, None if found is None else found[0], where)
