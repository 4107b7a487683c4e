"""A condition downstream of a ``join: any`` node may not name an ancestor that node did
not wait for: its verdict would depend on timing (found by the conditions property).

``join: any`` starts a node once its first dependency completes, so the nodes
below it can start while its other dependencies still run. Such a reference is
refused when the workflow loads, saying to add ``after:``; with it, the
condition sees the value the finished run has.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spindle import Settings
from spindle.core.engine import Engine
from spindle.core.errors import ValidationError
from spindle.core.model import StepKind
from spindle.core.workflow import Workflow, load_workflow_text


async def _slow() -> int:
    await asyncio.sleep(0.3)
    return 1


def _race(*, wait: bool, predicate: bool = False) -> Workflow:
    wf = Workflow("race")
    wf.task("slow", {"kind": "python", "function": _slow})
    wf.task("fast", {"kind": "python_code", "code": "result = 2"})
    wf.task(
        "first", {"kind": "python_code", "code": "result = 3"}, after=["slow", "fast"], join="any"
    )
    when = (lambda slow: slow == 1) if predicate else {"eq": ["slow", 1]}
    wf.task(
        "check",
        {"kind": "python_code", "code": "result = 4"},
        after=["first", "slow"] if wait else ["first"],
        when=when,
    )
    return wf


@pytest.mark.parametrize("predicate", [False, True])
def test_a_condition_on_an_ancestor_past_a_join_any_node_is_refused(predicate: bool) -> None:
    with pytest.raises(ValidationError) as info:
        _race(wait=False, predicate=predicate).validate()
    (problem,) = info.value.problems
    assert "node 'slow', which may still be running when 'check' starts" in problem
    assert "add after: [slow] to 'check'" in problem


def test_the_same_in_a_file_names_the_line() -> None:
    text = """
name: race
nodes:
  slow: {runtime: {kind: python_code, code: "result = 1"}}
  fast: {runtime: {kind: python_code, code: "result = 2"}}
  first: {after: [slow, fast], join: any, runtime: {kind: python_code, code: "result = 3"}}
  check:
    after: [first]
    when: {eq: [slow, 1]}
    runtime: {kind: python_code, code: "result = 4"}
"""
    with pytest.raises(ValidationError) as info:
        load_workflow_text(text, filename="race.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("race.yaml:9:") and "may still be running" in problem


def test_waiting_for_the_ancestor_makes_the_condition_see_its_value(tmp_path: Path) -> None:
    async def main() -> dict[str, object]:
        async with Engine("memory://", settings=Settings(runs_dir=str(tmp_path))) as engine:
            state = await engine.run(_race(wait=True))
            records = await engine.ledger(state.run_id)
        return {r.node_id: r.status.value for r in records if r.kind == StepKind.NODE}

    ends = asyncio.run(main())
    assert ends["slow"] == "completed" and ends["check"] == "completed"
