"""Events for a busy run: queued for it (never lost, never another run's), taken in the
commit that records the answer — from another engine, from the engine driving the run,
and in the window where the drive stops just as the event arrives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar

from attrs import define

from spindle import Middleware, RunStatus, Workflow
from spindle.core.engine._delivery import deliver
from spindle.core.model import RunState, WaitReason, WaitState
from spindle.core.store import Commit
from spindle.plugins.stores.memory import MemoryStore

from .conftest import run


def busy_workflow(release: asyncio.Event, started: asyncio.Event) -> Workflow:
    """A wait on ``k1`` beside a node that runs until ``release`` is set."""
    wf = Workflow("busy")
    wf.effect("gate", {"kind": "wait_event", "key": "k1"})

    @wf.node
    async def work() -> str:
        started.set()
        await release.wait()
        return "done"

    return wf


def lone_wait() -> Workflow:
    wf = Workflow("later")
    wf.effect("gate", {"kind": "wait_event", "key": "k1"})
    return wf


async def _waiting_on_k1(engine: Any) -> str:
    while not (waiting := await engine.store.waiting_on("k1")):
        await asyncio.sleep(0.01)
    return str(waiting[0])


def test_an_event_for_a_run_this_engine_drives_is_queued_and_taken(store_url, make_engine):
    """The engine's own busy run: deliver() says queued_for; the run ends with the payload,
    and a run that starts waiting on the key meanwhile does not get it."""

    async def main():
        release, started = asyncio.Event(), asyncio.Event()
        async with make_engine(store_url) as engine:
            task = asyncio.create_task(engine.run(busy_workflow(release, started)))
            await started.wait()
            run_id = await _waiting_on_k1(engine)
            sent = await engine.deliver("k1", {"paid": 1})
            later = await engine.run(lone_wait())  # starts waiting while the event is queued
            release.set()
            state = await task
            return run_id, sent, state, later, await engine.pending_events()

    run_id, sent, state, later, pending = run(main())
    assert (sent.resumed, sent.queued_for) == ([], run_id)
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"gate": {"paid": 1}, "work": "done"}
    assert later.status == RunStatus.WAITING
    assert pending == []


def test_an_event_from_another_engine_is_queued_for_the_busy_run(sqlite_url, make_engine):
    """Two engines on one SQLite file: the emitting one cannot take the lease, so the
    event is queued for the run, which takes it; emit() resumed nothing now."""

    async def main():
        release, started = asyncio.Event(), asyncio.Event()
        async with make_engine(sqlite_url) as driving, make_engine(sqlite_url) as other:
            task = asyncio.create_task(driving.run(busy_workflow(release, started)))
            await started.wait()
            run_id = await _waiting_on_k1(other)
            resumed = await other.emit("k1", {"paid": 1})
            [queued] = await other.pending_events("k1")
            release.set()
            return run_id, resumed, queued, await task

    run_id, resumed, queued, state = run(main())
    assert resumed == []
    assert queued.run_id == run_id
    assert state.status == RunStatus.COMPLETED
    assert state.output["gate"] == {"paid": 1}


@define
class EmitAsTheDriveStops(Middleware, kind="test_emit_as_the_drive_stops"):
    """Plays an emitter that found the lease held in the instant the drive stopped to wait:
    the event is in the inbox, queued for the run, once the drive has returned."""

    stages: ClassVar[frozenset[str]] = frozenset({"run"})
    store: Any = None

    async def __call__(self, call_next: Any, state: Any) -> Any:
        result = await call_next(state)
        if result.status is RunStatus.WAITING and self.store is not None:
            store, self.store = self.store, None
            await store.deliver_event("k1", {"late": True}, run_id=result.run_id)
        return result


def test_an_event_queued_as_the_drive_stops_is_taken_after_the_lease_is_released(
    store_url, make_engine
):
    """The drive looks in the inbox once more after releasing the lease, so an event that
    arrived while it was stopping is not left waiting for a drive that never comes."""
    late = EmitAsTheDriveStops()

    async def main():
        async with make_engine(store_url, middleware=[late]) as engine:
            late.store = engine.store
            return await engine.run(lone_wait()), await engine.pending_events()

    state, pending = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"gate": {"late": True}}
    assert pending == []


def test_an_event_taken_while_emit_looks_further_is_reported_as_delivered():
    """When the longest-waiting run takes the event from the inbox itself while emit's
    drive of it answered nothing, emit says it went to that run, not that it is kept."""
    store = MemoryStore()
    since = datetime(2030, 1, 1, tzinfo=UTC)

    def waiting(run_id: str, seconds: int) -> RunState:
        wait = WaitState(
            key="w",
            reason=WaitReason.EVENT,
            node_id="n",
            event_key="k",
            created_at=since.replace(second=seconds),
        )
        return RunState(run_id=run_id, workflow="wf", waits=[wait])

    class TakesItItself:
        """r1's drive answers nothing, but r1 consumes the event meanwhile."""

        async def drive(self, run_id: str, *, answer: Any) -> None:
            if run_id == "r1":
                await store.commit(Commit(RunState("r1", "wf"), consume_events=answer.consume))

    async def main():
        await store.commit(Commit(waiting("r1", 1), create=True))
        await store.commit(Commit(waiting("r2", 2), create=True))
        return await deliver(store, TakesItItself(), "k", {"n": 1})  # type: ignore[arg-type]

    sent = run(main())
    assert (sent.resumed, sent.queued_for) == (["r1"], None)
