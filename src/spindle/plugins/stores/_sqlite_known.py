"""The SQLite store's commits of runs it knows: no reads, the checks folded into the writes.

A store that wrote a run's last commit knows what the run's row and ledger
head hold now (:class:`Known`: the run's number, its indexed columns, event
counter, record count and last hash). Its next commit need not read them
back: its first write carries every check the reads would have made in its
``WHERE`` clause -- the lease token (fencing), the row still holding what
this store wrote (no other writer changed it), and the ledger head still
being where the new records continue from -- so it matches no row unless all
hold. Then nothing was written, and the commit takes the full path of
``_sqlite_commit``, which reads the row and the ledger, raises the error for
what is wrong, or writes and learns the run afresh.

So what the store keeps is a hint, never a source of truth: a stale one
(another process took the lease over, or edited the file) costs one failed
statement, not a wrong write. It is dropped whenever a commit of the run
fails (its writes were rolled back, so the hint may describe them).

Measured on a 2-core machine (thread CPU time of the statements on the
store's schema): the fenced head UPDATE costs about 1 us more than the plain
one and saves the 4 us read of the lease token and event counter; the run's
end writes its row, release of the lease included, in one UPDATE instead of
two reads and two UPDATEs. A store's commit, in one process with the old
one interleaved: 59 -> 54 us a step, 441 -> 406 us a run of 3 nodes (the
medians). Tried and dropped: one statement for a step (``INSERT ... SELECT
FROM (VALUES record, head) ... ON CONFLICT DO UPDATE``, 16.5 us against 13.4
us for the UPDATE and INSERT it replaces: SQLite materializes a SELECT that
reads the table it inserts into).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from spindle.core.errors import LedgerError, StoreError
from spindle.core.model import RunState, StepRecord
from spindle.core.store import Commit, check_records, event_waits
from spindle.plugins.stores._common import dumps
from spindle.plugins.stores._sqlite_head import INSERT_RECORD, OVER_HEAD, insert_head
from spindle.plugins.stores._sqlite_schema import HEAD_KIND, MAX_RECORDS, SEQ_BITS

__all__ = [
    "CONSUME",
    "EPOCH",
    "INDEXED",
    "RELEASE_QUEUED",
    "Known",
    "Prepared",
    "Unconsumable",
    "known_commit",
    "micros",
    "record_row",
    "step_commit",
    "written_twice",
]

#: The committer's error for an event a commit cannot consume: (conn, event_id, run_id).
Unconsumable = Callable[[sqlite3.Connection, str, str], StoreError]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The run's indexed columns, in the order of ``Prepared.indexed``.
INDEXED = ("status", "wake_at", "wait_keys", "workflow", "parent_run_id", "created_at")

# Events queued for the run under keys it no longer waits on go to any run.
RELEASE_QUEUED = (
    "UPDATE inbox SET run_id = NULL WHERE run_id = ?1 AND consumed_by IS NULL"
    " AND key NOT IN (SELECT event_key FROM waits WHERE run_id = ?1)"
)
CONSUME = (
    "UPDATE inbox SET consumed_by = ?1 WHERE event_id = ?2"
    " AND (consumed_by IS NULL OR consumed_by = ?1) AND (run_id IS NULL OR run_id = ?1)"
)

# A step's first record over the head row (see _sqlite_head), fenced: it matches only
# while the run's row holds our lease token (any, for an unleased commit) and the
# event counter this store last wrote, so the step needs no read of the row first.
_STEP_OVER_HEAD = (
    f"{OVER_HEAD} AND EXISTS (SELECT 1 FROM runs WHERE run_no = ? AND event_seq = ?"
    " AND lease_token = coalesce(?, lease_token))"
)
_STEP_COUNTERS = "UPDATE runs SET updated_at = ?, event_seq = ? WHERE run_no = ?"
_STEP_RELEASE = (
    "UPDATE runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
    " lease_expires_at = NULL WHERE run_no = ? AND lease_token = ?"
)
# A known run's row, rewritten only where it matches what this store wrote last (its
# indexed columns, whatever the commit sets), under our lease, with the ledger head
# where the commit's records continue from and the ledger's last record the one the
# head names (the full path this replaces checked records against the ledger itself,
# so a record removed from its end is refused here too). Only the indexed columns
# that change are set: every indexed column in a SET costs index page writes,
# changed or not.
_KNOWN_WHERE = (
    " WHERE run_no = ? AND lease_token = coalesce(?, lease_token)"
    + "".join(f" AND {name} IS ?" for name in INDEXED)
    + f" AND EXISTS (SELECT 1 FROM ledger WHERE id = ? AND kind = '{HEAD_KIND}'"
    " AND attempt = ? AND record_hash = ?)"
    f" AND (? = 0 OR EXISTS (SELECT 1 FROM ledger WHERE id = ? AND kind <> '{HEAD_KIND}'"
    " AND record_hash = ?))"
)
_RELEASING = ", lease_owner = NULL, lease_host = NULL, lease_pid = NULL, lease_expires_at = NULL"
_RECORD_COLUMNS = (
    "run_id = ?, seq = ?, node_id = ?, kind = ?, status = ?,"
    " idempotency_key = ?, attempt = ?, prev_hash = ?, record_hash = ?, body = ?"
)
# The known path checked the head in the run's UPDATE: the head row is overwritten.
_OVER_HEAD_AT = f"UPDATE ledger SET {_RECORD_COLUMNS} WHERE id = ? AND kind = '{HEAD_KIND}'"
_SET_HEAD = (
    "UPDATE ledger SET attempt = ?, prev_hash = ?, record_hash = ?, body = ?"
    f" WHERE id = ? AND kind = '{HEAD_KIND}'"
)
# The known path's UPDATE statements by (changed indexed columns, light, releasing).
_KNOWN_UPDATES: dict[tuple[tuple[int, ...], bool, bool], str] = {}


def micros(value: datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp loses them far from 1970)."""
    return (value - EPOCH) // timedelta(microseconds=1)


