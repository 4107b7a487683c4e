"""``spindle.Worker`` in a host application: claims, worker ids, queues, stopping.

The worker runs on the test's own event loop against each store; what it did is
read back from the store (ledgers, leases, the roster).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from spindle import QueueLimits, QueueSpot, Worker
from spindle.core.engine import Engine
from spindle.core.model import RunStatus, utcnow
from spindle.core.workflow import Workflow

from .conftest import run

GATE: dict[str, asyncio.Event] = {}


def _quick() -> Workflow:
    wf = Workflow("quick", inputs={"n": 1})

    @wf.node
    def double(n: int) -> int:
        return n * 2

    return wf


def _held() -> Workflow:
    """A node that waits (in the event loop) until the test opens its gate."""
    wf = Workflow("held")

    @wf.node
    async def hold() -> str:
        await GATE["open"].wait()
        return "opened"

    return wf


def test_a_worker_drives_what_is_due_and_signs_every_record(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    seen: list[Any] = []

    async def main() -> None:
        wf = _quick()
        async with make_engine(store_url, observers=[seen.append]) as engine:
            ids = [await engine.start(wf, {"n": i}) for i in range(5)]
            worker = Worker(engine, concurrency=2, worker_id="host-a:1:w1")
            stats = await worker.run(once=True)
            assert stats.driven == 5
            for i, run_id in enumerate(ids):
                state = await engine.get_run(run_id)
                assert (state.status, state.output) == (RunStatus.COMPLETED, {"double": i * 2})
                assert {r.worker for r in await engine.ledger(run_id)} == {"host-a:1:w1"}
                assert await engine.store.get_lease(run_id) is None
            assert await engine.store.list_workers() == []  # it left the roster

    run(main())
    assert seen and {e.worker for e in seen} == {"host-a:1:w1"}


def test_a_worker_of_some_queues_leaves_the_others(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> None:
        wf = _quick()
        async with make_engine(store_url) as engine:
            mail = await engine.start(wf, queue="mail")
            bulk = await engine.start(wf, queue=QueueSpot("bulk", priority=3, partition="t1"))
            free = await engine.start(wf)
            await Worker(engine, queues=["mail"]).run(once=True)
            status = {r: (await engine.get_run(r)).status for r in (mail, bulk, free)}
            assert status == {
                mail: RunStatus.COMPLETED,
                bulk: RunStatus.PENDING,
                free: RunStatus.PENDING,
            }
            assert (await engine.get_run(bulk)).queue == QueueSpot("bulk", 3, "t1")

    run(main())


def test_stop_lets_a_run_finish_within_the_grace(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> None:
        GATE["open"] = asyncio.Event()
        async with make_engine(store_url, workflows={"held": _held()}) as engine:
            run_id = await engine.start(_held())
            worker = Worker(engine, grace=30, poll=0.05)
            task = asyncio.ensure_future(worker.run())
            while not worker.running:
                await asyncio.sleep(0.01)
            listed = await engine.store.list_workers()
            assert [(w.worker_id, w.holds) for w in listed] == [(worker.worker_id, [run_id])]
            worker.stop()
            await asyncio.sleep(0.1)
            assert not task.done()  # still finishing the run in flight
            GATE["open"].set()
            stats = await task
            assert (stats.driven, stats.handed_back) == (1, 0)
            assert (await engine.get_run(run_id)).status is RunStatus.COMPLETED

    run(main())


def test_stop_past_the_grace_hands_the_run_back_due_at_once(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> None:
        GATE["open"] = asyncio.Event()
        async with make_engine(store_url, workflows={"held": _held()}) as engine:
            run_id = await engine.start(_held())
            worker = Worker(engine, grace=0.05, poll=0.05)
            task = asyncio.ensure_future(worker.run())
            while not worker.running:
                await asyncio.sleep(0.01)
            worker.stop()
            stats = await task
            assert (stats.driven, stats.handed_back) == (0, 1)
            lease = await engine.store.get_lease(run_id)
            assert lease is not None and lease.expires_at <= utcnow()
            assert run_id in await engine.store.due_runs(utcnow())
            GATE["open"].set()
            again = await Worker(engine).run(once=True)
            assert again.driven == 1
            assert (await engine.get_run(run_id)).output == {"hold": "opened"}

    run(main())


def test_a_run_that_cannot_be_driven_is_reported_and_not_claimed_again(
    sqlite_url: str, make_engine: Callable[..., Engine]
) -> None:
    notes: list[str] = []

    class Report:
        def offered(self, run_id: str) -> None:
            pass

        def ended(self, run_id: str, state: Any) -> None:
            pass

        def note(self, run_id: str | None, text: str) -> None:
            notes.append(text)

    async def main() -> None:
        async with make_engine(sqlite_url) as engine:
            run_id = await engine.start(_quick())
        # Another engine (another process, as it were) cannot import the stored node's
        # function (it was defined inside a test function): the drive fails, and the
        # worker goes on instead of claiming the run again and again.
        async with make_engine(sqlite_url) as engine:
            stats = await Worker(engine, report=Report()).run(once=True)
            assert stats.driven == 0
            assert (await engine.get_run(run_id)).status is RunStatus.PENDING
            assert run_id not in await engine.store.due_runs(utcnow())  # parked a while

    run(main())
    assert any("cannot be driven here" in n for n in notes), notes


def test_queue_limits_hold_for_workers_sharing_an_engine_store(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> None:
        GATE["open"] = asyncio.Event()
        async with make_engine(store_url, workflows={"held": _held()}) as engine:
            await engine.store.set_queue(QueueLimits("q", concurrency=1))
            ids = [await engine.start(_held(), queue="q") for _ in range(3)]
            worker = Worker(engine, concurrency=3, poll=0.02)
            task = asyncio.ensure_future(worker.run())
            while not worker.running:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert len(worker.running) == 1  # three slots, a queue of one
            GATE["open"].set()
            while [r for r in ids if (await engine.get_run(r)).status is not RunStatus.COMPLETED]:
                await asyncio.sleep(0.02)
            worker.stop()
            assert (await task).driven == 3

    run(main())


@pytest.mark.parametrize("bad", ["--once", "a b", "x" * 201, "tab\there"])
def test_a_bad_worker_id_is_refused(bad: str) -> None:
    engine = Engine("memory://")
    with pytest.raises(ValueError, match="worker id"):
        Worker(engine, worker_id=bad)
    with pytest.raises(ValueError, match="concurrency"):
        Worker(engine, concurrency=0)


def test_a_dead_holder_on_this_host_is_taken_over_at_once_one_elsewhere_only_after_expiry(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """A lease whose holder was a process of this host that is gone is taken at once;
    one held from another host (whose processes this worker cannot see) waits out its
    lease, however dead its pid may look here."""
    dead_pid = 2**22 + 12345  # above any pid this machine hands out

    async def main() -> None:
        async with make_engine(store_url) as engine:
            here = await engine.start(_quick())
            there = await engine.start(_quick())
            for run_id, host in ((here, engine.host), (there, "another-host")):
                lease = await engine.store.acquire_lease(
                    run_id, owner="gone", host=host, pid=dead_pid, ttl=600, now=utcnow()
                )
                assert lease is not None
            stats = await Worker(engine).run(once=True)
            assert (stats.driven, stats.taken_over) == (1, 1)
            assert (await engine.get_run(here)).status is RunStatus.COMPLETED
            assert (await engine.get_run(there)).status is RunStatus.PENDING
            held = await engine.store.get_lease(there)
            assert held is not None and held.owner == "gone"

    run(main())
