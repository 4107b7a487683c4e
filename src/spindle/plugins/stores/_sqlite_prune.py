"""The SQLite store's retention: :meth:`SQLitePrune.prune` (the rules are in
``spindle.core.store._prune``).

A batch is one write transaction: it holds the file's write lock for the
time it takes to delete ``batch`` runs' rows, so commits of live runs (in
this process or others) wait for it as for any commit, never for a whole
prune. Every statement is served by an index: the top runs by
``runs_status`` (one ordered range per status, so a batch reads about
``batch`` rows, not every finished run), a family by ``runs_parent``, a
run's ledger by its key range, the events it consumed by ``inbox_consumed``
(added by its own schema step), its artifact references by ``artifacts_ref`` and
whether a digest is still referenced by ``artifacts_digest``.

Artifact content is a file, which a transaction cannot roll back: a digest
no remaining run references is renamed aside inside the transaction (under
the write lock) and unlinked once the transaction committed, or renamed back
if it did not. ``put_artifact`` checks for the file again inside its own
transaction and writes it anew if pruning took it, so a reference never
points at missing content.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from attrs import define

from spindle.core.model import RunStatus, cancel_request_key, utcnow
from spindle.core.store import FINISHED, PruneResult, check_aware, check_prune
from spindle.plugins.stores._sqlite_errors import file_failure
from spindle.plugins.stores._sqlite_known import micros
from spindle.plugins.stores._sqlite_schema import HEAD_KIND, SEQ_BITS
from spindle.plugins.stores._sqlite_tables import SQLiteTables

__all__ = ["DELETE_RUN", "FAMILY", "TOPS", "SQLitePrune"]

_FINISHED_SQL = ", ".join(f"'{s.value}'" for s in sorted(FINISHED))

#: Top runs of one status, oldest first: runs_status is (status, created_at), and a
#: run is created before it is updated, so ``created_at < before`` bounds the range.
TOPS = f"""
SELECT run_no, run_id, created_at FROM runs AS r INDEXED BY runs_status
WHERE r.status = :status AND r.created_at < :before_s AND r.updated_at < :before_us
AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= :now)
AND (r.parent_run_id IS NULL
     OR NOT EXISTS (SELECT 1 FROM runs AS p WHERE p.run_id = r.parent_run_id))
AND NOT EXISTS (SELECT 1 FROM runs AS c WHERE c.parent_run_id = r.run_id
    AND c.status NOT IN ({_FINISHED_SQL}))
