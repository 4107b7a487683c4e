"""What a failing SQLite store tells its user: sqlite3 and OS errors as spindle errors.

Every ``sqlite3.Error`` the SQLite store meets goes through
:func:`sqlite_failure`, and every ``OSError`` from the files beside it
(its directory, its artifacts) through :func:`file_failure`, so that a full
disk, a lock held too long, a read-only file or a damaged one is reported
the same way wherever it strikes: one message naming the file, what went
wrong, what to do, and — for a write — that the write was rolled back, so
nothing committed before was lost. The kind of failure is read from
``sqlite_errorname`` (the primary result code's name: ``SQLITE_FULL``,
``SQLITE_BUSY_SNAPSHOT`` …), never from the message text, except for a
missing table or column, which SQLite reports as a plain ``SQLITE_ERROR``.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from spindle.core.errors import StoreBusy, StoreCorrupt, StoreError, StoreFull, StoreReadOnly

__all__ = ["file_failure", "retry_hint", "rollback", "sqlite_failure", "transact"]

T = TypeVar("T")

_SCHEMA_GONE = ("no such table", "no such column", "has no column named", "no such index")


def retry_hint(run_id: str | None, *, creating: bool = False) -> str:
    """How to go on once the cause is fixed: resume the run the write was for, or retry."""
    if run_id is None:
        return "try again"
    if creating:
        return f"start it again (run {run_id} was not created)"
    return f"run 'spindle resume {run_id}' to continue run {run_id} from where it stopped"


def sqlite_failure(
    exc: sqlite3.Error,
    path: str,
    *,
    writing: bool,
    busy_timeout: float,
    run_id: str | None = None,
    creating: bool = False,
) -> StoreError:
    """The spindle error for ``exc``, raised by SQLite on the store file ``path``.

    Args:
        exc: what sqlite3 raised.
        path: the store's file.
        writing: whether it struck inside a write transaction (which was rolled back).
        busy_timeout: the store's lock timeout, to quote.
        run_id: the run the operation was for, to say how it continues.
        creating: the write was creating ``run_id``.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    primary = name.split("_")[1] if "_" in name else ""  # SQLITE_IOERR_WRITE -> IOERR
    text = str(exc)
    then = retry_hint(run_id, creating=creating)
    kept = "; the write was rolled back and nothing committed was lost" if writing else ""
    if primary == "FULL":
        return StoreFull(
            f"disk full writing SQLite store {path} ({text}): free space on its disk, "
            f"then {then}{kept}"
        )
    if primary in ("BUSY", "LOCKED"):
        return StoreBusy(
            f"SQLite store {path} is locked by another process, still after busy_timeout="
            f"{busy_timeout:g}s ({text}): wait for that process to finish or give it longer "
            f"(store URL option ?busy_timeout=SECONDS), then {then}{kept}"
        )
    if primary in ("READONLY", "PERM", "AUTH"):
        return StoreReadOnly(
            f"SQLite store {path} cannot be written ({text}): make the file and its "
            f"directory writable for this user (SQLite writes its -wal and -shm files "
            f"beside it), then {then}{kept}"
        )
    if primary in ("CORRUPT", "NOTADB"):
        return StoreCorrupt(
            f"SQLite store {path} is not a database or is damaged ({text}): restore it from "
            f"a backup ('sqlite3 {path} .recover' may save what is still readable), or move "
            "it aside to start a new store"
        )
    if primary == "ERROR" and any(part in text for part in _SCHEMA_GONE):
        return StoreCorrupt(
            f"SQLite store {path} lacks part of spindle's schema ({text}): a table was "
            "dropped or the file edited; restore it from a backup"
        )
    if primary == "IOERR":
        return StoreError(
            f"I/O error on SQLite store {path} ({text}): check the disk and its file system "
            f"(a failing disk, a network mount that went away), then {then}{kept}"
        )
    if primary == "CANTOPEN":
        return StoreError(
            f"cannot open SQLite store {path} ({text}): check that the path names a file in "
            "an existing directory and that this user can write that directory (SQLite "
            "creates the store's -wal and -shm files beside it)"
        )
    return StoreError(f"SQLite store {path} failed ({text}){kept}")


def file_failure(
    exc: OSError, path: str, what: str, *, run_id: str | None = None, reading: bool = False
) -> StoreError:
    """The spindle error for ``exc``, raised on a file of the store ``path``.

    Args:
        exc: what the OS raised.
        path: the store's file.
        what: the file or directory the operation was on, as the message names it.
        run_id: the run the operation was for, to say how it continues.
        reading: the file was being read, not written.
    """
    reason = exc.strerror or str(exc)
    then = retry_hint(run_id)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(
            f"disk full writing {what} of SQLite store {path} ({reason}): free space on its "
            f"disk, then {then}; nothing committed was lost"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) and reading:
        return StoreError(
            f"cannot read {what} of SQLite store {path} ({reason}): make it readable for "
            f"this user, then {then}"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreReadOnly(
            f"cannot write {what} of SQLite store {path} ({reason}): make it writable for "
            f"this user, then {then}; nothing committed was lost"
        )
    return StoreError(
        f"cannot use {what} of SQLite store {path} ({reason}): check the path and its "
        f"permissions, then {then}"
    )


def rollback(conn: sqlite3.Connection) -> None:
    """End a failed write transaction, if SQLite has not already rolled it back.

    After some errors (a full disk, an I/O error) SQLite rolls the transaction
    back by itself; a ROLLBACK that fails too is left unraised, so that the
    error the caller sees is the one that caused the failure.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def transact(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` in one write transaction on ``conn`` and return what it returned.

    The transaction takes the file's write lock up front (``BEGIN IMMEDIATE``)
    and ends in ``COMMIT``; any failure, in the BEGIN, in ``work`` or in the
    COMMIT (its fsync), is rolled back and raised as it came. Its callers (a
    commit without group commit, a lone group-commit write) differ only in the
    lock they hold around it and in how they report the error. The writer's
    batches open their own transaction (one BEGIN for a batch of one or many),
    and the store's other writes use its ``_write`` context manager.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return result
