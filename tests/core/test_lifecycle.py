"""Run lifecycles in the engine: answering waits, cancelling wherever a run is driven,
runs whose every path failed, what a finishing run's snapshot holds, handoffs once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from attrs import define

from spindle import (
    InvalidAnswer,
    LifecycleEventType,
    RunStatus,
    ValidationError,
    Workflow,
    hookimpl,
)
from spindle.core.errors import LeaseLost
from spindle.core.model import cancel_request_key
from spindle.plugins.stores.memory import MemoryStore

from .conftest import run


def sleepy(seconds: float = 30.0) -> Workflow:
    """One async node that sleeps (cancellable), then one more."""
    wf = Workflow("sleepy")

    @wf.node
    async def nap() -> str:
        await asyncio.sleep(seconds)
        return "rested"

    @wf.node
    def after(nap: str) -> str:
        return nap + "!"

    return wf


def asking() -> Workflow:
    wf = Workflow("asking")
    wf.effect("approve", {"kind": "ask_user", "prompt": "ok?", "choices": ["yes", "no"]})

    @wf.node
    def done(approve: str) -> str:
        return f"said {approve}"

    wf.output = "done"
    return wf


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# --- answering a wait costs one load and one ledger read --------------------------------


@define
class CountingStore(MemoryStore, kind="counting"):
    """A memory store that counts run loads and ledger reads."""

    loads: int = 0
    ledgers: int = 0

    async def load_run(self, run_id: str) -> Any:
        self.loads += 1
        return await super().load_run(run_id)

    async def ledger(self, run_id: str) -> Any:
        self.ledgers += 1
        return await super().ledger(run_id)


def test_answering_a_wait_loads_the_run_once_and_reads_the_ledger_once(make_engine):
    """resume takes the lease, loads the run and its ledger once, and drives on."""
    store = CountingStore(url="counting://")

    async def main():
        async with make_engine(store) as engine:
            state = await engine.run(asking())
            store.loads = store.ledgers = 0
            return await engine.resume(state.run_id, "approve", "yes")

    done = run(main())
    assert done.status == RunStatus.COMPLETED and done.output == "said yes"
    assert (store.loads, store.ledgers) == (1, 1)


# --- cancelling a run this engine drives ------------------------------------------------


def test_cancelling_a_run_driven_by_the_same_engine_stops_it_now(store_url, make_engine):
    """A host app's cancel stops the running task and ends the run cancelled."""

    async def main():
        async with make_engine(store_url) as engine:
            task = asyncio.ensure_future(engine.run(sleepy(), run_id="r1"))
            await _until(lambda: _status_is(engine, "r1", RunStatus.RUNNING))
            started = time.monotonic()
            cancelled = await engine.cancel("r1", "not needed")
            driven = await task
            return cancelled, driven, time.monotonic() - started, await engine.ledger("r1")

    cancelled, driven, took, records = run(main())
    assert cancelled.status == driven.status == RunStatus.CANCELLED
    assert driven.error == "not needed"
    assert took < 5
    assert records[-1].status == "cancelled" and records[-1].kind == "run"


async def _status_is(engine: Any, run_id: str, status: RunStatus) -> bool:
    try:
        return (await engine.get_run(run_id)).status == status
    except KeyError:
        return False


def test_a_cancel_interrupts_a_timer_awaited_in_process(store_url, make_engine):
    """A short timer the driver sleeps through in-process does not delay a cancel."""
    wf = Workflow("napping")
    wf.effect("nap", {"kind": "wait_until", "seconds": 20})

    async def main():
        async with make_engine(store_url) as engine:
            task = asyncio.ensure_future(engine.run(wf, run_id="r1"))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await engine.cancel("r1", "no time")
            driven = await task
            return driven, time.monotonic() - started

    driven, took = run(main())
    assert driven.status == RunStatus.CANCELLED and driven.error == "no time"
    assert took < 5


def test_a_cancel_request_from_another_engine_reaches_the_driver(sqlite_url, make_engine):
    """Another engine (another process) asks through the inbox; the driver records it."""

    async def main():
        async with make_engine(sqlite_url) as driving, make_engine(sqlite_url) as other:
            task = asyncio.ensure_future(driving.run(sleepy(), run_id="r1"))
            await _until(lambda: _status_is(other, "r1", RunStatus.RUNNING))
            started = time.monotonic()
            cancelled = await other.cancel("r1", "from elsewhere")
            driven = await task
            left = await other.pending_events(None)
            requests = await other.store.pending_events(cancel_request_key("r1"))
            return cancelled, driven, time.monotonic() - started, left, requests

    cancelled, driven, took, left, requests = run(main())
    assert cancelled.status == driven.status == RunStatus.CANCELLED
    assert driven.error == "from elsewhere"
    assert took < 5
    assert left == [] and requests == []  # the request was consumed with the cancel


