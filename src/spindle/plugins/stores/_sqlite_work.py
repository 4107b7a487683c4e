"""The SQLite store's part in sharing work: claims under queue limits, queue settings
and the worker roster (see :mod:`spindle.core.store._work`).

A claim is one write transaction: it holds the file's write lock while it
counts what the limited queues hold, reads the due runs and leases those it
picks, so claims by many worker processes on one file never overrun a limit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import Any

from attrs import define

from spindle.core.model import Claim, Lease, QueueLimits, WorkerInfo, converter
from spindle.core.store import (
    Candidate,
    QueueLoad,
    blocked_queues,
    check_aware,
    from_epoch,
    lease_expiry,
    leased,
    limited_queues,
    plan_claims,
    queue_body,
    roster,
    worker_body,
)
from spindle.plugins.stores._sqlite_commit import SQLiteCommitter

__all__ = ["SQLiteWork"]

# Due runs (as due_runs says) with what a claim picks by; {where} narrows them to
# the queues a claim may take from. Each part reads at most :window rows.
_CANDIDATES = """
SELECT * FROM (SELECT run_id, run_no, created_at, queue_name, queue_priority, queue_partition, 1
    FROM runs INDEXED BY runs_pending
    WHERE status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= :now) {where}
    ORDER BY queue_priority DESC, created_at LIMIT :window)
UNION ALL
SELECT * FROM (SELECT run_id, run_no, wake_at, queue_name, queue_priority, queue_partition, 0
    FROM runs INDEXED BY runs_wake
    WHERE status = 'waiting' AND wake_at <= :now
    AND (lease_expires_at IS NULL OR lease_expires_at <= :now) {where}
    ORDER BY wake_at LIMIT :window)
UNION ALL
SELECT * FROM (SELECT run_id, run_no, lease_expires_at, queue_name, queue_priority,
    queue_partition, 0 FROM runs INDEXED BY runs_lease
    WHERE status = 'running' AND lease_expires_at <= :now {where}
    ORDER BY lease_expires_at LIMIT :window)
