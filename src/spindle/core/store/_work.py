"""The store's part in sharing work between workers: claims, queue limits, workers.

A worker asks the store for runs to drive (:meth:`WorkStore.claim_runs`); the
store picks due runs and leases them to it in one transaction, so two workers
never claim one run, and applies each queue's limits there, against what all
workers hold, so a limit holds however many workers there are. How a store
picks is the same everywhere (:func:`blocked_queues`, :func:`plan_claims`);
each store only gathers the load and the candidates in its own medium.
"""

from __future__ import annotations

import abc
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from attrs import define, field

from spindle.core.model import Lease, converter
from spindle.core.model._work import Claim, QueueLimits, WorkerInfo

__all__ = [
    "Candidate",
    "QueueLoad",
    "WorkStore",
    "blocked_queues",
    "leased",
    "limited_queues",
    "plan_claims",
    "queue_body",
    "roster",
    "worker_body",
]


class WorkStore(abc.ABC):
    """Claims of due runs under queue limits, queue settings, and the worker roster."""

    @abc.abstractmethod
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
        """Lease up to ``limit`` due runs (see :meth:`~RunStore.due_runs`) to ``owner``,
        atomically, honouring every queue's limits against what all workers hold.

        Higher queue priority first, then the longest due. ``queues`` restricts the
        claim to runs of those queues (None: runs of any queue and of none). A
        pending run's first claim is its start, which queue rate limits count.
        """

    @abc.abstractmethod
    async def set_queue(self, limits: QueueLimits) -> None:
        """Create or replace a queue's limits (they apply from the next claim)."""

    @abc.abstractmethod
    async def get_queues(self) -> list[QueueLimits]:
        """Every queue with limits set, by name."""

    @abc.abstractmethod
    async def queue_counts(self, now: datetime) -> dict[str, tuple[int, int]]:
        """Per queue name (of runs or of limits): ``(runs waiting to be claimed, runs
        driven now)``."""

    @abc.abstractmethod
    async def put_worker(self, info: WorkerInfo) -> None:
        """Announce a worker, or refresh it (its ``seen_at``) under the same id."""

    @abc.abstractmethod
    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker (it stopped); no-op when unknown."""

    @abc.abstractmethod
    async def list_workers(self) -> list[WorkerInfo]:
        """Every announced worker, by id, with the runs whose lease it holds (``holds``)."""

    @abc.abstractmethod
    async def held_leases(self, *, host: str | None = None) -> list[tuple[str, Lease]]:
        """``(run_id, lease)`` of every run under a lease (expired or not), of holders on
        ``host`` if given: how a worker finds runs a dead local process left."""


@define
class Candidate:
    """A due run as a claim sees it."""

    run_id: str
    due_at: float  # epoch seconds: the longest due first
    order: int  # creation order, to break ties
    queue: str | None = None
    priority: int = 0
    partition: str | None = None
    pending: bool = False


@define
class QueueLoad:
    """What the limited queues hold now: the store counts it under the claim's lock.

    ``running``: runs under a live lease per queue; ``partitions``: the same per
    ``(queue, partition)``; ``mine``: per queue, those the claiming worker holds;
    ``starts``: per rate-limited queue, runs first claimed within its period.
    """

    running: Counter[str] = field(factory=Counter)
    partitions: Counter[tuple[str, str]] = field(factory=Counter)
    mine: Counter[str] = field(factory=Counter)
    starts: Counter[str] = field(factory=Counter)


def blocked_queues(limits: Mapping[str, QueueLimits], load: QueueLoad) -> set[str]:
    """The queues from which nothing may be claimed now (paused, or a queue-wide limit
    reached): a store leaves their runs out of the candidates it reads."""
    blocked = set()
    for name, lim in limits.items():
        if (
            lim.paused
            or (lim.concurrency is not None and load.running[name] >= lim.concurrency)
            or (lim.per_worker is not None and load.mine[name] >= lim.per_worker)
        ):
            blocked.add(name)
    return blocked


def plan_claims(
    candidates: Sequence[Candidate],
    limits: Mapping[str, QueueLimits],
    load: QueueLoad,
    limit: int,
    queues: Collection[str] | None = None,
) -> list[Candidate]:
    """The candidates to claim, at most ``limit``: by priority (higher first), then the
    longest due, skipping any whose queue or partition is at a limit, counting each
    one taken against the limits as it goes. ``load`` is updated in place."""
    chosen: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (-c.priority, c.due_at, c.order)):
        if len(chosen) >= limit:
            break
        name = cand.queue
        if queues is not None and name not in queues:
            continue
        lim = limits.get(name) if name is not None else None
        if lim is not None and not _fits(cand, lim, load):
            continue
        if name is not None:
            load.running[name] += 1
            load.mine[name] += 1
            if cand.partition is not None:
                load.partitions[(name, cand.partition)] += 1
            if cand.pending:
                load.starts[name] += 1
        chosen.append(cand)
    return chosen


def _fits(cand: Candidate, lim: QueueLimits, load: QueueLoad) -> bool:
    name = lim.name
    if lim.paused:
        return False
    if lim.concurrency is not None and load.running[name] >= lim.concurrency:
        return False
    if lim.per_worker is not None and load.mine[name] >= lim.per_worker:
        return False
    if (
        lim.partition_concurrency is not None
        and cand.partition is not None
        and load.partitions[(name, cand.partition)] >= lim.partition_concurrency
    ):
        return False
    return not (cand.pending and lim.rate is not None and load.starts[name] >= lim.rate)


# --- what every store writes and reads the same way -------------------------------------


def queue_body(limits: QueueLimits) -> str:
    """A queue's limits as the JSON text a store keeps."""
    return json.dumps(limits.to_dict())


def limited_queues(bodies: Iterable[str]) -> dict[str, QueueLimits]:
    """The queues (from their stored bodies) whose limits a claim must apply, by name."""
    limits = (converter.structure(json.loads(body), QueueLimits) for body in bodies)
    return {lim.name: lim for lim in limits if lim.limited}


def worker_body(info: WorkerInfo) -> str:
    """A worker's record as the JSON text a store keeps (without ``holds``: those are
    read off the leases when listed)."""
    body = info.to_dict()
    body["holds"] = []
    return json.dumps(body)


def roster(bodies: Iterable[str], holders: Iterable[tuple[str, str]]) -> list[WorkerInfo]:
    """The workers of stored ``bodies`` (in their order), each with the runs it holds:
    ``holders`` are ``(lease owner, run id)`` pairs."""
    holds: dict[str, list[str]] = {}
    for owner, run_id in holders:
        holds.setdefault(owner, []).append(run_id)
    found = []
    for body in bodies:
        info = converter.structure(json.loads(body), WorkerInfo)
        info.holds = sorted(holds.get(info.worker_id, ()))
        found.append(info)
    return found


def leased(
    taken: Iterable[tuple[str, int]], owner: str, host: str, pid: int, expires_at: datetime
) -> list[Claim]:
    """The claims of runs leased to ``owner`` (``(run_id, token)`` pairs)."""
    return [
        Claim(run_id, Lease(owner=owner, host=host, pid=pid, expires_at=expires_at, token=t))
        for run_id, t in taken
    ]
