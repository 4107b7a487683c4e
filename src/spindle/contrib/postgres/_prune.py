"""The PostgreSQL store's retention: :meth:`PostgresPrune.prune` (the rules are in
``spindle.core.store._prune``).

A batch is one transaction. It locks the rows of the runs it takes with
``FOR UPDATE SKIP LOCKED``: a run whose row a commit or a lease holds right
now is skipped (and its family with it) rather than waited for, and a live
run's commit never waits for a prune, which only ever locks finished runs.
The ledger, waits and audit entries go with their run's row (``ON DELETE
CASCADE``). Content is deleted under a row lock on its blob that
``put_artifact`` also takes (``FOR KEY SHARE``), so a reference written
meanwhile is either seen, and the content kept, or written after the
content is gone, and writes it again.

Not served by an index (which would take a schema migration): the inbox
events a run consumed, and whether another run references a digest; each is
one scan of its table per batch, which readers and writers do not wait for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from attrs import define

from spindle.contrib.postgres._tables import Conn, PostgresTables
from spindle.core.model import RunStatus, utcnow
from spindle.core.store import FINISHED, PruneResult, cancel_keys, check_aware, check_prune

__all__ = ["PostgresPrune"]

_FINISHED = sorted(s.value for s in FINISHED)

# Top runs: finished, old, free, no parent left, no unfinished child; oldest first.
_TOPS = """
SELECT r.run_id FROM spindle_runs AS r
WHERE r.status = ANY(%(statuses)s) AND r.created_at < %(before)s AND r.updated_at < %(before)s
AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s)
AND (r.parent_run_id IS NULL
     OR NOT EXISTS (SELECT 1 FROM spindle_runs AS p WHERE p.run_id = r.parent_run_id))
AND NOT EXISTS (SELECT 1 FROM spindle_runs AS c WHERE c.parent_run_id = r.run_id
     AND c.status <> ALL(%(finished)s))
ORDER BY r.created_at, r.run_no LIMIT %(limit)s
"""
_FAMILY = """
WITH RECURSIVE family (run_id) AS (
    SELECT %s::text
    UNION
    SELECT c.run_id FROM spindle_runs AS c JOIN family ON c.parent_run_id = family.run_id
)
SELECT run_id FROM family
"""
_MEMBERS = "SELECT run_id, status, lease_expires_at FROM spindle_runs WHERE run_id = ANY(%s)"
# Digests only the runs in %(ids)s reference.
_OWN_DIGESTS = """
SELECT DISTINCT a.digest FROM spindle_artifacts AS a WHERE a.run_id = ANY(%(ids)s)
AND NOT EXISTS (SELECT 1 FROM spindle_artifacts AS b
                WHERE b.digest = a.digest AND b.run_id <> ALL(%(ids)s))
"""


@define
class PostgresPrune(PostgresTables):
    """The side tables of a PostgreSQL store, and pruning (``PostgresRuns`` adds runs)."""

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
            "statuses": sorted(s.value for s in wanted),
            "finished": _FINISHED,
            "before": before,
            "now": now,
            "limit": None if dry_run else batch,
        }

        async def work(conn: Conn) -> PruneResult:
            taken = await self._choose(conn, params, None if dry_run else batch, lock=not dry_run)
            if not taken:
                return PruneResult()
            ids = {"ids": taken, "cancels": cancel_keys(taken)}
            records = await _one(
                conn, "SELECT count(*) FROM spindle_ledger WHERE run_id = ANY(%(ids)s)", ids
            )
            if dry_run:
                return PruneResult(
                    len(taken),
                    records,
                    await _one(
                        conn,
                        "SELECT count(*) FROM spindle_events WHERE consumed_by = ANY(%(ids)s)"
                        " OR (consumed_by IS NULL AND key = ANY(%(cancels)s))",
                        ids,
                    ),
                    len(await _all(conn, _OWN_DIGESTS, ids)),
                    tuple(taken),
                )
            cur = await conn.execute(
                "DELETE FROM spindle_events WHERE consumed_by = ANY(%(ids)s)"
                " OR (consumed_by IS NULL AND key = ANY(%(cancels)s))",
                ids,
            )
            events = cur.rowcount
            await conn.execute(
                "UPDATE spindle_events SET run_id = NULL"
                " WHERE consumed_by IS NULL AND run_id = ANY(%(ids)s)",
                ids,
            )
            digests = sorted(
                {
                    d
                    for (d,) in await _all(
                        conn,
                        "DELETE FROM spindle_artifacts WHERE run_id = ANY(%(ids)s)"
                        " RETURNING digest",
                        ids,
                    )
                }
            )
            await conn.execute(
                "DELETE FROM spindle_handoffs WHERE source_run_id = ANY(%(ids)s)", ids
            )
            await conn.execute("DELETE FROM spindle_runs WHERE run_id = ANY(%(ids)s)", ids)
            artifacts = 0
            if digests:
                # Lock the blobs first (a put_artifact holding one is waited for), then
                # look for references in a new statement, which sees what it committed.
                await conn.execute(
                    "SELECT digest FROM spindle_blobs WHERE digest = ANY(%s)"
                    " ORDER BY digest FOR UPDATE",
                    (digests,),
                )
                cur = await conn.execute(
                    "DELETE FROM spindle_blobs AS b WHERE b.digest = ANY(%s) AND NOT EXISTS"
                    " (SELECT 1 FROM spindle_artifacts AS a WHERE a.digest = b.digest)",
                    (digests,),
                )
                artifacts = cur.rowcount
            return PruneResult(len(taken), records, events, artifacts, tuple(taken))

        return await self._run(work)

    async def _choose(
        self, conn: Conn, params: dict[str, Any], batch: int | None, *, lock: bool
    ) -> list[str]:
        """The runs of the families a batch takes (locked, with ``lock``), top runs oldest first."""
        lock_rows = " FOR UPDATE OF r SKIP LOCKED" if lock else ""
        tops = [run_id for (run_id,) in await _all(conn, _TOPS + lock_rows, params)]
        taken: list[str] = []
        now = params["now"]

        def prunable(members: list[Any], family: list[str]) -> bool:
            return len(members) == len(family) and all(
                status in _FINISHED and (lease is None or lease <= now)
                for _, status, lease in members
            )

        for top in tops:
            family = [run_id for (run_id,) in await _all(conn, _FAMILY, (top,))]
            # Looked at unlocked first, so a live member's row is never locked (its
            # commits never wait for this batch); then locked, and looked at again:
            # a failed run may have been retried since.
            if not prunable(await _all(conn, _MEMBERS, (family,)), family):
                continue  # a member is live: the family waits
            if lock and not prunable(
                await _all(conn, _MEMBERS + " FOR UPDATE SKIP LOCKED", (family,)), family
            ):
                continue  # a member is held right now, or just changed
            taken.extend(family)
            if batch is not None and len(taken) >= batch:
                break
        return taken


async def _all(conn: Conn, sql: str, params: Any) -> list[Any]:
    cur = await conn.execute(sql, params)
    return list(await cur.fetchall())


async def _one(conn: Conn, sql: str, params: Any) -> int:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    return int(row[0]) if row else 0
