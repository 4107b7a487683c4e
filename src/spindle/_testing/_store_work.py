"""Claims, queues and the worker roster.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spindle._testing._store_helpers import (
    T0,
    at,
    state,
)
from spindle.core.model import (
    QueueLimits,
    QueueSpot,
    RunStatus,
    WaitReason,
    WaitState,
    WorkerInfo,
)
from spindle.core.store import Commit, Store


async def claim(store: Store, owner: str = "w1", now: float = 0, **kw: Any) -> list[str]:
    kw.setdefault("ttl", 30.0)
    kw.setdefault("limit", 100)
    claims = await store.claim_runs(at(now), owner=owner, host="h", pid=1, **kw)
    for c in claims:
        assert c.lease.owner == owner and c.lease.token >= 1
    return [c.run_id for c in claims]


async def queued(
    store: Store, run_id: str, queue: str | None, *, created: float = 0, **spot: Any
) -> None:
    s = state(run_id, created_at=at(created))
    if queue is not None:
        s.queue = QueueSpot(queue, **spot)
    await store.commit(Commit(s, create=True))


class WorkContract:
    """A store leases due runs in one transaction under each queue's limits."""

    async def test_a_claim_leases_due_runs_once(self, store: Store) -> None:
        """Due runs (pending, timer due, lease expired) are leased to the first claimer;
        a second claimer gets none of them while the leases live, all after they expire."""
        await queued(store, "p1", None, created=1)
        await queued(store, "p2", None, created=2)
        await store.commit(
            Commit(
                state(
                    "t1",
                    status=RunStatus.WAITING,
                    waits=[WaitState(key="t", reason=WaitReason.TIMER, node_id="n", due_at=at(5))],
                ),
                create=True,
            )
        )
        await store.commit(Commit(state("done", status=RunStatus.COMPLETED), create=True))
        assert await claim(store, "w1", now=0) == ["p1", "p2"]  # the timer is not due yet
        assert await claim(store, "w2", now=1) == []
        assert await claim(store, "w2", now=10) == ["t1"]
        # The first leases expired at 30: the runs are due again (their drivers died).
        await store.commit(Commit(state("p1", status=RunStatus.RUNNING)))
        assert sorted(await claim(store, "w3", now=31)) == ["p1", "p2"]
        lease = await store.get_lease("p1")
        assert lease is not None and lease.owner == "w3" and lease.token == 2

    async def test_a_claim_takes_no_more_than_asked_and_the_longest_due_first(
        self, store: Store
    ) -> None:
        for i in range(5):
            await queued(store, f"r{i}", None, created=i)
        assert await claim(store, limit=2) == ["r0", "r1"]
        assert await claim(store, "w2", limit=10) == ["r2", "r3", "r4"]

    async def test_priority_goes_first_then_age(self, store: Store) -> None:
        await queued(store, "old-low", "q", created=0, priority=0)
        await queued(store, "new-high", "q", created=5, priority=9)
        await queued(store, "mid", None, created=1)
        assert await claim(store, limit=3) == ["new-high", "old-low", "mid"]

    async def test_queue_concurrency_holds_across_owners(self, store: Store) -> None:
        await store.set_queue(QueueLimits("q", concurrency=2))
        for i in range(5):
            await queued(store, f"q{i}", "q", created=i)
        await queued(store, "free", None, created=9)
        assert await claim(store, "w1") == ["q0", "q1", "free"]
        assert await claim(store, "w2") == []
        # One run ends: its lease goes with its last commit, and a slot opens.
        await store.commit(
            Commit(state("q0", status=RunStatus.COMPLETED), release_lease=True, token=1)
        )
        assert await claim(store, "w2") == ["q2"]
        assert await claim(store, "w3") == []

    async def test_per_worker_and_partition_limits(self, store: Store) -> None:
        await store.set_queue(QueueLimits("q", per_worker=2, partition_concurrency=1))
        for i, tenant in enumerate(["a", "a", "b", "c", "b"]):
            await queued(store, f"r{i}", "q", created=i, partition=tenant)
        assert await claim(store, "w1") == ["r0", "r2"]  # per worker 2; r1 shares a's slot
        assert await claim(store, "w2") == ["r3"]  # a and b are full; c is free
        assert await claim(store, "w3") == []

    async def test_a_rate_limit_counts_starts_in_its_period(self, store: Store) -> None:
        await store.set_queue(QueueLimits("q", rate=2, period=60))
        for i in range(4):
            await queued(store, f"r{i}", "q", created=i)
        assert await claim(store, "w1", now=0, ttl=600) == ["r0", "r1"]
        assert await claim(store, "w2", now=30) == []  # two started within the minute
        assert await claim(store, "w2", now=61) == ["r2", "r3"]

    async def test_a_paused_queue_gives_nothing_and_limits_change_at_once(
        self, store: Store
    ) -> None:
        await store.set_queue(QueueLimits("q", paused=True))
        await queued(store, "r1", "q")
        await queued(store, "r2", "q", created=1)
        assert await claim(store) == []
        await store.set_queue(QueueLimits("q", concurrency=1))
        assert await claim(store) == ["r1"]
        assert [q.to_dict() for q in await store.get_queues()] == [
            QueueLimits("q", concurrency=1).to_dict()
        ]

    async def test_a_claim_of_some_queues_leaves_the_others(self, store: Store) -> None:
        await queued(store, "a1", "a")
        await queued(store, "b1", "b", created=1)
        await queued(store, "none", None, created=2)
        assert await claim(store, "w1", queues=["b"]) == ["b1"]
        assert await claim(store, "w1", queues=[]) == []
        assert await claim(store, "w2") == ["a1", "none"]

    async def test_queue_counts_tell_waiting_and_driven(self, store: Store) -> None:
        await store.set_queue(QueueLimits("empty"))
        for i in range(3):
            await queued(store, f"r{i}", "q", created=i)
        await claim(store, limit=1)
        assert await store.queue_counts(at(1)) == {"empty": (0, 0), "q": (2, 1)}

    async def test_the_worker_roster_and_held_leases(self, store: Store) -> None:
        info = WorkerInfo("w1", "h", 11, T0, T0, 4, ["q"])
        await store.put_worker(info)
        await store.put_worker(WorkerInfo("w0", "other", 12, T0, at(1), 2))
        await queued(store, "r1", None)
        await queued(store, "r2", None, created=1)
        await claim(store, "w1")
        workers = await store.list_workers()
        assert [(w.worker_id, w.holds) for w in workers] == [("w0", []), ("w1", ["r1", "r2"])]
        assert workers[1].queues == ["q"] and workers[1].concurrency == 4
        info.seen_at = at(20)
        await store.put_worker(info)  # a heartbeat
        assert (await store.list_workers())[1].seen_at == at(20)
        held = await store.held_leases(host="h")
        assert sorted(r for r, _ in held) == ["r1", "r2"]
        assert await store.held_leases(host="elsewhere") == []
        await store.remove_worker("w1")
        await store.remove_worker("nobody")
        assert [w.worker_id for w in await store.list_workers()] == ["w0"]

    async def test_a_queued_run_keeps_its_spot(self, store: Store) -> None:
        await queued(store, "r1", "q", priority=3, partition="t")
        loaded = await store.load_run("r1")
        assert loaded.queue == QueueSpot("q", 3, "t")
        await store.commit(Commit(state("r1", status=RunStatus.RUNNING, queue=loaded.queue)))
        assert (await store.load_run("r1")).queue == QueueSpot("q", 3, "t")

    async def test_claims_at_once_never_share_a_run_or_pass_a_limit(self, store: Store) -> None:
        """Eight claimers at once (concurrent transactions on the durable stores)."""
        await store.set_queue(QueueLimits("q", concurrency=3))
        for i in range(20):
            await queued(store, f"q{i}", "q", created=i)
            await queued(store, f"f{i}", None, created=i)
        got = await asyncio.gather(*(claim(store, f"w{i}", limit=4) for i in range(8)))
        taken = [r for ids in got for r in ids]
        assert len(taken) == len(set(taken))
        assert sum(r.startswith("q") for r in taken) == 3