def test_a_driver_that_does_not_answer_loses_the_run_and_cannot_write(sqlite_url, make_engine):
    """Past cancel_grace the canceller takes the lease; the old driver's write is refused."""

    async def main():
        async with (
            make_engine(sqlite_url, cancel_grace=0) as other,
            make_engine(sqlite_url, lease_ttl=300) as driving,
        ):
            task = asyncio.ensure_future(driving.run(sleepy(0.8), run_id="r1"))
            await _until(lambda: _status_is(other, "r1", RunStatus.RUNNING))
            cancelled = await other.cancel("r1", "taken over")
            driven = await task  # its next commit is refused: it reports the cancel
            return cancelled, driven, await other.verify_ledger("r1"), await other.ledger("r1")

    cancelled, driven, verified, records = run(main())
    assert cancelled.status == RunStatus.CANCELLED
    assert driven.status == RunStatus.CANCELLED and driven.error == "taken over"
    assert verified.ok
    assert [r.node_id for r in records if r.kind == "node"] == []  # nap's result never landed


def test_a_stale_holder_gets_lease_lost_when_the_run_goes_on_elsewhere(sqlite_url, make_engine):
    """A driver whose lease was taken over by a live driver stops with LeaseLost."""

    async def main():
        async with (
            make_engine(sqlite_url, lease_ttl=300) as first,
            make_engine(sqlite_url) as second,
        ):
            wf = sleepy(0.5)
            task = asyncio.ensure_future(first.run(wf, run_id="r1"))
            await _until(lambda: _status_is(second, "r1", RunStatus.RUNNING))
            lease = await second.services.leases.take_over("r1")
            assert lease is not None
            with pytest.raises(LeaseLost):
                await task
            await second.services.leases.release("r1", lease.token)
            return await second.drive("r1", workflow=wf)

    final = run(main())
    assert final.status == RunStatus.COMPLETED


def test_a_second_drive_in_the_same_engine_is_refused_and_harms_nothing(store_url, make_engine):
    """Driving a run this engine drives already raises LeaseHeld; the first drive goes on."""
    from spindle.core.errors import LeaseHeld

    async def main():
        async with make_engine(store_url) as engine:
            wf = sleepy(0.3)
            task = asyncio.ensure_future(engine.run(wf, run_id="r1"))
            await _until(lambda: _status_is(engine, "r1", RunStatus.RUNNING))
            with pytest.raises(LeaseHeld, match="already being driven by this engine"):
                await engine.drive("r1", workflow=wf)
            with pytest.raises(LeaseHeld):
                await engine.resume("r1")
            return await task

    assert run(main()).status == RunStatus.COMPLETED


def test_a_resume_waits_its_turn_while_another_process_holds_the_run(sqlite_url, make_engine):
    """An answer arriving while another process holds the run briefly is recorded after it."""

    async def main():
        async with make_engine(sqlite_url) as first, make_engine(sqlite_url) as second:
            state = await first.run(asking())
            held = await second.services.leases.try_acquire(state.run_id)
            assert held is not None
            release = asyncio.get_running_loop().call_later(
                0.3,
                lambda: asyncio.ensure_future(
                    second.services.leases.release(state.run_id, held.token)
                ),
            )
            started = time.monotonic()
            done = await first.resume(state.run_id, "approve", "yes")
            release.cancel()
            return done, time.monotonic() - started

    done, took = run(main())
    assert done.status == RunStatus.COMPLETED and done.output == "said yes"
    assert 0.25 < took < 5


# --- a cancelled or failed child settles its parent ------------------------------------


def family(tolerant: bool = False) -> tuple[Workflow, Workflow]:
    child = Workflow("child")
    child.effect("ok", {"kind": "ask_user", "prompt": "ok?"})
    parent = Workflow("parent")
    parent.effect("sub", {"kind": "subworkflow", "workflow": "child"}, continue_on_failure=tolerant)

    @parent.node
    def fallback() -> str:
        return "fallback"

    return parent, child


