"""Durable sub-steps: committed before they return, replayed by call order, retried,
timed out, run in parallel, and refused when replayed out of order."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from spindle import LifecycleEventType, RunStatus, Workflow, utcnow
from spindle.core.model import StepKind

from .conftest import run

CALLS: dict[str, int] = {}


def count(name: str) -> int:
    CALLS[name] = CALLS.get(name, 0) + 1
    return CALLS[name]


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def calls_of(records: list[Any], node: str) -> list[tuple[str, Any, str | None]]:
    return [
        (r.idempotency_key.rsplit(":", 1)[-1], r.result, r.name)
        for r in records
        if r.kind == StepKind.CALL and r.node_id == node
    ]


def test_an_async_step_is_in_the_ledger_before_it_returns(store_url, make_engine):
    """When astep returns, its record is already committed (another read sees it)."""
    seen: list[int] = []
    wf = Workflow("durable")
    engine_box: list[Any] = []

    async def first() -> str:
        return "one"

    async def look(run_id: str) -> int:
        records = await engine_box[0].store.ledger(run_id)
        seen.append(len([r for r in records if r.kind == StepKind.CALL]))
        return seen[-1]

    @wf.node
    async def work(ctx: Any) -> list[Any]:
        a = await ctx.astep(first)
        b = await ctx.astep(look, ctx.run_id)
        return [a, b]

    async def main():
        async with make_engine(store_url) as engine:
            engine_box.append(engine)
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.output == {"work": ["one", 1]}
    assert seen == [1]  # step 0 was committed before step 1 ran
    assert calls_of(records, "work") == [
        ("0", "one", "test_an_async_step_is_in_the_ledger_before_it_returns.<locals>.first"),
        ("1", 1, "test_an_async_step_is_in_the_ledger_before_it_returns.<locals>.look"),
    ]


def test_completed_steps_are_not_run_again_when_the_node_is_retried(store_url, make_engine):
    """A node failing after two steps keeps them: its retry replays, it does not redo."""
    wf = Workflow("keeps")

    @wf.node(retry={"max_attempts": 2, "backoff": 0})
    def work(ctx: Any) -> list[int]:
        a = ctx.step(count, "a")
        b = ctx.step(count, "b")
        if count("node") == 1:
            raise ConnectionError("flaky after two steps")
        c = ctx.step(count, "c")
        return [a, b, c]

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"work": [1, 1, 1]}
    assert CALLS == {"a": 1, "b": 1, "c": 1, "node": 2}


def test_gathered_steps_keep_their_keys_whatever_finishes_first(store_url, make_engine):
    """Keys follow call order; replay after a wait puts each value back in its place."""
    wf = Workflow("fanout")
    order: list[int] = []

    async def slow(i: int) -> int:
        await asyncio.sleep(0.02 * (4 - i))
        order.append(i)
        count(f"s{i}")
        return i * 10

    @wf.node
    async def work(ctx: Any) -> list[Any]:
        values = await ctx.gather(*(ctx.astep(slow, i) for i in range(4)))
        answer = ctx.ask_user("go on?")
        return [*values, answer]

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            done = await engine.resume(state.run_id, state.waits[0].key, "yes", workflow=wf)
            return done, await engine.ledger(done.run_id)

    done, records = run(main())
    assert done.output == {"work": [0, 10, 20, 30, "yes"]}
    assert order == [3, 2, 1, 0]  # they finished in reverse
    assert all(CALLS[f"s{i}"] == 1 for i in range(4))  # and were not redone on resume
    by_key = {k: v for k, v, _ in calls_of(records, "work")}
    assert [by_key[str(i)] for i in range(4)] == [0, 10, 20, 30]


def test_map_runs_items_concurrently_and_returns_them_in_order(store_url, make_engine):
    """ctx.map from a sync task: concurrent threads, results and keys in item order."""
    wf = Workflow("mapped")
    peak = {"now": 0, "max": 0}
    lock = threading.Lock()

    def square(x: int) -> int:
        with lock:
            peak["now"] += 1
            peak["max"] = max(peak["max"], peak["now"])
        time.sleep(0.05)
        with lock:
            peak["now"] -= 1
        return x * x

    @wf.node
    def work(ctx: Any) -> list[int]:
        return ctx.map(square, range(6), concurrency=3, name="square")

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.output == {"work": [0, 1, 4, 9, 16, 25]}
    assert peak["max"] == 3
    calls = calls_of(records, "work")
    assert sorted((int(k), v) for k, v, _ in calls) == [(i, i * i) for i in range(6)]
    assert {name for _, _, name in calls} == {"square"}


def test_amap_runs_async_items_under_a_concurrency_limit(store_url, make_engine):
    """ctx.amap: at most `concurrency` at once, values in item order."""
    wf = Workflow("amapped")
    live = {"now": 0, "max": 0}

    async def double(x: int) -> int:
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await asyncio.sleep(0.01)
        live["now"] -= 1
        return 2 * x

    @wf.node
    async def work(ctx: Any) -> list[int]:
        return await ctx.amap(double, [3, 1, 2], concurrency=2)

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    assert run(main()).output == {"work": [6, 2, 4]}
    assert live["max"] == 2


def test_steps_made_in_another_order_on_replay_fail_the_node(store_url, make_engine):
    """A replay that meets another step at a recorded index raises NondeterminismError."""
    wf = Workflow("wobbly")
    flips = {"n": 0}

    def charge() -> str:
        return "charged"

    def refund() -> str:
        return "refunded"

    @wf.node
    def work(ctx: Any) -> str:
        flips["n"] += 1
        first = ctx.step(charge if flips["n"] == 1 else refund)
        return first + ":" + ctx.ask_user("ok?")

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return await engine.resume(state.run_id, state.waits[0].key, "yes", workflow=wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "NondeterminismError" not in state.error  # the message says it in words
    assert "call 0 was" in state.error and "charge" in state.error and "refund" in state.error
    assert "same order on every run" in state.error


def test_a_failing_step_is_retried_by_its_own_policy(store_url, make_engine):
    """Each failed attempt is a ledger record; the step then succeeds, the node once."""
    wf = Workflow("retrying")

    def flaky() -> str:
        if count("flaky") < 3:
            raise ConnectionError("try again")
        return "done"

    @wf.node
    def work(ctx: Any) -> str:
        count("node")
        return ctx.step(flaky, name="flaky", retry={"max_attempts": 4, "backoff": 0.01})

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.output == {"work": "done"}
    failures = [r for r in records if r.kind == StepKind.CALL_FAILURE]
    assert [(r.attempt, r.error, r.name) for r in failures] == [
        (1, "ConnectionError: try again", "flaky"),
        (2, "ConnectionError: try again", "flaky"),
    ]
    assert CALLS == {"flaky": 3, "node": 1}


def test_a_long_step_backoff_waits_durably(sqlite_url, make_engine):
    """A backoff past max_inline_sleep leaves the run waiting on a timer; a worker resumes it."""
    wf = Workflow("patient")

    def flaky() -> str:
        if count("flaky") == 1:
            raise ConnectionError("later")
        return "ok"

    @wf.node
    def work(ctx: Any) -> str:
        return ctx.step(flaky, retry={"max_attempts": 2, "backoff": 0.3})

    async def main():
        async with make_engine(sqlite_url, max_inline_sleep=0.05) as engine:
            state = await engine.run(wf)
            await asyncio.sleep(0.35)
            again = await engine.drive(state.run_id, workflow=wf)
            return state, again

    state, again = run(main())
    assert state.status == RunStatus.WAITING
    (wait,) = state.waits
    assert wait.key == "work.0.backoff1" and wait.due_at is not None
    assert wait.due_at - utcnow() < timedelta(seconds=1)
    assert again.status == RunStatus.COMPLETED and again.output == {"work": "ok"}
    assert CALLS["flaky"] == 2


def test_a_step_that_failed_for_good_fails_again_on_replay(store_url, make_engine):
    """A caught, exhausted step does not run again on replay: it raises its recorded error."""
    wf = Workflow("final")

    def broken() -> None:
        count("broken")
        raise ValueError("nope")

    @wf.node
    def work(ctx: Any) -> list[str]:
        seen = []
        for _ in range(1):
            try:
                ctx.step(broken)
            except Exception as exc:
                seen.append(type(exc).__name__)
        seen.append(ctx.ask_user("ok?"))
        return seen

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return await engine.resume(state.run_id, state.waits[0].key, "yes", workflow=wf)

    done = run(main())
    assert done.output == {"work": ["TaskError", "yes"]}  # the first run saw ValueError
    assert CALLS["broken"] == 1


@pytest.mark.parametrize("is_async", [False, True])
def test_a_step_past_its_timeout_fails_with_step_timeout(store_url, make_engine, is_async):
    """timeout= bounds one attempt of a sub-step."""
    wf = Workflow("slowpoke")

    def slow_sync() -> str:
        time.sleep(0.5)
        return "late"

    async def slow_async() -> str:
        await asyncio.sleep(0.5)
        return "late"

    if is_async:

        @wf.node
        async def work(ctx: Any) -> str:
            return await ctx.astep(slow_async, timeout=0.05)

    else:

        @wf.node
        def work(ctx: Any) -> str:
            return ctx.step(slow_sync, timeout=0.05)

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "timed out after 0.05s" in state.error


def test_a_large_step_result_goes_to_the_artifact_store(store_url, make_engine):
    """A value over the inline limit is kept as an artifact and read back on replay."""
    wf = Workflow("big")
    blob = {"rows": ["x" * 100] * 50}

    def make() -> dict[str, Any]:
        count("make")
        return blob

    @wf.node
    def work(ctx: Any) -> int:
        value = ctx.step(make)
        ctx.ask_user("ok?")
        return len(value["rows"])

    async def main():
        async with make_engine(store_url, result_inline_limit=256) as engine:
            state = await engine.run(wf)
            done = await engine.resume(state.run_id, state.waits[0].key, "y", workflow=wf)
            return done, await engine.ledger(done.run_id)

    done, records = run(main())
    assert done.output == {"work": 50}
    assert CALLS["make"] == 1
    (step,) = [r for r in records if r.kind == StepKind.CALL and r.name.endswith("make")]
    assert set(step.result) == {"$artifact"}


def test_a_sync_step_on_the_event_loop_is_refused_with_the_fix(store_url, make_engine):
    """ctx.step in an async def task cannot wait for its commit: it says to use astep."""
    wf = Workflow("wrongway")

    @wf.node
    async def work(ctx: Any) -> int:
        return ctx.step(int, "3")

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "await ctx.astep(fn, ...)" in state.error


def test_a_thread_left_behind_by_a_timed_out_attempt_records_nothing(store_url, make_engine):
    """A sync task past its node timeout runs on, but its later steps are refused."""
    wf = Workflow("zombie")
    released = threading.Event()

    @wf.node(timeout=0.1)
    def work(ctx: Any) -> str:
        ctx.step(count, "before")
        released.wait(2)
        try:
            ctx.step(count, "after")
        except BaseException as exc:  # the abandoned attempt's signal
            CALLS["abandoned"] = type(exc).__name__  # type: ignore[assignment]
            raise
        return "never"

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            released.set()
            await asyncio.sleep(0.3)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status == RunStatus.FAILED and "timed out" in state.error
    assert CALLS.get("after") is None
    assert CALLS["abandoned"] == "AttemptAbandoned"
    assert [k for k, _, _ in calls_of(records, "work")] == ["0"]


def test_steps_are_announced_to_observers(store_url, make_engine):
    """Each committed step emits step_completed with its name and call index."""
    wf = Workflow("told")
    events: list[Any] = []

    @wf.node
    def work(ctx: Any) -> int:
        return ctx.step(count, "x", name="counted")

    async def main():
        async with make_engine(store_url, observers=[events.append]) as engine:
            return await engine.run(wf)

    assert run(main()).status == RunStatus.COMPLETED
    steps = [e for e in events if e.type == LifecycleEventType.STEP_COMPLETED]
    assert [(e.node_id, e.payload["step"], e.payload["call"]) for e in steps] == [
        ("work", "counted", 0)
    ]
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences) == list(range(1, len(events) + 1))


CODE_WITH_A_STEP = """
import pathlib
log = pathlib.Path(inputs["log"])

def charge():
    with log.open("a") as f:
        f.write("charged\\n")
    return 42

value = ctx.step(charge, name="charge")
if ctx.attempt == 1:
    raise RuntimeError("the mail server is down")
result = value + 1
"""


def test_a_python_code_node_commits_its_steps_and_keeps_them_on_retry(
    store_url, make_engine, tmp_path
):
    """``python_code`` gets the same ``ctx.step``: a retry after a failure replays it."""
    log = tmp_path / "charges.log"
    wf = Workflow("code", inputs={"log": str(log)})
    wf.task(
        "pay",
        {"kind": "python_code", "code": CODE_WITH_A_STEP},
        retry={"max_attempts": 2, "backoff": 0},
    )

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == {"pay": 43}
    assert log.read_text() == "charged\n"  # once, though the node ran twice
    assert calls_of(records, "pay") == [("0", 42, "charge")]
