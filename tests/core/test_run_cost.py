"""What a run leaves behind and what is shared between runs (issue 10: the fixed cost
of a run): nothing for the garbage collector, caches that never go stale, and the
same records, hashes and state as computing everything afresh would give."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from typing import Any

import pytest

from spindle import RunStatus, Workflow, hookimpl
from spindle.core.engine._delays import DelayedCalls, per_loop
from spindle.core.model import PLAIN_CHAIN, state_hash, verify

from .conftest import run


async def _noop() -> None:
    return None


def chain(n: int, name: str = "chain") -> Workflow:
    wf = Workflow(f"{name}{n}")
    prev = None
    for i in range(n):
        wf.node(_noop, name=f"s{i}", after=[prev] if prev else [])
        prev = f"s{i}"
    return wf


def test_a_finished_run_leaves_no_reference_cycle(store_url, make_engine):
    """A run's objects are freed when it ends, not left to the cycle collector (which
    would be run every few runs, and scan the whole heap now and then)."""

    async def go() -> int:
        async with make_engine(store_url) as engine:
            wf = chain(3)
            await engine.run(wf)  # imports, schema, the definition kept once
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    state = await engine.run(wf)
                    assert state.status is RunStatus.COMPLETED
                return gc.collect()
            finally:
                gc.enable()

    found: Any = run(go())
    assert found == 0


class TupleOutput:
    """A finish hook that returns the output as a tuple (not JSON data as it is)."""

    @hookimpl
    def spindle_on_finish(self, run: Any, output: Any) -> Any:
        return ("done", output)


@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "hook-tuple"])
def test_the_end_record_holds_the_output_as_the_ledger_reads_it(store_url, make_engine, hooked):
    """The run's end record holds its output as JSON reads it back: a plain output as it
    is, one a hook made of other types after a JSON round trip."""

    async def go() -> tuple[Any, Any]:
        hooks = [TupleOutput()] if hooked else []
        async with make_engine(store_url, hooks=hooks) as engine:
            wf = chain(2)
            wf.node(_value, name="v", after=["s1"])
            state = await engine.run(wf)
            assert state.status is RunStatus.COMPLETED
            ledger = await engine.ledger(state.run_id)
            assert verify(ledger).ok
            return state.output, ledger[-1].result

    output, recorded = run(go())
    if hooked:
        assert output == ("done", {"v": {"n": [1, 2.5, "x"]}})
        assert recorded == ["done", {"v": {"n": [1, 2.5, "x"]}}]
    else:
        assert output == recorded == {"v": {"n": [1, 2.5, "x"]}}


async def _value() -> dict[str, Any]:
    return {"n": [1, 2.5, "x"]}


def test_a_generated_run_id_is_a_random_uuid4(make_engine):
    """Generated run ids are 32 hex digits of a version-4 UUID, a new one every run."""

    async def go() -> list[str]:
        async with make_engine("memory://") as engine:
            wf = chain(1)
            return [(await engine.run(wf)).run_id for _ in range(20)] + [
                await engine.start(wf) for _ in range(5)
            ]

    ids = run(go())
    assert len(set(ids)) == len(ids)
    for run_id in ids:
        parsed = uuid.UUID(hex=run_id)
        assert parsed.hex == run_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


# --- the keepers of long drives: one timer for every drive ---------------------------


def test_a_long_drive_after_many_short_ones_has_its_lease_renewed(store_url, make_engine):
    """Drives that ended leave nothing due: a drive that outlives the first interval is
    looked after (its lease renewed) however many short drives came before."""
    seen: list[Any] = []

    async def go() -> None:
        async with make_engine(store_url, lease_ttl=0.3) as engine:

            async def slow(ctx: Any) -> None:
                await asyncio.sleep(0.05)  # the held run is written after 20 ms
                seen.append((await engine.store.get_lease(ctx.run_id)).expires_at)
                await asyncio.sleep(0.4)
                seen.append((await engine.store.get_lease(ctx.run_id)).expires_at)

            short = chain(2)
            for _ in range(30):
                await engine.run(short)
            wf = Workflow("slow")
            wf.node(slow)
            state = await engine.run(wf)
            assert state.status is RunStatus.COMPLETED

    run(go())
    first, last = seen
    assert (last - first).total_seconds() > 0.2


def test_delayed_calls_fire_for_keys_still_there_and_only_for_them():
    """A key still there when its delay is up is called; one discarded first is not."""
    called: list[str] = []
    calls: DelayedCalls[str] = DelayedCalls(0.05, called.append)

    async def go() -> None:
        calls.add("ended")
        calls.add("lasting")
        calls.discard("ended")
        await asyncio.sleep(0.03)
        calls.add("later")
        await asyncio.sleep(0.1)

    run(go())
    assert called == ["lasting", "later"]
    assert len(calls) == 0


def test_delayed_calls_fire_on_a_new_event_loop_after_the_old_one_closed():
    """A timer left pending on a closed loop (a SyncEngine's first loop) does not stop
    keys added on the next loop from being called."""
    called: list[str] = []
    calls: DelayedCalls[str] = DelayedCalls(0.02, called.append)

    async def leave_one() -> None:
        calls.add("first")  # never discarded: its loop ends first

    async def then() -> None:
        calls.add("second")
        await asyncio.sleep(0.06)

    run(leave_one())
    run(then())
    assert called == ["second"]


def test_each_event_loop_has_its_own_delayed_calls():
    """per_loop gives one object per running loop and name, made once."""

    async def get() -> tuple[Any, Any, Any]:
        make = lambda: DelayedCalls(1.0, print)  # noqa: E731
        return per_loop("a", make), per_loop("a", make), per_loop("b", make)

    a1, a2, b = run(get())
    other, _, _ = run(get())
    assert a1 is a2 and a1 is not b and other is not a1


def test_a_closed_loop_is_not_kept_alive_by_its_delayed_calls():
    """per_loop's objects go with their loop, even one whose timer never fired."""
    calls: list[Any] = []

    async def leave_pending() -> weakref.ref[asyncio.AbstractEventLoop]:
        per_loop("pending", lambda: DelayedCalls(60.0, calls.append)).add("never")
        return weakref.ref(asyncio.get_running_loop())

    loop = run(leave_pending())
    gc.collect()
    assert loop() is None and calls == []


def test_a_call_that_raises_does_not_stop_the_others(caplog):
    """Every key due is still called when the call for one of them raised."""
    called: list[str] = []

    def fire(key: str) -> None:
        called.append(key)
        if key == "bad":
            raise RuntimeError("boom")

    calls: DelayedCalls[str] = DelayedCalls(0.01, fire)

    async def go() -> None:
        for key in ("bad", "good", "late"):
            calls.add(key)
        await asyncio.sleep(0.05)

    run(go())
    assert called == ["bad", "good", "late"]
    assert "boom" in caplog.text  # reported by the loop, as a timer's error is


# --- what later drives read back -------------------------------------------------------


def asking() -> Workflow:
    wf = Workflow("asking", inputs={"who": "Ada", "cfg": {"n": [1, 2.5], "deep": {"x": None}}})
    wf.node(_value, name="v")
    wf.effect("ok", {"kind": "ask_user", "prompt": "Go?", "choices": ["yes", "no"]}, after=["v"])
    return wf


def test_a_run_resumed_in_a_new_engine_matches_the_digest_its_state_was_written_with(
    sqlite_url, make_engine
):
    """The state a new engine loads from the store hashes as the one that was committed
    (plain inputs, labels and waits read back alike), so the run goes on and verifies."""

    async def go() -> tuple[Any, Any]:
        async with make_engine(sqlite_url) as first:
            waiting = await first.run(asking(), {"cfg": {"n": [3], "k": "é"}}, labels={"a": "b"})
            assert waiting.status is RunStatus.WAITING
            assert (await first.verify_ledger(waiting.run_id)).ok
        async with make_engine(sqlite_url) as second:
            loaded = await second.get_run(waiting.run_id)
            done = await second.resume(waiting.run_id, "ok", "yes")
            return loaded, (done, await second.verify_ledger(waiting.run_id))

    loaded, (done, verified) = run(go())
    head = loaded.head
    assert head is not None
    assert PLAIN_CHAIN.state_digest(head.count, head.record_hash, state_hash(loaded)) == (
        head.state_digest
    )
    assert done.status is RunStatus.COMPLETED and verified.ok


def test_a_workflow_changed_after_a_run_is_kept_and_driven_as_it_is_now(store_url, make_engine):
    """Nothing a run of a Workflow object computed is reused once the object changed: the
    next run keeps the new definition, under its new id, and runs the new graph."""

    async def go() -> tuple[Any, Any, Any]:
        async with make_engine(store_url) as engine:
            wf = chain(2)
            before = await engine.run(wf)
            wf.node(_value, name="v", after=["s1"])
            wf.output = "v"
            after = await engine.run(wf)
            return before, after, await engine.store.get_definition(after.definition_id)

    before, after, kept = run(go())
    assert before.definition_id != after.definition_id
    assert set(kept["nodes"]) == {"s0", "s1", "v"}
    assert before.output == {"s1": None}
    assert after.output == {"n": [1, 2.5, "x"]} and after.step_count == 4


def test_two_engines_in_one_loop_each_write_their_held_runs(tmp_path, make_engine):
    """Held runs of two engines on one event loop share its hold timer: a slow first node
    finds its run written in its own engine's store, in both; the same Workflow object
    is kept by each engine."""
    seen: dict[str, list[str]] = {}

    async def go() -> list[Any]:
        async with (
            make_engine("memory://") as one,
            make_engine(f"sqlite:///{tmp_path / 'two.db'}") as two,
        ):
            engines = {"one": one, "two": two}

            async def slow(ctx: Any) -> None:
                await asyncio.sleep(0.15)
                for name, engine in engines.items():
                    seen.setdefault(name, []).extend(r.run_id for r in await engine.list_runs())

            wf = Workflow("slow")
            wf.node(slow)
            wf.node(_value, name="v", after=["slow"])
            states = await asyncio.gather(one.run(wf), two.run(wf), one.run(wf))
            for state, engine in zip(states, (one, two, one), strict=True):
                assert (await engine.verify_ledger(state.run_id)).ok
                assert await engine.store.get_definition(state.definition_id)
            return list(states)

    states = run(go())
    assert all(s.status is RunStatus.COMPLETED for s in states)
    assert {states[0].run_id, states[2].run_id} <= set(seen["one"])
    assert states[1].run_id in seen["two"]


def test_event_ids_are_random_uuid4s_too(make_engine):
    events: list[Any] = []

    async def go() -> None:
        async with make_engine("memory://", observers=[events.append]) as engine:
            await engine.run(chain(3))

    run(go())
    ids = [e.event_id for e in events]
    assert len(ids) > 3 and len(set(ids)) == len(ids)
    for event_id in ids:
        parsed = uuid.UUID(hex=event_id)
        assert parsed.hex == event_id and parsed.version == 4


def test_the_graph_shape_is_built_once_per_workflow_and_dropped_when_it_changes():
    from spindle.core.engine._ready import ReadySet

    wf = chain(3)
    first, second = ReadySet(wf), ReadySet(wf)
    assert first.deps is second.deps  # shared: built once
    assert first._remaining is not second._remaining  # each run counts on its own copy
    first.replay(_completed(first, "s0"))
    assert second._remaining == {"s0": 0, "s1": 1, "s2": 1}
    assert second.pop(8, ()) == ["s0"] and first.pop(8, ()) == ["s1"]

    async def extra() -> None:
        return None

    wf.node(extra, name="extra", after=["s2"])
    third = ReadySet(wf)
    assert third.deps is not first.deps and "extra" in third.order


def _completed(ready: Any, node_id: str) -> Any:
    from spindle.core.model import StepKind, StepRecord, StepStatus

    return StepRecord("r", 0, node_id, StepKind.NODE, StepStatus.COMPLETED, f"r:{node_id}")