@pytest.mark.parametrize("tolerant", [False, True])
def test_a_cancelled_child_settles_its_waiting_parent(store_url, make_engine, tolerant):
    """The parent fails naming the child, or goes on under continue_on_failure."""
    parent, child = family(tolerant)

    async def main():
        async with make_engine(store_url, workflows={"child": child}) as engine:
            state = await engine.run(parent)
            await engine.cancel(state.waits[0].child_run_id, "no longer needed")
            return state, await engine.get_run(state.run_id)

    state, final = run(main())
    child_id = state.waits[0].child_run_id
    if tolerant:
        assert final.status == RunStatus.COMPLETED
        assert final.output == {"fallback": "fallback"}
    else:
        assert final.status == RunStatus.FAILED
        assert f"sub-workflow run {child_id} cancelled: no longer needed" in final.error


def test_a_forged_answer_to_a_subworkflow_wait_is_refused(store_url, make_engine):
    """Only the child's end answers its wait; a resume with a payload raises InvalidAnswer."""
    parent, child = family()

    async def main():
        async with make_engine(store_url, workflows={"child": child}) as engine:
            state = await engine.run(parent)
            with pytest.raises(InvalidAnswer, match="only that run's end answers it"):
                await engine.resume(state.run_id, "sub", "forged")
            with pytest.raises(InvalidAnswer):
                await engine.resume(state.run_id)
            return await engine.get_run(state.run_id)

    still = run(main())
    assert still.status == RunStatus.WAITING


def test_a_resume_settles_a_wait_whose_child_ended_unnoticed(sqlite_url, make_engine):
    """A child whose end could not reach its busy parent settles the wait on resume,
    with the child's result, whatever payload the resume carried."""
    parent, child = family()

    async def main():
        async with (
            make_engine(sqlite_url, workflows={"child": child}) as engine,
            make_engine(sqlite_url) as other,
        ):
            state = await engine.run(parent)
            child_id = state.waits[0].child_run_id
            busy = await other.services.leases.try_acquire(state.run_id)  # parent is busy
            assert busy is not None
            await engine.resume(child_id, "ok", "done")
            unnoticed = await engine.get_run(state.run_id)
            await other.services.leases.release(state.run_id, busy.token)
            settled = await engine.resume(state.run_id, "sub", "forged")
            return unnoticed, settled

    unnoticed, settled = run(main())
    assert unnoticed.status == RunStatus.WAITING
    assert settled.status == RunStatus.COMPLETED
    assert settled.output == {"sub": {"ok": "done"}, "fallback": "fallback"}


# --- every path failed -----------------------------------------------------------------


def test_a_run_whose_every_node_failed_under_continue_on_failure_fails(store_url, make_engine):
    """Tolerated failures with no completed path fail the run, naming each failed node."""
    wf = Workflow("doomed")

    @wf.node(continue_on_failure=True)
    def left() -> None:
        raise ValueError("left is down\nwith details")

    @wf.node(continue_on_failure=True)
    def right() -> None:
        raise KeyError("right")

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert state.error == (
        "every path of the run failed: node 'left' failed: ValueError: left is down; "
        "node 'right' failed: KeyError: 'right'"
    )


def test_a_failed_output_node_fails_the_run_even_when_tolerated(store_url, make_engine):
    """When the named output node failed, the run has no output: it failed."""
    wf = Workflow("no-output")

    @wf.node(continue_on_failure=True)
    def main_result() -> None:
        raise RuntimeError("gone")

    @wf.node
    def side() -> str:
        return "ok"

    wf.output = "main_result"

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "node 'main_result' failed: RuntimeError: gone" in state.error


# --- the unsettled-work snapshot -------------------------------------------------------


class Snapshot:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def spindle_on_finish(self, run: Any, output: Any, unsettled: Any) -> None:
        self.seen.append(unsettled)


def test_the_snapshot_counts_events_no_run_consumed(store_url, make_engine):
    """Events under the keys the workflow waits on, left in the inbox, are undelivered."""
    wf = Workflow("pay")
    wf.effect("paid", {"kind": "wait_event", "key": "payment"})
    hook = Snapshot()

    async def main():
        async with make_engine(store_url, hooks=[hook]) as engine:
            await engine.emit("payment", {"n": 1})
            await engine.emit("payment", {"n": 2})  # the run takes only the first
            await engine.emit("other", {"n": 3})  # not a key this workflow waits on
            state = await engine.run(wf)
            pending = await engine.pending_events("payment")
            return state, pending

    state, pending = run(main())
    assert state.status == RunStatus.COMPLETED and state.output == {"paid": {"n": 1}}
    (unsettled,) = hook.seen
    assert unsettled.undelivered_events == [pending[0].event_id]
    assert unsettled.counts["undelivered_events"] == 1