def _wait_rows(run_id: str, state: RunState) -> tuple[str, list[tuple[str, str, float]]]:
    """The ``waits`` rows of ``state`` and a signature that changes when they do."""
    rows = sorted((run_id, key, since.timestamp()) for key, since in event_waits(state).items())
    return (dumps([row[1:] for row in rows]) if rows else ""), rows


def record_row(record: StepRecord) -> list[Any]:
    """A record's ledger row; its id (which needs the run's number) is filled in later."""
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
        record.canonical_body(),
    ]


class Prepared:
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
        # The engine's canonical text of the state, when it hashed it: no second encoding.
        text = commit.state_text
        self.body = dumps(state.to_dict()) if text is None else text
        self.wait_keys: str = ""
        self.waits: list[tuple[str, str, float]] = []
        if state.waits:
            self.wait_keys, self.waits = _wait_rows(state.run_id, state)
        wake = state.wake_at
        # The indexed columns, in INDEXED's order, to see whether any changed.
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


class Known:
    """What this store's last commit of a run left in the file: a hint its next commit checks.

    ``indexed`` are the run's indexed columns (``INDEXED``), ``count`` and ``head``
    its ledger's record count and last hash.
    """

    __slots__ = ("count", "event_seq", "head", "indexed", "run_no")

    def __init__(
        self, run_no: int, indexed: tuple[Any, ...], event_seq: int, count: int, head: str
    ) -> None:
        self.run_no = run_no
        self.indexed = indexed
        self.event_seq = event_seq
        self.count = count
        self.head = head


def written_twice(run_id: str, seq: int) -> LedgerError:
    """The error for records the ledger holds past its head (written without spindle)."""
    return LedgerError(
        f"run {run_id!r}: the ledger already holds a record at seq {seq} or "
        f"after, but its head records {seq} records; the ledger was changed "
        f"outside spindle (check it with: spindle ledger verify {run_id})"
    )


def _continues(commit: Commit) -> tuple[str, int] | None:
    """The ledger's new (last hash, count) once the commit's records are appended after
    the first one's seq and prev_hash, or None if they do not chain among themselves."""
    records = commit.records
    first = records[0]
    try:
        head = check_records(commit.state.run_id, records, first.seq, first.prev_hash)
    except LedgerError:
        return None
    count = first.seq + len(records)
    return None if count > MAX_RECORDS else (head, count)


def _append(
    conn: sqlite3.Connection,
    commit: Commit,
    rows: list[list[Any]],
    base: int,
    count: int,
    head: str,
) -> None:
    """The records after the first (written over the head) and the new head after them."""
    try:
        if len(rows) > 1:
            conn.executemany(INSERT_RECORD, rows[1:])
        insert_head(conn, base, count, (commit.state_digest, head, commit.ledger_key_id or ""))
    except sqlite3.IntegrityError:
        # The head says the ledger ends before these seqs, but it holds one of them:
        # the ledger was written without its head.
        raise written_twice(commit.state.run_id, commit.records[0].seq) from None


