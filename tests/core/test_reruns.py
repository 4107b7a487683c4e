"""Running failed runs again: retry continues a run in place, rerun starts one from a node."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spindle import RunStatus, ValidationError, Workflow
from spindle.core.errors import NothingToRetry
from spindle.core.model import StepKind, StepStatus

from .conftest import run

CALLS: dict[str, int] = {}
BROKEN = {"b": True}


def count(name: str) -> int:
    CALLS[name] = CALLS.get(name, 0) + 1
    return CALLS[name]


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    BROKEN["b"] = True


def chain_of_three() -> Workflow:
    wf = Workflow("abc")

    @wf.node
    def a(ctx: Any) -> int:
        count("a")
        return ctx.step(count, "a.step")

    @wf.node
    def b(a: int, ctx: Any) -> int:
        first = ctx.step(count, "b.step")
        if BROKEN["b"]:
            raise RuntimeError("b is broken")
        return a + first

    @wf.node
    def c(b: int) -> int:
        count("c")
        return b * 10

    @wf.node(continue_on_failure=True)
    def side() -> str:
        count("side")
        return "side"

    return wf


def test_retry_runs_failed_nodes_again_and_keeps_the_rest(store_url, make_engine):
    """Completed nodes and sub-steps stay; the failed node runs again as attempt 2."""
    wf = chain_of_three()

    async def main():
        async with make_engine(store_url) as engine:
            failed = await engine.run(wf)
            BROKEN["b"] = False
            done = await engine.retry(failed.run_id, workflow=wf)
            return (
                failed,
                done,
                await engine.ledger(done.run_id),
                await engine.verify_ledger(done.run_id),
            )

    failed, done, records, verified = run(main())
    assert failed.status == RunStatus.FAILED and "b is broken" in failed.error
    assert done.status == RunStatus.COMPLETED and done.run_id == failed.run_id
    assert done.output == {"c": 20, "side": "side"}
    assert CALLS == {"a": 1, "a.step": 1, "b.step": 1, "c": 1, "side": 1}
    b_outcomes = [
        (r.status, r.attempt) for r in records if r.kind == StepKind.NODE and r.node_id == "b"
    ]
    assert b_outcomes == [(StepStatus.FAILED, 1), (StepStatus.COMPLETED, 2)]
    assert [r.status for r in records if r.kind == StepKind.RUN] == [
        StepStatus.FAILED,
        StepStatus.RETRIED,
        StepStatus.COMPLETED,
    ]
    assert verified.ok


def test_retry_continues_a_cancelled_run(store_url, make_engine):
    """A run cancelled mid-way runs on from where it stopped."""
    wf = Workflow("slow")

    @wf.node
    def first() -> str:
        count("first")
        return "one"

    @wf.node
    async def second(first: str) -> str:
        if count("second") == 1:
            await asyncio.sleep(30)
        return first + "+two"

    async def main():
        async with make_engine(store_url) as engine:
            task = asyncio.ensure_future(engine.run(wf, run_id="r1"))
            while CALLS.get("second") != 1:
                await asyncio.sleep(0.01)
            await engine.cancel("r1", "later")
            cancelled = await task
            return cancelled, await engine.retry("r1", workflow=wf)

    cancelled, done = run(main())
    assert cancelled.status == RunStatus.CANCELLED
    assert done.status == RunStatus.COMPLETED and done.output == {"second": "one+two"}
    assert CALLS == {"first": 1, "second": 2}


def test_retry_of_a_run_that_did_not_fail_says_what_to_do(store_url, make_engine):
    """A completed run cannot be retried (rerun it); a waiting one is resumed instead."""
    wf = Workflow("fine")
    wf.effect("ask", {"kind": "ask_user", "prompt": "ok?"})

    async def main():
        async with make_engine(store_url) as engine:
            waiting = await engine.run(wf)
            with pytest.raises(NothingToRetry, match="spindle resume"):
                await engine.retry(waiting.run_id)
            done = await engine.resume(waiting.run_id, "ask", "yes")
            with pytest.raises(NothingToRetry, match="spindle rerun"):
                await engine.retry(done.run_id)
            return await engine.get_run(done.run_id)

    assert run(main()).status == RunStatus.COMPLETED


def test_rerun_from_a_node_reuses_everything_else(store_url, make_engine):
    """The new run keeps a's and side's results; b and c run again; it names its source."""
    wf = chain_of_three()

    async def main():
        async with make_engine(store_url) as engine:
            failed = await engine.run(wf)
            BROKEN["b"] = False
            again = await engine.rerun(failed.run_id, "b", workflow=wf)
            return failed, again, await engine.ledger(again.run_id)

    failed, again, records = run(main())
    assert again.run_id != failed.run_id
    assert again.status == RunStatus.COMPLETED and again.output == {"c": 30, "side": "side"}
    assert again.labels == {"rerun_of": failed.run_id, "rerun_from": "b"}
    assert CALLS == {"a": 1, "a.step": 1, "b.step": 2, "c": 1, "side": 1}
    assert [r.node_id for r in records if r.kind == StepKind.NODE][:2] == ["a", "side"]


def test_rerun_from_an_unknown_node_lists_the_nodes(store_url, make_engine):
    """A --from that names no node is refused, listing the nodes there are."""
    wf = chain_of_three()

    async def main():
        async with make_engine(store_url) as engine:
            failed = await engine.run(wf)
            with pytest.raises(ValidationError) as err:
                await engine.rerun(failed.run_id, "zzz", workflow=wf)
            return err.value

    err = run(main())
    assert "has no node 'zzz'" in str(err)
    assert "known nodes: a, b, c, side" in err.problems[0]
