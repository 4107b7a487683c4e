"""Helpers of the store contract suite: fixed times, states, waits, leases, ledger chains.

They build the plain values the contract tests commit; a store's own tests
may use them too (``from spindle._testing._store_helpers import state``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from spindle.core.model import RunState, StepKind, StepRecord, StepStatus, WaitReason, WaitState
from spindle.core.store import Store

__all__ = ["T0", "Chain", "at", "chain", "event_wait", "lease", "state", "timer_wait"]

#: The contract's fixed "now": tests never read the clock.
T0 = datetime(2030, 1, 1, tzinfo=UTC)
#: ``chain(run_id, count, start=0, head="")``, the ``chain`` fixture's type.
Chain = Callable[..., list[StepRecord]]


def at(seconds: float) -> datetime:
    """``seconds`` after :data:`T0`."""
    return T0 + timedelta(seconds=seconds)


def state(run_id: str = "r1", **changes: Any) -> RunState:
    """A pending run of workflow ``wf`` created at :data:`T0`, with ``changes``."""
    changes.setdefault("workflow", "wf")
    changes.setdefault("created_at", T0)
    changes.setdefault("updated_at", T0)
    return RunState(run_id=run_id, **changes)


def event_wait(key: str, event_key: str, since: float = 0) -> WaitState:
    """A wait ``key`` for the event ``event_key``, made ``since`` seconds after T0."""
    return WaitState(
        key=key, reason=WaitReason.EVENT, node_id="n", event_key=event_key, created_at=at(since)
    )


def timer_wait(due: float) -> WaitState:
    """A timer wait ``t`` due ``due`` seconds after T0."""
    return WaitState(key="t", reason=WaitReason.TIMER, node_id="n", due_at=at(due))


async def lease(store: Store, run_id: str = "r1", owner: str = "w1", **kw: Any) -> Any:
    """Acquire the lease of ``run_id`` for ``owner`` (30 s, at T0 unless told)."""
    kw.setdefault("ttl", 30.0)
    kw.setdefault("now", T0)
    return await store.acquire_lease(run_id, owner=owner, host="h", pid=1, **kw)


def chain(run_id: str, count: int, *, start: int = 0, head: str = "") -> list[StepRecord]:
    """Records ``start..start+count-1`` of ``run_id`` continuing a ledger whose head is ``head``."""
    records = []
    for seq in range(start, start + count):
        record_hash = hashlib.sha256(f"{run_id}:{seq}:{head}".encode()).hexdigest()
        records.append(
            StepRecord(
                run_id=run_id,
                seq=seq,
                node_id=f"node{seq}",
                kind=StepKind.NODE,
                status=StepStatus.COMPLETED,
                idempotency_key=f"{run_id}:node{seq}:0",
                result={"seq": seq},
                prev_hash=head,
                record_hash=record_hash,
            )
        )
        head = record_hash
    return records