def step_commit(
    conn: sqlite3.Connection,
    known: Known,
    prepared: Prepared,
    rows: list[list[Any]],
    unconsumable: Unconsumable,
) -> bool:
    """The counters-only commit of a known run with records: BEGIN, the fenced head
    UPDATE, the head INSERT (and one INSERT per further record), COMMIT.

    Returns False, having written nothing, when a check fails, so the full path
    can find out what is wrong and raise it.
    """
    commit = prepared.commit
    records = commit.records
    first = records[0]
    if len(records) == 1:
        # A step's one record continues the ledger from its own seq and prev_hash (what
        # the fenced UPDATE checks against the head): only its run and the limit remain.
        count = first.seq + 1
        if first.run_id != commit.state.run_id or count > MAX_RECORDS:
            return False
        head = first.record_hash
    else:
        continued = _continues(commit)
        if continued is None:
            return False
        head, count = continued
    run_no = known.run_no
    base = run_no << SEQ_BITS
    for row in rows:
        row[0] = base | row[2]
    over = rows[0]
    fence = (over[0], first.seq, first.prev_hash, run_no, known.event_seq, commit.token)
    if conn.execute(_STEP_OVER_HEAD, (*over[1:], *fence)).rowcount != 1:
        return False
    _append(conn, commit, rows, base, count, head)
    run_id = commit.state.run_id
    if prepared.event_seq != known.event_seq:
        conn.execute(_STEP_COUNTERS, (micros(prepared.updated_at), prepared.event_seq, run_no))
    for event_id in commit.consume_events:
        if conn.execute(CONSUME, (run_id, event_id)).rowcount != 1:
            raise unconsumable(conn, event_id, run_id)
    if commit.release_lease and commit.token is not None:
        conn.execute(_STEP_RELEASE, (run_no, commit.token))
    known.event_seq, known.count, known.head = prepared.event_seq, count, head
    return True


def _known_update(changed: tuple[int, ...], light: bool, releasing: bool) -> str:
    key = (changed, light, releasing)
    sql = _KNOWN_UPDATES.get(key)
    if sql is None:
        sets = "".join(f"{INDEXED[i]} = ?, " for i in changed)
        body = "" if light else "body = ?, "
        release = _RELEASING if releasing else ""
        sql = f"UPDATE runs SET {sets}updated_at = ?, {body}event_seq = ?, head_kept = 1{release}"
        sql = _KNOWN_UPDATES[key] = sql + _KNOWN_WHERE
    return sql


def known_commit(
    conn: sqlite3.Connection,
    known: Known,
    prepared: Prepared,
    rows: list[list[Any]],
    unconsumable: Unconsumable,
    *,
    light: bool,
) -> bool:
    """Any other commit of a known run: BEGIN, one checked UPDATE of the run's row (the
    lease released in it), the ledger writes, COMMIT -- no read first.

    Returns False, having written nothing, when a check fails (see ``step_commit``).
    """
    commit = prepared.commit
    run_id = commit.state.run_id
    if commit.records:
        continued = _continues(commit)
        if continued is None:
            return False
        head, count = continued
        first = commit.records[0]
        start, after = first.seq, first.prev_hash
    else:
        head, count = known.head, known.count
        start, after = count, head
    old = known.indexed
    new = old if light else prepared.indexed
    changed = () if light else tuple(i for i in range(len(INDEXED)) if new[i] != old[i])
    releasing = commit.release_lease and commit.token is not None
    run_no = known.run_no
    base = run_no << SEQ_BITS
    params: list[Any] = [new[i] for i in changed]
    params.append(micros(prepared.updated_at))
    if not light:
        params.append(prepared.body)
    at = base | start
    params += (prepared.event_seq, run_no, commit.token, *old, at, start, after)
    params += (start, at - 1, after)
    if conn.execute(_known_update(changed, light, releasing), params).rowcount != 1:
        return False
    moved = (commit.state_digest, head, commit.ledger_key_id or "")
    if rows:
        for row in rows:
            row[0] = base | row[2]
        over = rows[0]
        conn.execute(_OVER_HEAD_AT, (*over[1:], over[0]))  # the UPDATE checked it is there
        _append(conn, commit, rows, base, count, head)
    else:
        conn.execute(_SET_HEAD, (count, *moved, base | count))
    rewaited = 2 in changed  # wait_keys
    if rewaited:
        conn.execute("DELETE FROM waits WHERE run_id = ?", (run_id,))
        conn.executemany("INSERT INTO waits VALUES (?, ?, ?)", prepared.waits)
    for event_id in commit.consume_events:
        if conn.execute(CONSUME, (run_id, event_id)).rowcount != 1:
            raise unconsumable(conn, event_id, run_id)
    if rewaited:
        conn.execute(RELEASE_QUEUED, (run_id,))
    known.indexed, known.event_seq, known.count, known.head = new, prepared.event_seq, count, head
    return True