"""
_TAKE = (
    "UPDATE runs SET lease_owner = ?, lease_host = ?, lease_pid = ?, lease_expires_at = ?,"
    " lease_token = lease_token + 1,"
    " claimed_at = CASE WHEN status = 'pending' THEN coalesce(claimed_at, ?) ELSE claimed_at END"
    " WHERE run_id = ? AND (lease_owner IS NULL OR lease_expires_at <= ?)"
)


@define
class SQLiteWork(SQLiteCommitter):
    """Claims, queues and workers of the SQLite store."""

    async def claim_runs(
        self,
        now: datetime,
        *,
        owner: str,
        host: str,
        pid: int,
        ttl: float,
        limit: int,
        queues: Collection[str] | None = None,
    ) -> list[Claim]:
        """Lease up to ``limit`` due runs to ``owner`` under the queues' limits."""
        at = check_aware(now).timestamp()
        expires_at = lease_expiry(now, ttl)
        wanted = sorted(queues) if queues is not None else None

        def claim(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            limits = _limits(conn)
            load = _load(conn, limits, at, owner)
            where, params = _narrowing(blocked_queues(limits, load), wanted)
            sql = _CANDIDATES.format(where=where)
            rows = conn.execute(sql, {"now": at, "window": max(64, limit * 8), **params})
            candidates = [
                Candidate(run_id, due, no, queue, priority or 0, part, bool(pending))
                for run_id, no, due, queue, priority, part, pending in rows.fetchall()
            ]
            taken = []
            for cand in plan_claims(candidates, limits, load, limit, queues):
                args = (owner, host, pid, expires_at.timestamp(), at, cand.run_id, at)
                if conn.execute(_TAKE, args).rowcount == 1:
                    (token,) = conn.execute(
                        "SELECT lease_token FROM runs WHERE run_id = ?", (cand.run_id,)
                    ).fetchone()
                    taken.append((cand.run_id, int(token)))
            return taken

        return leased(await self._transact(claim), owner, host, pid, expires_at)

    async def set_queue(self, limits: QueueLimits) -> None:
        """Create or replace a queue's limits."""
        await self._execute(
            "INSERT INTO queues (name, body) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            (limits.name, queue_body(limits)),
        )

    async def get_queues(self) -> list[QueueLimits]:
        """Every queue with limits set, by name."""
        rows = self._read("SELECT body FROM queues ORDER BY name")
        return [converter.structure(json.loads(body), QueueLimits) for (body,) in rows]

    async def queue_counts(self, now: datetime) -> dict[str, tuple[int, int]]:
        """Per queue: ``(runs waiting to be claimed, runs driven now)``."""
        at = check_aware(now).timestamp()
        counts = {q.name: (0, 0) for q in await self.get_queues()}
        rows = self._read(
            "SELECT queue_name, sum(status = 'pending' AND NOT coalesce(lease_expires_at > :now,"
            " 0)), sum(coalesce(lease_expires_at > :now, 0)) FROM runs"
            " WHERE queue_name IS NOT NULL GROUP BY queue_name",
            {"now": at},
        )
        for name, waiting, driven in rows:
            counts[name] = (int(waiting or 0), int(driven or 0))
        return dict(sorted(counts.items()))

    async def put_worker(self, info: WorkerInfo) -> None:
        """Announce or refresh a worker."""
        await self._execute(
            "INSERT INTO workers (worker_id, seen_at, body) VALUES (?, ?, ?) ON CONFLICT"
            " (worker_id) DO UPDATE SET seen_at = excluded.seen_at, body = excluded.body",
            (info.worker_id, info.seen_at.timestamp(), worker_body(info)),
        )

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker."""
        await self._execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))

    async def list_workers(self) -> list[WorkerInfo]:
        """Every announced worker, by id, with the runs it holds."""
        holders = self._read(
            "SELECT lease_owner, run_id FROM runs INDEXED BY runs_leased"
            " WHERE lease_owner IS NOT NULL"
        )
        bodies = self._read("SELECT body FROM workers ORDER BY worker_id")
        return roster((body for (body,) in bodies), holders)

    async def held_leases(self, *, host: str | None = None) -> list[tuple[str, Lease]]:
        """Every run under a lease (of holders on ``host``, if given)."""
        rows = self._read(
            "SELECT run_id, lease_owner, lease_host, lease_pid, lease_expires_at, lease_token"
            " FROM runs INDEXED BY runs_leased WHERE lease_owner IS NOT NULL"
            " AND (:host IS NULL OR lease_host = :host)",
            {"host": host},
        )
        return [
            (run_id, Lease(owner=o, host=h, pid=p, expires_at=from_epoch(e), token=t))
            for run_id, o, h, p, e, t in rows
        ]


def _limits(conn: sqlite3.Connection) -> dict[str, QueueLimits]:
    return limited_queues(body for (body,) in conn.execute("SELECT body FROM queues"))


def _load(
    conn: sqlite3.Connection, limits: dict[str, QueueLimits], at: float, owner: str
) -> QueueLoad:
    """What the limited queues hold at ``at``, read under the claim's write lock."""
    load = QueueLoad()
    if not limits:
        return load
    names = list(limits)
    marks = ",".join("?" * len(names))
    for name, part, holder in conn.execute(
        "SELECT queue_name, queue_partition, lease_owner FROM runs INDEXED BY runs_queue"
        f" WHERE queue_name IN ({marks}) AND lease_expires_at > ?",
        (*names, at),
    ).fetchall():
        load.running[name] += 1
        if holder == owner:
            load.mine[name] += 1
        if part is not None:
            load.partitions[(name, part)] += 1
    for name, lim in limits.items():
        if lim.rate is not None:
            (n,) = conn.execute(
                "SELECT count(*) FROM runs WHERE queue_name = ? AND claimed_at > ?",
                (name, at - lim.period),
            ).fetchone()
            load.starts[name] = int(n)
    return load


def _narrowing(blocked: set[str], wanted: list[str] | None) -> tuple[str, dict[str, Any]]:
    """The SQL that leaves out blocked queues' runs (and, with ``wanted``, every run not
    on one of those queues), with its parameters."""
    params: dict[str, Any] = {}
    where = ""
    if blocked:
        names = {f"b{i}": n for i, n in enumerate(sorted(blocked))}
        params.update(names)
        marks = ",".join(f":{k}" for k in names)
        where += f" AND (queue_name IS NULL OR queue_name NOT IN ({marks}))"
    if wanted is not None:
        names = {f"w{i}": n for i, n in enumerate(wanted)}
        params.update(names)
        marks = ",".join(f":{k}" for k in names) or "NULL"
        where += f" AND queue_name IN ({marks})"
    return where, params
