"""The memory store's part in sharing work: claims under queue limits, queue settings
and the worker roster (see :mod:`spindle.core.store._work`).

Its methods never await, so a claim is atomic on the event loop, as a
transaction is in the durable stores.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from attrs import define, field

from spindle.core.model import (
    Claim,
    Lease,
    QueueLimits,
    RunStatus,
    WorkerInfo,
)
from spindle.core.store import (
    Candidate,
    QueueLoad,
    blocked_queues,
    check_aware,
    lease_expiry,
    plan_claims,
)
from spindle.plugins.stores._memory_base import MemoryBase, RunEntry
from spindle.plugins.stores._memory_copy import clone

__all__ = ["MemoryWork"]


@define
class MemoryWork(MemoryBase):
    """Claims, queues and workers of the memory store."""

    _queues: dict[str, QueueLimits] = field(factory=dict, init=False, repr=False, eq=False)
    _workers: dict[str, WorkerInfo] = field(factory=dict, init=False, repr=False, eq=False)

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
        limits = {n: q for n, q in self._queues.items() if q.limited}
        load = self._load(limits, now, owner)
        blocked = blocked_queues(limits, load)
        candidates = []
        for run_id, entry in self._runs.items():
            cand = _candidate(run_id, entry, now)
            if cand is not None and cand.queue not in blocked:
                candidates.append(cand)
        claims = []
        for cand in plan_claims(candidates, limits, load, limit, queues):
            entry = self._runs[cand.run_id]
            entry.token += 1
            entry.lease = Lease(
                owner=owner, host=host, pid=pid, expires_at=expires_at, token=entry.token
            )
            if cand.pending and entry.claimed_at is None:
                entry.claimed_at = now
            claims.append(Claim(cand.run_id, clone(entry.lease)))
        return claims

    def _load(self, limits: dict[str, QueueLimits], now: datetime, owner: str) -> QueueLoad:
        load = QueueLoad()
        for entry in self._runs.values():
            spot = entry.state.queue
            if spot is None or spot.name not in limits:
                continue
            lim = limits[spot.name]
            lease = entry.lease
            if lease is not None and lease.expires_at > now:
                load.running[spot.name] += 1
                if lease.owner == owner:
                    load.mine[spot.name] += 1
                if spot.partition is not None:
                    load.partitions[(spot.name, spot.partition)] += 1
            started = entry.claimed_at
            recent = started is not None and started > now - timedelta(seconds=lim.period)
            if lim.rate is not None and recent:
                load.starts[spot.name] += 1
        return load

    async def set_queue(self, limits: QueueLimits) -> None:
        """Create or replace a queue's limits."""
        self._queues[limits.name] = clone(limits)

    async def get_queues(self) -> list[QueueLimits]:
        """Every queue with limits set, by name."""
        return [clone(self._queues[n]) for n in sorted(self._queues)]

    async def queue_counts(self, now: datetime) -> dict[str, tuple[int, int]]:
        """Per queue: ``(runs waiting to be claimed, runs driven now)``."""
        counts: dict[str, tuple[int, int]] = dict.fromkeys(self._queues, (0, 0))
        for entry in self._runs.values():
            spot = entry.state.queue
            if spot is None:
                continue
            waiting, driven = counts.get(spot.name, (0, 0))
            lease = entry.lease
            if lease is not None and lease.expires_at > now:
                driven += 1
            elif entry.state.status is RunStatus.PENDING:
                waiting += 1
            counts[spot.name] = (waiting, driven)
        return dict(sorted(counts.items()))

    async def put_worker(self, info: WorkerInfo) -> None:
        """Announce or refresh a worker."""
        stored = clone(info)
        stored.holds = []
        self._workers[info.worker_id] = stored

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker."""
        self._workers.pop(worker_id, None)

    async def list_workers(self) -> list[WorkerInfo]:
        """Every announced worker, by id, with the runs it holds."""
        holds: dict[str, list[str]] = {}
        for run_id, entry in self._runs.items():
            if entry.lease is not None:
                holds.setdefault(entry.lease.owner, []).append(run_id)
        found = []
        for worker_id in sorted(self._workers):
            info = clone(self._workers[worker_id])
            info.holds = sorted(holds.get(worker_id, ()))
            found.append(info)
        return found

    async def held_leases(self, *, host: str | None = None) -> list[tuple[str, Lease]]:
        """Every run under a lease (of holders on ``host``, if given)."""
        return [
            (run_id, clone(e.lease))
            for run_id, e in self._runs.items()
            if e.lease is not None and (host is None or e.lease.host == host)
        ]


def _candidate(run_id: str, entry: RunEntry, now: datetime) -> Candidate | None:
    """The run as a claim candidate when it is due (as ``due_runs`` says), else None."""
    lease = entry.lease
    if lease is not None and lease.expires_at > now:
        return None
    state = entry.state
    status = state.status
    if status is RunStatus.PENDING:
        due = state.created_at
    elif status is RunStatus.WAITING:
        wake_at = state.wake_at
        if wake_at is None or wake_at > now:
            return None
        due = wake_at
    elif status is RunStatus.RUNNING and lease is not None:
        due = lease.expires_at
    else:
        return None
    spot = state.queue
    return Candidate(
        run_id,
        due.timestamp(),
        entry.order,
        queue=spot.name if spot else None,
        priority=spot.priority if spot else 0,
        partition=spot.partition if spot else None,
        pending=status is RunStatus.PENDING,
    )