# --- handoffs happen once and are announced -----------------------------------------------


def test_a_handoff_node_announces_its_follow_on_run(store_url, make_engine):
    """handoff_created carries the envelope, the target and the follow-on run's id."""
    follow = Workflow("follow", inputs={"x": 0})

    @follow.node
    def take(x: int) -> int:
        return x + 1

    wf = Workflow("hands")
    wf.effect("give", {"kind": "handoff", "target": "follow", "payload": {"x": 1}})
    events: list[Any] = []

    async def main():
        async with make_engine(
            store_url, observers=[events.append], workflows={"follow": follow}
        ) as engine:
            state = await engine.run(wf)
            (envelope,) = await engine.store.handoffs(state.run_id)
            return state, envelope, await engine.get_run(envelope.acknowledged_run_id)

    state, envelope, follow_on = run(main())
    created = [e for e in events if e.type == LifecycleEventType.HANDOFF_CREATED]
    assert [e.run_id for e in created] == [state.run_id]
    assert created[0].payload == {
        "envelope_id": envelope.envelope_id,
        "target": "follow",
        "follow_on_run_id": follow_on.run_id,
    }
    assert follow_on.status == RunStatus.COMPLETED and follow_on.output == {"take": 2}
    sequences = [e.sequence for e in events if e.run_id == state.run_id]
    assert sequences == list(range(1, len(sequences) + 1))


def test_a_finish_hook_handoff_is_announced_with_the_runs_end(store_url, make_engine):
    """A handoff made by a finish hook is announced in the run's last commit."""
    follow = Workflow("follow", inputs={"n": 0})

    @follow.node
    def double(n: int) -> int:
        return n * 2

    class HandsOff:
        @hookimpl
        async def spindle_on_finish(self, run: Any, output: Any, unsettled: Any) -> None:
            if run.state.workflow == "first":
                await run.handoff("follow", {"n": 21})

    wf = Workflow("first")

    @wf.node
    def one() -> int:
        return 1

    events: list[Any] = []

    async def main():
        async with make_engine(
            store_url, hooks=[HandsOff()], observers=[events.append], workflows={"follow": follow}
        ) as engine:
            state = await engine.run(wf)
            (envelope,) = await engine.store.handoffs(state.run_id)
            return state, await engine.get_run(envelope.acknowledged_run_id)

    state, follow_on = run(main())
    mine = [e.type for e in events if e.run_id == state.run_id]
    assert mine[-2:] == [LifecycleEventType.HANDOFF_CREATED, LifecycleEventType.RUN_COMPLETED]
    created = next(e for e in events if e.type == LifecycleEventType.HANDOFF_CREATED)
    assert created.payload["follow_on_run_id"] == follow_on.run_id
    assert follow_on.output == {"double": 42}


# --- the inbox and secrets -----------------------------------------------------------------


def test_emitting_under_a_reserved_key_is_refused(make_engine):
    """Keys starting with 'spindle:' carry engine requests; emit refuses them."""

    async def main():
        async with make_engine("memory://") as engine:
            with pytest.raises(ValidationError, match="reserved"):
                await engine.emit("spindle:cancel:r1", {"reason": "spoofed"})
            return await engine.store.pending_events(None)

    assert run(main()) == []


def test_secrets_are_dropped_once_the_run_ends(make_engine):
    """A run's secret values live in the engine only while the run can still be driven."""
    from spindle.core.workflow import InputSpec

    wf = Workflow("secretive", inputs={"token": InputSpec(secret=True)})
    wf.effect("ok", {"kind": "ask_user", "prompt": "ok?"})

    @wf.node
    def use(ok: str, token: str) -> str:
        return f"{ok}:{len(token)}"

    async def main():
        async with make_engine("memory://") as engine:
            state = await engine.run(wf, {"token": "hunter2"})
            held_while_waiting = engine._active._given.get(state.run_id)
            done = await engine.resume(state.run_id, "ok", "yes")
            return held_while_waiting, done, engine._active._given.get(state.run_id)

    held, done, after = run(main())
    assert held is not None and held.values == {"token": "hunter2"}
    assert done.status == RunStatus.COMPLETED and done.output == {"use": "yes:7"}
    assert after is None
