"""How many transactions a run costs, and what holding its creation back must not lose.

``Engine.run`` writes a new run with its first step, and the last step with
the run's end (issue 10): a run of N inline nodes that complete at once costs
N commits. These tests count the store's commits and check the cases where
the run must be written before its first node ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from spindle import RunNotFound, RunStatus, Workflow
from spindle.core.engine._hold import HOLD_FOR
from spindle.core.errors import StoreError
from spindle.core.model import verify

from .conftest import run


def counting(engine: Any, note: Callable[[Any], Any] | None = None) -> list[Any]:
    """Record every Commit the engine's store receives (the real store still writes it),
    or what ``note`` takes of each at the moment it is committed."""
    seen: list[Any] = []
    store = engine.store
    real = store.commit

    async def commit(c: Any) -> None:
        seen.append(c if note is None else note(c))
        await real(c)

    store.commit = commit
    return seen


def chain(n: int) -> Workflow:
    wf = Workflow(f"chain{n}")
    prev = None
    for i in range(n):

        async def step(i: int = i) -> int:
            return i

        wf.node(step, name=f"s{i}", after=[prev] if prev else [])
        prev = f"s{i}"
    return wf


@pytest.mark.parametrize("nodes", [1, 2, 3, 10])
def test_a_run_of_n_inline_nodes_costs_n_commits(store_url, make_engine, nodes):
    """Creation shares the first step's commit and the end shares the last step's."""

    async def go() -> None:
        async with make_engine(store_url) as engine:
            await engine.run(chain(1))  # the definition is kept once, outside the count
            seen = counting(engine)
            state = await engine.run(chain(nodes))
            assert state.status is RunStatus.COMPLETED
            assert len(seen) == nodes
            assert seen[0].create and seen[0].records[0].node_id == "s0"
            assert seen[-1].state.status is RunStatus.COMPLETED
            ledger = await engine.store.ledger(state.run_id)
            assert [r.node_id for r in ledger] == [f"s{i}" for i in range(nodes)] + [""]
            assert verify(ledger).ok
            assert (await engine.verify_ledger(state.run_id)).ok  # state digest too
            assert (await engine.store.get_lease(state.run_id)) is None  # not left held

    run(go())


def test_a_slow_first_node_sees_its_run_recorded(store_url, make_engine):
    """A first node that runs longer than the hold finds its run written (so other
    processes can list and cancel it), leased, and running."""
    seen_inside: dict[str, Any] = {}
    wf = Workflow("slow")

    @wf.node
    async def slow() -> str:
        await asyncio.sleep(HOLD_FOR * 10)
        seen_inside["state"] = await engine.get_run(seen_inside["run_id"])
        seen_inside["lease"] = await engine.store.get_lease(seen_inside["run_id"])
        return "ok"

    async def go() -> None:
        nonlocal engine
        async with make_engine(store_url) as engine:
            state = await engine.run(wf, run_id="r-slow")
            assert state.status is RunStatus.COMPLETED
            assert seen_inside["state"].status is RunStatus.RUNNING
            assert seen_inside["lease"] is not None and seen_inside["lease"].token == 1
            assert verify(await engine.store.ledger("r-slow")).ok

    engine: Any = None
    seen_inside["run_id"] = "r-slow"
    run(go())


def test_a_parallel_start_writes_the_run_before_its_nodes_run(store_url, make_engine):
    """Several ready nodes at once: the run is written before any of them starts."""
    found: list[Any] = []
    wf = Workflow("wide")
    for name in ("a", "b"):

        async def fn(name: str = name) -> str:
            found.append(await engine.get_run("r-wide"))
            return name

        wf.node(fn, name=name)

    async def go() -> None:
        nonlocal engine
        async with make_engine(store_url) as engine:
            state = await engine.run(wf, run_id="r-wide")
            assert state.status is RunStatus.COMPLETED
            assert [s.status for s in found] == [RunStatus.RUNNING, RunStatus.RUNNING]

    engine: Any = None
    run(go())


def test_a_taken_run_id_returns_that_run_and_runs_nothing_again(store_url, make_engine):
    """engine.run(run_id=) of an id already used returns that run, and the first node
    never runs again (issue 12 made a start idempotent by id; before, it raised)."""
    ran: list[str] = []
    wf = Workflow("dup")

    @wf.node
    def side_effect() -> None:
        ran.append("ran")

    async def go() -> None:
        async with make_engine(store_url) as engine:
            first = await engine.run(wf, run_id="r1")
            ran.clear()
            again = await engine.run(wf, run_id="r1")
            assert (again.run_id, again.status, again.step_count) == (
                "r1",
                first.status,
                first.step_count,
            )
            assert ran == []
            other = Workflow("other")
            other.node(side_effect)
            with pytest.raises(StoreError, match="run 'r1' already exists as a run of workflow"):
                await engine.run(other, run_id="r1")

    run(go())


def test_inputs_that_are_not_json_are_refused_before_anything_runs(store_url, make_engine):
    """A value the store could not write fails engine.run before the first node runs."""
    ran: list[str] = []
    wf = Workflow("bad", inputs={"x": None})

    @wf.node
    def side_effect(x: Any) -> None:
        ran.append("ran")

    async def go() -> None:
        async with make_engine(store_url) as engine:
            with pytest.raises(StoreError, match="not JSON data"):
                await engine.run(wf, {"x": object()}, run_id="r-bad")
            assert ran == []
            with pytest.raises(RunNotFound):
                await engine.get_run("r-bad")

    run(go())


def test_a_run_cancelled_in_its_first_node_is_recorded_to_resume(store_url, make_engine):
    """Cancelling engine.run (Ctrl-C) while the first node runs, before the hold ends,
    still leaves the run recorded and unleased: it resumes where it stopped."""
    started = asyncio.Event
    wf = Workflow("stopme")

    @wf.node
    async def first() -> str:
        gate.set()
        await asyncio.sleep(60)
        return "never"

    async def go() -> None:
        nonlocal gate
        gate = started()
        async with make_engine(store_url) as engine:
            task = asyncio.ensure_future(engine.run(wf, run_id="r-stop"))
            await gate.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            state = await engine.get_run("r-stop")
            assert state.status is RunStatus.RUNNING
            assert (await engine.store.get_lease("r-stop")) is None

    gate: Any = None
    run(go())


def test_the_state_written_with_the_first_step_matches_its_digest(store_url, make_engine):
    """Mid-run, right after the commit that created the run with its first step, the
    stored state verifies against its digest (what a crash at that point leaves)."""
    checks: list[Any] = []
    wf = Workflow("mid")

    @wf.node
    async def first() -> int:
        return 1

    @wf.node
    async def second(first: int) -> int:
        checks.append(await engine.verify_ledger(run_ids[0]))
        return first + 1

    async def go() -> None:
        nonlocal engine
        async with make_engine(store_url) as engine:
            state = await engine.run(wf, run_id=run_ids[0])
            assert state.status is RunStatus.COMPLETED and state.output == {"second": 2}
            assert [c.ok for c in checks] == [True], [c.reason for c in checks]

    engine: Any = None
    run_ids = ["r-mid"]
    run(go())


def test_a_first_node_that_fails_and_retries_is_recorded_and_verifies(store_url, make_engine):
    """A first step that is not a plain completion (a retry wait) writes the changed state
    with the run; it verifies, and the retry then completes the run."""
    from spindle import RetryPolicy

    tries: list[int] = []
    wf = Workflow("flaky")

    @wf.node(retry=RetryPolicy(max_attempts=2, backoff=0.0))
    async def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("first try fails")
        return "ok"

    async def go() -> None:
        async with make_engine(store_url) as engine:
            seen = counting(engine)
            state = await engine.run(wf)
            assert state.status is RunStatus.COMPLETED and len(tries) == 2
            assert seen[0].create and seen[0].state_changed
            assert (await engine.verify_ledger(state.run_id)).ok

    run(go())


def test_a_first_node_run_in_a_subprocess_writes_the_run_before_it_starts(store_url, make_engine):
    """The hold is for inline nodes: a command's process takes far longer than a commit,
    and its log (written as it runs) must belong to a run the store knows."""
    wf = Workflow("cmd")
    wf.task("echo", {"kind": "command", "command": "echo hi"})

    async def go() -> None:
        async with make_engine(store_url) as engine:
            seen = counting(engine)
            state = await engine.run(wf)
            assert state.status is RunStatus.COMPLETED
            assert seen[0].create and not seen[0].records
            assert [r.node_id for r in seen[1].records] == ["echo", ""]

    run(go())


def test_a_first_node_asking_mid_function_writes_the_run_before_the_effect(store_url, make_engine):
    """A first node whose function asks for an effect (here a person's answer) writes
    the run before the effect's handler runs; the run then waits, and resumes."""
    wf = Workflow("asks")

    @wf.node
    async def ask(ctx: Any) -> str:
        return str(ctx.ask_user("name?"))

    async def go() -> None:
        async with make_engine(store_url) as engine:
            seen = counting(engine)
            state = await engine.run(wf)
            assert state.status is RunStatus.WAITING
            assert seen[0].create and not seen[0].records
            state = await engine.resume(state.run_id, state.waits[0].key, "Ada")
            assert state.status is RunStatus.COMPLETED and state.output == {"ask": "Ada"}
            assert (await engine.verify_ledger(state.run_id)).ok

    run(go())


def test_commits_that_write_the_state_carry_its_text(store_url, make_engine):
    """The text a commit hands the store to keep is the state's text at that commit, and
    the creation and the end (the commits that write the state) both carry it."""
    from spindle.core.model import state_text

    async def go() -> None:
        async with make_engine(store_url) as engine:
            seen = counting(engine, lambda c: (c, c.state_text, state_text(c.state)))
            state = await engine.run(chain(3))
            assert state.status is RunStatus.COMPLETED
            carried = [(c, text, now) for c, text, now in seen if text is not None]
            assert all(text == now for _, text, now in carried)
            assert seen[0][1] is not None and seen[0][0].create  # the held creation
            assert seen[-1][1] is not None  # the end
            assert (await engine.verify_ledger(state.run_id)).ok
            again = await engine.get_run(state.run_id)
            assert state_text(again) == seen[-1][2]  # what the store keeps reads back the same

    run(go())
