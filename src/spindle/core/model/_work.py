"""Work distribution: queues, their limits, workers, and the runs workers claim.

A run started on a queue (:class:`QueueSpot`) waits there until a worker
claims it; the queue's :class:`QueueLimits` say how many of its runs may be
driven at once (by all workers, by one worker, per partition) and how many
may start per period. Workers announce themselves (:class:`WorkerInfo`) so
``spindle workers`` can list them with what they hold.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import define, field

if TYPE_CHECKING:  # _run imports QueueSpot from here
    from spindle.core.model._run import Lease

__all__ = ["Claim", "QueueLimits", "QueueSpot", "WorkerInfo", "check_queue_name", "check_worker_id"]

_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")


def check_worker_id(worker_id: str) -> str:
    """Return ``worker_id`` if it may name a worker; raise ``ValueError`` saying why not."""
    if not isinstance(worker_id, str) or not _WORKER_ID.fullmatch(worker_id):
        raise ValueError(
            f"worker id {worker_id!r} is not valid: use 1-200 letters, digits, '.', '_', ':', "
            "'@' or '-', starting with a letter or digit"
        )
    return worker_id


def check_queue_name(name: str) -> str:
    """Return ``name`` if it may name a queue; raise ``ValueError`` saying why not."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ValueError(
            f"queue name {name!r} is not valid: use 1-100 letters, digits, '.', '_', ':' or "
            "'-', starting with a letter or digit"
        )
    return name


@define(frozen=True)
class QueueSpot:
    """Where a run waits for a worker: its queue, its priority there (higher first) and
    its partition (runs of one partition, e.g. one tenant, share the partition limit)."""

    name: str
    priority: int = 0
    partition: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spot as JSON-ready data (what the converter gives)."""
        return {"name": self.name, "partition": self.partition, "priority": self.priority}


@define
class QueueLimits:
    """The limits of one queue, enforced by the store when workers claim runs.

    ``concurrency``: runs of the queue driven at once by all workers;
    ``per_worker``: by one worker; ``partition_concurrency``: of one partition;
    ``rate`` starts per ``period`` seconds (a run starts when it is first
    claimed). None means no limit. A run counts as driven while a worker holds
    its lease: a run waiting for an event or a timer holds no slot.
    """

    name: str
    concurrency: int | None = None
    per_worker: int | None = None
    rate: int | None = None
    period: float = 60.0
    partition_concurrency: int | None = None
    paused: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The limits as JSON-ready data."""
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "per_worker": self.per_worker,
            "rate": self.rate,
            "period": self.period,
            "partition_concurrency": self.partition_concurrency,
            "paused": self.paused,
        }

    @property
    def limited(self) -> bool:
        """Whether any limit applies (else claims need not look at the queue's load)."""
        return self.paused or any(
            v is not None
            for v in (self.concurrency, self.per_worker, self.rate, self.partition_concurrency)
        )


@define
class WorkerInfo:
    """A worker as it announces itself in the store (refreshed with its heartbeat).

    ``queues`` is None for a worker that claims runs of every queue (and runs on
    none); ``holds`` lists the runs whose lease it holds (filled in when listed).
    """

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    concurrency: int
    queues: list[str] | None = None
    stopping: bool = False
    ttl: float = 30.0
    holds: list[str] = field(factory=list)

    def live(self, now: datetime) -> bool:
        """Whether the worker refreshed its record within its lease life (a worker that
        was killed stops refreshing it; one that stopped removes it)."""
        return (now - self.seen_at).total_seconds() <= self.ttl

    def to_dict(self) -> dict[str, Any]:
        """The worker as JSON-ready data (``spindle workers --json``)."""
        return {
            "worker_id": self.worker_id,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "seen_at": self.seen_at.isoformat(),
            "concurrency": self.concurrency,
            "queues": self.queues,
            "stopping": self.stopping,
            "ttl": self.ttl,
            "holds": list(self.holds),
        }


@define(frozen=True)
class Claim:
    """A run a worker claimed: its id and the lease the claim took on it."""

    run_id: str
    lease: Lease
