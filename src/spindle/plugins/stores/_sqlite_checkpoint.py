"""Checkpointing the SQLite store's write-ahead log between group-commit batches.

SQLite's own checkpoint runs inside the COMMIT that takes the log past 1,000
pages: it copies the log's pages into the database file and syncs both, a
few milliseconds (on the 2-core test VM, 3.4 ms for 900 pages, 0.3 ms of it
the copy and the rest the two fsyncs, at ``durability=normal`` as at
``full``) during which that batch's callers wait for their outcome. The
group-commit writer (``_sqlite_group``) instead checkpoints the log itself,
after it has handed a batch's outcomes back, so that the checkpoint overlaps
with its callers computing their next steps. A lone caller's write (one
written in its caller, see ``_sqlite_group``) checkpoints after itself when
one is due, as SQLite's own checkpoint would.

It checkpoints at about SQLite's usual size (:data:`CHECKPOINT_PAGES`),
judged from the rows the writer changed since the last checkpoint (SQLite's
count, read without a statement) and the log pages a changed row added until
then: a batch of 100 steps of runs in flight changes 200 rows on about 300
pages, a batch of 100 writes of one definition one row on two. SQLite's own
checkpoint stays on the writer's connection as a backstop, at
:data:`BACKSTOP_PAGES`, in case the estimate falls short.

A checkpoint that fails (an I/O error) or finds another connection
checkpointing the file loses nothing: the pages stay in the log, which
readers read, and the next checkpoint, or SQLite's own, copies them.
"""

from __future__ import annotations

import contextlib
import sqlite3

__all__ = ["BACKSTOP_PAGES", "CHECKPOINT_PAGES", "LogCheckpoints"]

#: The log size, in pages, at which the writer checkpoints it between batches (SQLite's
#: own default for its checkpoint inside a COMMIT).
CHECKPOINT_PAGES = 1000
#: The log size at which SQLite's own checkpoint, inside a COMMIT, still runs on the
#: writer's connection: only if the writer's own did not keep the log below it.
BACKSTOP_PAGES = 4 * CHECKPOINT_PAGES
# Log pages a changed row is taken to add until the first checkpoint measures it, and
# the least it is taken to add whatever a checkpoint measured (so that one batch of
# rows that shared a few pages cannot put the next checkpoint off for long).
_FIRST_PAGES_PER_CHANGE = 2.0
_LEAST_PAGES_PER_CHANGE = 0.5
# How far one checkpoint's lower measure of the pages a row adds lowers the estimate.
_FOLLOW_DOWN = 0.75


class LogCheckpoints:
    """When the group-commit writer checkpoints the log, and how its checkpoints went.

    Args:
        conn: the writer's connection: its changed-row count is the baseline, and
            SQLite's own checkpoint on it moves to the backstop.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        #: Checkpoints made, and those that failed (with the last failure): tests and
        #: benchmarks read these.
        self.made = 0
        self.failed = 0
        self.error: sqlite3.Error | None = None
        # The connection's count of changed rows at the last checkpoint, and the log
        # pages a changed row adds (measured at each checkpoint); None once the file
        # turns out not to be in WAL mode.
        self._changes = conn.total_changes
        self._pages_per_change: float | None = _FIRST_PAGES_PER_CHANGE
        # (Should the pragma fail, SQLite's own default threshold simply stays.)
        with contextlib.suppress(sqlite3.Error):
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")

    def run_if_due(self, conn: sqlite3.Connection) -> None:
        """Checkpoint the log on ``conn`` (in the writer thread, between batches) once the
        writes since the last checkpoint put about ``CHECKPOINT_PAGES`` pages in it.

        ``PRAGMA wal_checkpoint(PASSIVE)`` never waits for other connections: it copies
        what no reader still needs and reports how many pages the log holds. Never
        raises: a failure is counted and kept (``failed``, ``error``).
        """
        per_change = self._pages_per_change
        if per_change is None:
            return
        try:
            now = conn.total_changes
            changed = now - self._changes  # negative once the 32-bit count wraps: due
            if changed >= 0 and changed * per_change < CHECKPOINT_PAGES:
                return
            self._changes = now
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            # Nothing is lost: the pages stay in the log (readers read them there) and the
            # next checkpoint, or SQLite's own at BACKSTOP_PAGES, copies them.
            self.failed += 1
            self.error = exc
            return
        busy, logged = (row[0], row[1]) if row is not None else (0, -1)
        if logged < 0:
            # (0, -1, -1): the file is not in WAL mode, there is no log to checkpoint.
            # (1, -1, -1): another connection was checkpointing it: try again later.
            if not busy:
                self._pages_per_change = None
            return
        self.made += 1
        if changed > 0:
            # The log's pages since it last restarted: written by these changes (and by any
            # other process's commits, which only makes the next checkpoint come sooner).
            # A row's pages grow as runs in flight spread over the ledger, so a lower
            # measure is followed only slowly: the log stays near CHECKPOINT_PAGES.
            self._pages_per_change = max(
                logged / changed, per_change * _FOLLOW_DOWN, _LEAST_PAGES_PER_CHANGE
            )