ORDER BY r.created_at, r.run_no LIMIT :limit
"""
#: A run and its descendants, through runs_parent.
FAMILY = """
WITH RECURSIVE family (run_no, run_id, status, lease) AS (
    SELECT run_no, run_id, status, lease_expires_at FROM runs WHERE run_no = ?
    UNION
    SELECT c.run_no, c.run_id, c.status, c.lease_expires_at
    FROM runs AS c JOIN family ON c.parent_run_id = family.run_id
)
SELECT run_no, run_id, status, lease FROM family
"""
_RANGE = "id >= ? AND id < ?"

#: What deleting one run takes, in order (each statement one index probe or range).
DELETE_RUN = (
    "DELETE FROM ledger WHERE id >= :low AND id < :high",
    "DELETE FROM inbox WHERE consumed_by = :run_id",
    "DELETE FROM inbox WHERE key = :cancel_key AND consumed_by IS NULL",
    # Events queued for the run and never consumed are kept, for any run to take.
    "UPDATE inbox SET run_id = NULL WHERE run_id = :run_id AND consumed_by IS NULL",
    "DELETE FROM artifacts WHERE run_id = :run_id",
    "DELETE FROM audit WHERE run_id = :run_id",
    "DELETE FROM waits WHERE run_id = :run_id",
    "DELETE FROM handoffs WHERE source_run_id = :run_id",
    "DELETE FROM runs WHERE run_no = :run_no",
)


def _bounds(run_no: int) -> tuple[int, int]:
    return run_no << SEQ_BITS, (run_no + 1) << SEQ_BITS


@define
class SQLitePrune(SQLiteTables):
    """The side tables of a SQLite store, and pruning (``SQLiteCommitter`` adds the commit)."""

    async def prune(
        self,
        *,
        before: datetime,
        statuses: Iterable[RunStatus] = FINISHED,
        batch: int = 500,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete one batch of finished runs updated before ``before`` (see ``PruneStore``)."""
        wanted = check_prune(before, statuses, batch)
        now = check_aware(now if now is not None else utcnow())
        params = {
            "before_s": before.timestamp(),
            "before_us": micros(before),
            "now": now.timestamp(),
            "limit": -1 if dry_run else batch,
        }
        if dry_run:
            return self._count(sorted(wanted), params)
        suffix = f".pruned-{os.getpid()}-{uuid.uuid4().hex}"
        aside: set[Path] = set()  # blob files renamed aside (by any try of the work)
        chosen: dict[str, set[Path]] = {"gone": set()}  # what the last try decided

        def work(conn: sqlite3.Connection) -> tuple[PruneResult, list[str]]:
            # With group commit a batch may be written twice (see _sqlite_group): each
            # try decides afresh, and the files of the try that committed go.
            taken = self._choose(conn, sorted(wanted), params, batch)
            result, digests = self._tally(conn, taken)
            for run_no, run_id in taken:
                low, high = _bounds(run_no)
                values = {
                    "run_no": run_no,
                    "run_id": run_id,
                    "cancel_key": cancel_request_key(run_id),
                    "low": low,
                    "high": high,
                }
                for sql in DELETE_RUN:
                    conn.execute(sql, values)
            gone: set[Path] = set()
            for digest in digests:
                path = self._blob_path(digest)
                side = path.with_name(path.name + suffix)
                try:
                    os.replace(path, side)
                    aside.add(side)
                except FileNotFoundError:
                    pass  # set aside by an earlier try, or never written
                except OSError as exc:
                    raise file_failure(exc, self.path, f"artifact {path}") from exc
                gone.add(side)
            chosen["gone"] = gone
            return result, [run_id for _, run_id in taken]

        try:
            result, run_ids = await self._transact(work)
        except BaseException:
            self._put_back(aside, suffix)
            raise
        for run_id in run_ids:
            self._known.pop(run_id, None)
        for side in aside:
            if side in chosen["gone"]:
                # Committed: a file left (unwritable directory) is only wasted space.
                with contextlib.suppress(OSError):
                    side.unlink()
        self._put_back(aside - chosen["gone"], suffix)
        return result

    @staticmethod
    def _put_back(aside: Iterable[Path], suffix: str) -> None:
        """Rename blob files set aside by a try that did not commit back in place."""
        for side in aside:
            path = side.with_name(side.name.removesuffix(suffix))
            with contextlib.suppress(OSError):
                if path.exists():
                    side.unlink()  # written anew meanwhile
                else:
                    os.replace(side, path)

    def _count(self, wanted: list[RunStatus], params: dict[str, float]) -> PruneResult:
        """What pruning until nothing is left would delete, read in one snapshot."""
        conn = self._db()
        with self._lock:
            try:
                conn.execute("BEGIN")
                try:
                    taken = self._choose(conn, wanted, params, None)
                    return self._tally(conn, taken)[0]
                finally:
                    conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise self._failure(exc, writing=False) from exc

    @staticmethod
    def _choose(
        conn: sqlite3.Connection,
        wanted: list[RunStatus],
        params: dict[str, float],
        batch: int | None,
    ) -> list[tuple[int, str]]:
        """``(run_no, run_id)`` of the families a batch takes, top runs oldest first."""
        tops: list[tuple[float, int, str]] = []
        for status in wanted:
            rows = conn.execute(TOPS, {**params, "status": status.value}).fetchall()
            tops.extend((created, run_no, run_id) for run_no, run_id, created in rows)
        tops.sort()
        taken: list[tuple[int, str]] = []
        now = params["now"]
        for _, run_no, _ in tops[:batch]:
            family = conn.execute(FAMILY, (run_no,)).fetchall()
            if any(
                status not in FINISHED or (lease is not None and lease > now)
                for _, _, status, lease in family
            ):
                continue  # a descendant is still live: the family waits
            taken.extend((no, run_id) for no, run_id, _, _ in family)
            if batch is not None and len(taken) >= batch:
                break
        return taken

    @staticmethod
    def _tally(
        conn: sqlite3.Connection, taken: list[tuple[int, str]]
    ) -> tuple[PruneResult, set[str]]:
        """What deleting ``taken`` deletes, and the digests no other run references."""
        gone = {run_id for _, run_id in taken}
        records = events = 0
        digests: set[str] = set()
        for run_no, run_id in taken:
            (count,) = conn.execute(
                f"SELECT count(*) FROM ledger WHERE {_RANGE} AND kind <> '{HEAD_KIND}'",
                _bounds(run_no),
            ).fetchone()
            records += count
            (count,) = conn.execute(
                "SELECT count(*) FROM inbox WHERE consumed_by = ?1"
                " OR (key = ?2 AND consumed_by IS NULL)",
                (run_id, cancel_request_key(run_id)),
            ).fetchone()
            events += count
            refs = conn.execute("SELECT digest FROM artifacts WHERE run_id = ?", (run_id,))
            digests.update(digest for (digest,) in refs)
        unreferenced = {
            digest
            for digest in digests
            # Streamed, and stopped at the first other run: a popular digest is not read whole.
            if all(
                r in gone
                for (r,) in conn.execute("SELECT run_id FROM artifacts WHERE digest = ?", (digest,))
            )
        }
        ids = tuple(run_id for _, run_id in taken)
        return PruneResult(len(taken), records, events, len(unreferenced), ids), unreferenced
