"""Attempts of one run that ended by the time the driver looks share one commit.

A fan-out of quick nodes: their completions are recorded in one transaction,
in the order they finished, and nothing downstream starts before it is
committed. An attempt that did not simply return is acted on alone.
"""

from __future__ import annotations

from typing import Any

from spindle import RunStatus, Workflow
from spindle.core.model import StepKind, StepStatus, verify

from .conftest import run
from .test_commits_per_run import counting


def fan(n: int, join: Any = None) -> Workflow:
    wf = Workflow(f"fan{n}")
    for i in range(n):

        async def leaf(i: int = i) -> int:
            return i

        wf.node(leaf, name=f"n{i}")

    async def total(**parts: int) -> int:
        return sum(parts.values())

    wf.node(join or total, name="join", inputs={f"n{i}": f"n{i}" for i in range(n)})
    return wf


def test_a_fan_out_costs_fewer_commits_than_nodes_and_loses_none(store_url, make_engine):
    n = 40

    async def go() -> None:
        async with make_engine(store_url, concurrency=8) as engine:
            await engine.run(fan(1))  # the definition of another workflow: outside the count
            seen = counting(engine)
            state = await engine.run(fan(n))
            assert state.status is RunStatus.COMPLETED
            assert state.output == {"join": sum(range(n))}
            ledger = await engine.store.ledger(state.run_id)
            nodes = [r.node_id for r in ledger if r.kind == StepKind.NODE]
            assert sorted(nodes) == sorted([*(f"n{i}" for i in range(n)), "join"])
            assert len(nodes) == len(set(nodes))  # each node recorded once
            assert verify(ledger).ok
            assert (await engine.verify_ledger(state.run_id)).ok
            assert len(seen) < n  # several completions per commit
            assert max(len(c.records) for c in seen) > 1

    run(go())


def test_nothing_downstream_starts_before_its_inputs_are_committed(store_url, make_engine):
    """The join reads the store from inside: every leaf it takes is already written."""
    n = 24
    committed_at_join: list[set[str]] = []

    async def go() -> None:
        nonlocal engine

        async def join(**parts: int) -> int:
            ledger = await engine.store.ledger(run_id)
            committed_at_join.append({r.node_id for r in ledger if r.kind == StepKind.NODE})
            return len(parts)

        async with make_engine(store_url, concurrency=6) as engine:
            state = await engine.run(fan(n, join), run_id=run_id)
            assert state.status is RunStatus.COMPLETED
            assert committed_at_join == [{f"n{i}" for i in range(n)}]

    engine: Any = None
    run_id = "r-fan-order"
    run(go())


def test_a_failure_among_quick_completions_is_recorded_beside_them(store_url, make_engine):
    """One leaf raises, another returns what cannot be recorded; the rest complete."""
    wf = Workflow("mixed")
    for i in range(6):

        async def ok(i: int = i) -> int:
            return i

        wf.node(ok, name=f"ok{i}")

    @wf.node(continue_on_failure=True)
    async def bad() -> int:
        raise ValueError("no good")

    @wf.node(continue_on_failure=True)
    async def odd() -> object:
        return object()

    async def go() -> None:
        async with make_engine(store_url, concurrency=8) as engine:
            state = await engine.run(wf)
            ledger = await engine.store.ledger(state.run_id)
            status = {r.node_id: r.status for r in ledger if r.kind == StepKind.NODE}
            assert status == {
                **{f"ok{i}": StepStatus.COMPLETED for i in range(6)},
                "bad": StepStatus.FAILED,
                "odd": StepStatus.FAILED,
            }
            errors = {r.node_id: r.error for r in ledger if r.status == StepStatus.FAILED}
            assert "no good" in (errors["bad"] or "")
            assert "cannot be recorded" in (errors["odd"] or "")
            assert verify(ledger).ok

    run(go())


def test_observers_hear_each_completion_after_its_commit(store_url, make_engine):
    events: list[Any] = []
    n = 12

    async def go() -> None:
        async with make_engine(store_url, observers=[events.append], concurrency=6) as engine:
            state = await engine.run(fan(n))
            assert state.status is RunStatus.COMPLETED
            ledger = await engine.store.ledger(state.run_id)
        done = [e.node_id for e in events if e.type.value == "node_completed"]
        recorded = [r.node_id for r in ledger if r.kind == StepKind.NODE]
        assert done == recorded  # one event per completion, in the ledger's order
        seqs = [e.sequence for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    run(go())
