"""The SQLite store's commit: the one transaction a run's progress goes through.

A commit writes the run's row, its new ledger records, its open waits and
the inbox events it consumed, in one transaction under the file's write
lock, with the run's ledger head (count, last hash, state digest, key id).
A commit of a run this store committed last reads nothing first: its
checks are folded into its writes (``_sqlite_known``). This module holds the
commit's entry point and the full path, for a run the store does not know
(or whose folded checks failed), which reads the run's row and the ledger's
tail, raises what is wrong, or writes and learns the run. The statements are
shaped so that a commit rewrites as few rows and index pages as possible
(their comments say how).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from attrs import define

from spindle.core.errors import LedgerError, StoreError
from spindle.core.model import StepRecord
from spindle.core.store import (
    Commit,
    check_records,
    lease_lost,
    queued_elsewhere,
    run_exists,
    unconsumable,
)
from spindle.plugins.stores._sqlite_cache import SQLiteCache
from spindle.plugins.stores._sqlite_errors import transact
from spindle.plugins.stores._sqlite_head import append_full
from spindle.plugins.stores._sqlite_known import (
    CONSUME,
    INDEXED,
    RELEASE_QUEUED,
    Known,
    Prepared,
    known_commit,
    micros,
    record_row,
    step_commit,
)
from spindle.plugins.stores._sqlite_schema import HEAD_KIND, MAX_RECORDS, SEQ_BITS

__all__ = ["KNOWN_RUNS", "SQLiteCommitter", "ledger_tail"]

#: The most runs whose last commit a store keeps for the next (see ``_learn``).
KNOWN_RUNS = 4096


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
_SET_QUEUE = (
    "UPDATE runs SET queue_name = ?, queue_priority = ?, queue_partition = ? WHERE run_no = ?"
)
# A run this store committed last is written without reads (_sqlite_known); the
# statements below are the full path, for a run it does not know (or whose checks
# failed there): it reads the run's row and the ledger's tail, raises what is wrong,
# and learns the run.
# The full path's updates also mark the run as keeping a head (a run written before
# version 3 gets its first one then).
_UPDATE_LIGHT = "UPDATE runs SET updated_at = ?, event_seq = ?, head_kept = 1 WHERE run_id = ?"
_RELEASE = (
    "UPDATE runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
    " lease_expires_at = NULL WHERE run_id = ? AND lease_token = ?"
)
# The full path's UPDATE of the row by the indexed columns that changed (INDEXED
# positions): every indexed column in a SET costs index page writes, changed or
# not, and most commits change neither the status nor a timer.
_FULL_UPDATES: dict[tuple[int, ...], str] = {}


def _full_update(changed: tuple[int, ...]) -> str:
    sql = _FULL_UPDATES.get(changed)
    if sql is None:
        sets = "".join(f"{INDEXED[i]} = ?, " for i in changed)
        sql = _FULL_UPDATES[changed] = (
            f"UPDATE runs SET {sets}updated_at = ?, body = ?, event_seq = ?, head_kept = 1"
            " WHERE run_id = ?"
        )
    return sql


def ledger_tail(conn: sqlite3.Connection, run_no: int) -> tuple[int, str]:
    """``(record count, last record_hash)`` of a run's ledger, from its last key."""
    base = run_no << SEQ_BITS
    row = conn.execute(_LEDGER_TAIL, (base, base + (1 << SEQ_BITS))).fetchone()
    return (0, "") if row is None else (row[0] + 1, row[1])


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
class SQLiteCommitter(SQLiteCache):
    """The SQLite store's commit (the connection is ``SQLiteBase``, the rest ``SQLiteStore``)."""

    async def commit(self, commit: Commit) -> None:
        """Write the run's state, its new ledger records and consumed events in one transaction.

        A run this store committed last (the common case: every commit of a
        drive after its first) is written without reading anything first
        (``_sqlite_known``): a step is the first record written over the run's
        head row, fenced by the lease token and the head in its ``WHERE``, and
        an INSERT of the new head; any other commit is one checked UPDATE of
        the run's row and the same ledger writes. A check that fails there
        wrote nothing, and the full path reads the row and the ledger's tail,
        raises what is wrong or writes. Either way only the indexed columns
        that changed are set. With group commit the transaction is the writer
        thread's next batch.

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
            prepared = Prepared(commit, light)
            records = commit.records
            # A step's one record without a comprehension's call.
            rows = [record_row(records[0])] if len(records) == 1 else list(map(record_row, records))
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
                lambda: self._known.pop(run_id, None),
            )
            return
        conn = self._conn or self._db()
        # Not ``with self._write()``: that generator-based context manager costs
        # about 2% of a commit.
        with self._lock:
            try:
                transact(conn, lambda conn: self._apply(conn, prepared, rows, light))
            except BaseException as exc:
                # What the store knew of the run may describe the writes rolled back.
                self._known.pop(run_id, None)
                if isinstance(exc, sqlite3.Error):
                    raise self._failure(exc, run_id=run_id, creating=commit.create) from exc
                raise

    def _apply(
        self, conn: sqlite3.Connection, prepared: Prepared, rows: list[list[Any]], light: bool
    ) -> None:
        """The commit's statements, inside a write transaction (possibly shared with others)."""
        commit = prepared.commit
        run_id = commit.state.run_id
        known = self._known.get(run_id)
        if known is not None and not commit.create:
            if light and rows:
                done = step_commit(conn, known, prepared, rows, self._unconsumable)
            else:
                done = known_commit(conn, known, prepared, rows, self._unconsumable, light=light)
            if done:
                if commit.release_lease:
                    del self._known[run_id]  # see _learn
                return
            del self._known[run_id]  # it was stale: the full path learns the run afresh
        records = commit.records
        if commit.create:
            # No read first: the INSERT below fails on the unique run_id if it is taken.
            row = None
            if commit.token is not None:
                # Refused either way; a run that exists is said first, as other stores do.
                if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                    raise run_exists(run_id, f"SQLite store {self.path}")
                raise lease_lost(run_id, commit.token, 0, new=True)
            run_no, count, head = 0, 0, ""
            old: tuple[Any, ...] = ()
        else:
            row = conn.execute(_RUN_HEAD, (run_id,)).fetchone()
            if row is None:
                raise self._missing(run_id)
            run_no, token = row[:2]
            old = row[2:]
            if commit.token is not None and commit.token != token:
                raise lease_lost(run_id, commit.token, token)
            count, head = ledger_tail(conn, run_no)
        if records and not commit.create:
            head, count = _continued(run_id, records, count, head)
        updated = micros(prepared.updated_at)
        if light:
            indexed = old  # unchanged
            conn.execute(_UPDATE_LIGHT, (updated, prepared.event_seq, run_id))
        else:
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
                spot = commit.state.queue
                if spot is not None:  # a queued run: claims read these columns
                    conn.execute(_SET_QUEUE, (spot.name, spot.priority, spot.partition, run_no))
            else:
                changed = tuple(i for i, value in enumerate(indexed) if value != old[i])
                conn.execute(_full_update(changed), (*(indexed[i] for i in changed), *tail))
        moved = (commit.state_digest, head, commit.ledger_key_id or "")
        append_full(conn, run_no, rows, count, moved, fresh=row is None)
        rewaited = indexed[2] != (old[2] if old else "")  # wait_keys (INDEXED[2])
        if rewaited:
            conn.execute("DELETE FROM waits WHERE run_id = ?", (run_id,))
            conn.executemany("INSERT INTO waits VALUES (?, ?, ?)", prepared.waits)
        for event_id in commit.consume_events:
            if conn.execute(CONSUME, (run_id, event_id)).rowcount != 1:
                raise self._unconsumable(conn, event_id, run_id)
        if rewaited:
            conn.execute(RELEASE_QUEUED, (run_id,))
        if commit.release_lease and commit.token is not None:
            conn.execute(_RELEASE, (run_id, commit.token))
        if not commit.release_lease:
            self._learn(run_id, Known(run_no, indexed, prepared.event_seq, count, head))

    def _learn(self, run_id: str, known: Known) -> None:
        """Keep what a commit left of a run for its next commit.

        Only while the run is being driven: a drive's last commit releases its
        lease and forgets the run (the next drive, if any, reads it once), and at
        most ``KNOWN_RUNS`` runs are kept (the longest-known dropped first), so a
        long-lived worker's memory does not grow with the runs it has finished.
        """
        runs = self._known
        runs[run_id] = known
        if len(runs) > KNOWN_RUNS:
            del runs[next(iter(runs))]

    def _unconsumable(self, conn: sqlite3.Connection, event_id: str, run_id: str) -> StoreError:
        row = conn.execute("SELECT consumed_by, run_id FROM inbox WHERE event_id = ?", (event_id,))
        found = row.fetchone()
        if found is not None and found[0] is None and found[1] not in (None, run_id):
            return queued_elsewhere(event_id, run_id, found[1])
        where = f"SQLite store {self.path}"
        return unconsumable(event_id, run_id, None if found is None else found[0], where)
