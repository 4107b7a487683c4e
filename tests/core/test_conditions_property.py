"""A property of conditions and the join rule: for random DAGs with random ``when:``
conditions, the nodes a run executes are exactly those a small reference evaluator,
written here from the documented rules (docs/control-flow.md), says should run."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle import Settings
from spindle.core.engine import Engine
from spindle.core.model import StepKind, StepStatus
from spindle.core.workflow import Workflow

_GONE = object()  # the reference's own "no value"

VALUES = st.integers(min_value=-2, max_value=3)
ORDERED = ("eq", "ne", "lt", "le", "gt", "ge")


def _condition(refs: list[str]) -> st.SearchStrategy[Any]:
    ref = st.sampled_from(refs)
    leaf = st.one_of(
        st.tuples(st.sampled_from(ORDERED), ref, VALUES).map(lambda t: {t[0]: [t[1], t[2]]}),
        st.tuples(st.sampled_from(("in", "not_in")), ref, st.lists(VALUES, max_size=3)).map(
            lambda t: {t[0]: [t[1], t[2]]}
        ),
        st.tuples(st.sampled_from(("exists", "truthy")), ref).map(lambda t: {t[0]: t[1]}),
    )
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
            st.lists(kids, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
            kids.map(lambda c: {"not": c}),
        ),
        max_leaves=4,
    )


@st.composite
def dags(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Nodes ``n0..nK``: each a value, dependencies among earlier nodes, maybe a condition
    over them (or, for a root, over the workflow input ``x``), maybe ``join: any``."""
    size = draw(st.integers(min_value=3, max_value=10))
    nodes: list[dict[str, Any]] = []
    for i in range(size):
        earlier = [f"n{j}" for j in range(i)]
        deps = sorted(draw(st.sets(st.sampled_from(earlier), max_size=3))) if earlier else []
        join_any = bool(deps) and draw(st.booleans()) and draw(st.booleans())
        when = None
        # A join-any node runs when its first dependency completes, so a condition
        # over the others would race: only join-all nodes get one.
        if not join_any and draw(st.booleans()):
            when = draw(_condition(deps or ["inputs.x"]))
        nodes.append(
            {"id": f"n{i}", "value": draw(VALUES), "deps": deps, "any": join_any, "when": when}
        )
    return nodes


def _holds(cond: dict[str, Any], value: Any) -> bool:
    """The documented meaning of a condition; ``value(ref)`` is a value or _GONE."""
    ((op, arg),) = cond.items()
    if op == "all":
        return all(_holds(c, value) for c in arg)
    if op == "any":
        return any(_holds(c, value) for c in arg)
    if op == "not":
        return not _holds(arg, value)
    if op in ("exists", "truthy"):
        v = value(arg)
        return v is not _GONE and v is not None and (op == "exists" or bool(v))
    v, x = value(arg[0]), arg[1]
    if op in ("ne", "not_in"):
        return v is _GONE or (v != x if op == "ne" else v not in x)
    if v is _GONE:
        return False
    return {
        "eq": lambda: v == x,
        "lt": lambda: v < x,
        "le": lambda: v <= x,
        "gt": lambda: v > x,
        "ge": lambda: v >= x,
        "in": lambda: v in x,
    }[op]()


def expected_completed(nodes: list[dict[str, Any]], x: int) -> set[str]:
    """Which nodes run: the reference evaluator of the join rule and conditions."""
    done: dict[str, int] = {}
    for node in nodes:
        deps = node["deps"]
        if deps and not any(d in done for d in deps):
            continue  # every dependency skipped (none failed here): skipped as upstream
        if node["when"] is not None:

            def value(ref: str) -> Any:
                return x if ref == "inputs.x" else done.get(ref, _GONE)

            if not _holds(node["when"], value):
                continue
        done[node["id"]] = node["value"]
    return set(done)


def _workflow(nodes: list[dict[str, Any]]) -> Workflow:
    wf = Workflow("prop", inputs={"x": 0})
    for node in nodes:
        wf.task(
            node["id"],
            {"kind": "python_code", "code": f"result = {node['value']}"},
            after=node["deps"],
            when=node["when"],
            join="any" if node["any"] else "all",
        )
    return wf


def _executed(url: str, runs_dir: str, wf: Workflow, x: int) -> tuple[set[str], Any]:
    async def main() -> tuple[set[str], Any]:
        async with Engine(url, settings=Settings(runs_dir=runs_dir)) as engine:
            state = await engine.run(wf, {"x": x})
            records = await engine.ledger(state.run_id)
        done = {
            r.node_id
            for r in records
            if r.kind == StepKind.NODE and r.status == StepStatus.COMPLETED
        }
        return done, state

    return asyncio.run(main())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), x=VALUES)
def test_the_executed_nodes_are_those_the_reference_evaluator_says(
    nodes: list[dict[str, Any]], x: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        done, state = _executed("memory://", tmp, _workflow(nodes), x)
    assert state.status.value == "completed", state.error
    assert done == expected_completed(nodes, x)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), x=VALUES)
def test_the_same_holds_on_sqlite(nodes: list[dict[str, Any]], x: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'db.sqlite'}"
        done, state = _executed(url, str(Path(tmp) / "runs"), _workflow(nodes), x)
    assert state.status.value == "completed", state.error
    assert done == expected_completed(nodes, x)


def test_two_independent_roots_both_run_when_a_sibling_branch_is_skipped() -> None:
    """A known failure elsewhere drops a sibling root silently: here both roots run."""
    nodes = [
        {"id": "n0", "value": 1, "deps": [], "any": False, "when": None},
        {"id": "n1", "value": 2, "deps": [], "any": False, "when": None},
        {"id": "n2", "value": 3, "deps": ["n0"], "any": False, "when": {"gt": ["n0", 5]}},
        {"id": "n3", "value": 4, "deps": ["n1", "n2"], "any": False, "when": None},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        done, _ = _executed("memory://", tmp, _workflow(nodes), 0)
    assert done == {"n0", "n1", "n3"} == expected_completed(nodes, 0)
