"""The PostgreSQL store's part in sharing work: claims under queue limits, queue
settings and the worker roster (see :mod:`spindle.core.store._work`).

A claim is one transaction. It reads due runs ``FOR UPDATE SKIP LOCKED``, so
workers claiming at once each get different runs without waiting on each
other; when a candidate is on a limited queue it then locks that queue's row
and counts what the queue holds, so two claims from one limited queue take
turns and a limit holds across every worker on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from attrs import define

from spindle.contrib.postgres._runs import PostgresRuns
from spindle.contrib.postgres._tables import Conn
from spindle.core.model import Claim, Lease, QueueLimits, WorkerInfo, converter
from spindle.core.store import (
    Candidate,
    QueueLoad,
    blocked_queues,
    check_aware,
    lease_expiry,
    leased,
    limited_queues,
    plan_claims,
    queue_body,
    roster,
    worker_body,
)

__all__ = ["PostgresWork"]

_CANDIDATES = (
    "SELECT run_id, run_no, CASE status WHEN 'pending' THEN created_at"
    " WHEN 'waiting' THEN wake_at ELSE lease_expires_at END AS due_at,"
    " queue_name, queue_priority, queue_partition, status = 'pending'"
    " FROM spindle_runs"
    " WHERE (lease_expires_at IS NULL OR lease_expires_at <= %(now)s) AND ("
    "  status = 'pending'"
    "  OR (status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= %(now)s)"
    "  OR (status = 'running' AND lease_expires_at IS NOT NULL))"
    " AND (%(blocked)s::text[] IS NULL OR queue_name IS NULL"
    "  OR NOT queue_name = ANY(%(blocked)s::text[]))"
    " AND (%(wanted)s::text[] IS NULL OR queue_name = ANY(%(wanted)s::text[]))"
    " ORDER BY queue_priority DESC, due_at, run_no LIMIT %(window)s FOR UPDATE SKIP LOCKED"
)
_TAKE = (
    "UPDATE spindle_runs SET token = token + 1, lease_owner = %(owner)s,"
    " lease_host = %(host)s, lease_pid = %(pid)s, lease_expires_at = %(expires)s,"
    " claimed_at = CASE WHEN status = 'pending' THEN coalesce(claimed_at, %(now)s)"
    " ELSE claimed_at END WHERE run_id = ANY(%(ids)s) RETURNING run_id, token"
)


@define
class PostgresWork(PostgresRuns):
    """Claims, queues and workers of a PostgreSQL store."""

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
        check_aware(now)
        expires_at = lease_expiry(now, ttl)

        async def claim(conn: Conn) -> list[tuple[str, int]]:
            limits = await _limits(conn)
            # A first look at the load, without locks, leaves out the queues that are
            # full already (their runs would crowd the window); it is counted again
            # under the queues' locks before anything is taken from them.
            load = await _load(conn, limits, now, owner)
            blocked = blocked_queues(limits, load)
            cur = await conn.execute(
                _CANDIDATES,
                {
                    "now": now,
                    "blocked": sorted(blocked) or None,
                    "wanted": sorted(queues) if queues is not None else None,
                    "window": max(64, limit * 8),
                },
            )
            candidates = [
                Candidate(run_id, due.timestamp(), no, queue, priority, part, pending)
                for run_id, no, due, queue, priority, part, pending in await cur.fetchall()
            ]
            touched = sorted({c.queue for c in candidates if c.queue in limits})
            if touched:
                await conn.execute(
                    "SELECT name FROM spindle_queues WHERE name = ANY(%s) ORDER BY name FOR UPDATE",
                    (touched,),
                )
                load = await _load(conn, {n: limits[n] for n in touched}, now, owner)
            chosen = plan_claims(candidates, limits, load, limit, queues)
            if not chosen:
                return []
            cur = await conn.execute(
                _TAKE,
                {
                    "owner": owner,
                    "host": host,
                    "pid": pid,
                    "expires": expires_at,
                    "now": now,
                    "ids": [c.run_id for c in chosen],
                },
            )
            tokens = dict(await cur.fetchall())
            return [(c.run_id, int(tokens[c.run_id])) for c in chosen]

        return leased(await self._run(claim), owner, host, pid, expires_at)

    async def set_queue(self, limits: QueueLimits) -> None:
        """Create or replace a queue's limits."""
        await self._rows(
            "INSERT INTO spindle_queues (name, body) VALUES (%s, %s) ON CONFLICT (name)"
            " DO UPDATE SET body = excluded.body RETURNING 1",
            (limits.name, queue_body(limits)),
        )

    async def get_queues(self) -> list[QueueLimits]:
        """Every queue with limits set, by name."""
        rows = await self._rows("SELECT body FROM spindle_queues ORDER BY name")
        return [converter.structure(json.loads(body), QueueLimits) for (body,) in rows]

    async def queue_counts(self, now: datetime) -> dict[str, tuple[int, int]]:
        """Per queue: ``(runs waiting to be claimed, runs driven now)``."""
        check_aware(now)
        counts = {q.name: (0, 0) for q in await self.get_queues()}
        rows = await self._rows(
            "SELECT queue_name,"
            " count(*) FILTER (WHERE status = 'pending' AND NOT coalesce("
            "  lease_expires_at > %(now)s, false)),"
            " count(*) FILTER (WHERE lease_expires_at > %(now)s)"
            " FROM spindle_runs WHERE queue_name IS NOT NULL GROUP BY queue_name",
            {"now": now},
        )
        for name, waiting, driven in rows:
            counts[name] = (int(waiting), int(driven))
        return dict(sorted(counts.items()))

    async def put_worker(self, info: WorkerInfo) -> None:
        """Announce or refresh a worker."""
        await self._rows(
            "INSERT INTO spindle_workers (worker_id, seen_at, body) VALUES (%s, %s, %s)"
            " ON CONFLICT (worker_id) DO UPDATE SET seen_at = excluded.seen_at,"
            " body = excluded.body RETURNING 1",
            (info.worker_id, info.seen_at, worker_body(info)),
        )

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker."""
        await self._rows(
            "DELETE FROM spindle_workers WHERE worker_id = %s RETURNING 1", (worker_id,)
        )

    async def list_workers(self) -> list[WorkerInfo]:
        """Every announced worker, by id, with the runs it holds."""
        holders = await self._rows(
            "SELECT lease_owner, run_id FROM spindle_runs WHERE lease_owner IS NOT NULL"
        )
        bodies = await self._rows("SELECT body FROM spindle_workers ORDER BY worker_id")
        return roster((body for (body,) in bodies), holders)

    async def held_leases(self, *, host: str | None = None) -> list[tuple[str, Lease]]:
        """Every run under a lease (of holders on ``host``, if given)."""
        rows = await self._rows(
            "SELECT run_id, lease_owner, lease_host, lease_pid, lease_expires_at, token"
            " FROM spindle_runs WHERE lease_owner IS NOT NULL"
            " AND (%(host)s::text IS NULL OR lease_host = %(host)s)",
            {"host": host},
        )
        return [
            (run_id, Lease(owner=o, host=h, pid=p, expires_at=e, token=t))
            for run_id, o, h, p, e, t in rows
        ]


async def _limits(conn: Conn) -> dict[str, QueueLimits]:
    cur = await conn.execute("SELECT body FROM spindle_queues")
    return limited_queues(body for (body,) in await cur.fetchall())


async def _load(conn: Conn, limits: dict[str, QueueLimits], now: datetime, owner: str) -> QueueLoad:
    """What the limited queues ``limits`` hold at ``now``."""
    load = QueueLoad()
    if not limits:
        return load
    cur = await conn.execute(
        "SELECT queue_name, queue_partition, lease_owner FROM spindle_runs"
        " WHERE queue_name = ANY(%s) AND lease_expires_at > %s",
        (list(limits), now),
    )
    for name, part, holder in await cur.fetchall():
        load.running[name] += 1
        if holder == owner:
            load.mine[name] += 1
        if part is not None:
            load.partitions[(name, part)] += 1
    for name, lim in limits.items():
        if lim.rate is not None:
            cur = await conn.execute(
                "SELECT count(*) FROM spindle_runs WHERE queue_name = %s AND claimed_at > %s",
                (name, now - timedelta(seconds=lim.period)),
            )
            row: Any = await cur.fetchone()
            load.starts[name] = int(row[0])
    return load
