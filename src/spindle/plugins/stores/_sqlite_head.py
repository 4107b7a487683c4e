"""The SQLite store's ledger head rows: how a commit appends records and moves the head.

Since schema version 3 a run's ledger head is a row of the ledger table at
the key its next record will take, ``run_no << SEQ_BITS | count`` (its
columns are described in ``_sqlite_schema``). A commit writes its first
record over the head row and appends the other records and the new head
after it, so the ledger b-tree only ever grows at the end of the run's key
range and the head shares its page with the records: it costs no page write
of its own. (A separate table of heads cost one more page per commit; a head
at a fixed key after the records made each insert a mid-page one, whose
splits rewrite more pages than an append's.)
"""

from __future__ import annotations

import sqlite3
from typing import Any

from spindle.plugins.stores._sqlite_schema import HEAD_KIND, SEQ_BITS

__all__ = ["INSERT_RECORD", "OVER_HEAD", "append_full", "insert_head"]

INSERT_RECORD = (
    "INSERT INTO ledger (id, run_id, seq, node_id, kind, status, idempotency_key, attempt,"
    " prev_hash, record_hash, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
# A head row: run_id '' and seq -1 (none of the run's records, whatever a query
# filters on), attempt = record count, prev_hash = state digest, body = key id.
# Its idempotency_key is '', and the partial ledger_key index leaves it out.
_INSERT_HEAD = (
    "INSERT INTO ledger (id, run_id, seq, node_id, kind, status, idempotency_key, attempt,"
    f" prev_hash, record_hash, body) VALUES (?, '', -1, '', '{HEAD_KIND}', '', '', ?, ?, ?, ?)"
)
_RECORD_COLUMNS = (
    "run_id = ?, seq = ?, node_id = ?, kind = ?, status = ?,"
    " idempotency_key = ?, attempt = ?, prev_hash = ?, record_hash = ?, body = ?"
)
#: The hot path's first record, written over the head row: it matches only while
#: the head is where the records continue from (its count and last hash).
OVER_HEAD = (
    f"UPDATE ledger SET {_RECORD_COLUMNS}"
    f" WHERE id = ? AND kind = '{HEAD_KIND}' AND attempt = ? AND record_hash = ?"
)
# The full path checked the records against the ledger itself: the head row just
# after the last record is overwritten whatever it says.
_OVER_HEAD_AT = f"UPDATE ledger SET {_RECORD_COLUMNS} WHERE id = ? AND kind = '{HEAD_KIND}'"
_SET_HEAD = (
    "UPDATE ledger SET attempt = ?, prev_hash = ?, record_hash = ?, body = ?"
    f" WHERE id = ? AND kind = '{HEAD_KIND}'"
)
# A head that is not just after the last record (a run's first commit under
# version 3, or a ledger changed outside spindle): the last head row of the range.
_DELETE_HEAD = (
    "DELETE FROM ledger WHERE id = (SELECT id FROM ledger WHERE id >= ? AND id < ?"
    f" AND kind = '{HEAD_KIND}' ORDER BY id DESC LIMIT 1)"
)


def insert_head(
    conn: sqlite3.Connection, base: int, count: int, head: tuple[str, str, str]
) -> None:
    """Write the head ``(state digest, last record hash, key id or "")`` after ``count`` records."""
    conn.execute(_INSERT_HEAD, (base | count, count, *head))


def append_full(
    conn: sqlite3.Connection,
    run_no: int,
    rows: list[list[Any]],
    count: int,
    head: tuple[str, str, str],
    *,
    fresh: bool,
) -> None:
    """The full path's ledger write: ``rows`` (ids filled in here) and the new head
    after ``count`` records, in place of the run's old head (none when ``fresh``)."""
    base = run_no << SEQ_BITS
    for row in rows:
        row[0] = base | row[2]
    if rows:
        first = rows[0]
        if fresh or conn.execute(_OVER_HEAD_AT, (*first[1:], first[0])).rowcount != 1:
            if not fresh:
                conn.execute(_DELETE_HEAD, (base, base + (1 << SEQ_BITS)))
            conn.execute(INSERT_RECORD, first)
        if len(rows) > 1:
            conn.executemany(INSERT_RECORD, rows[1:])
    elif not fresh:
        if conn.execute(_SET_HEAD, (count, *head, base | count)).rowcount == 1:
            return  # no records: the head stays where it is, with the new digest
        conn.execute(_DELETE_HEAD, (base, base + (1 << SEQ_BITS)))
    insert_head(conn, base, count, head)
