"""A property of conditions and the join rule: for random DAGs with random ``when:``
conditions, the nodes a run executes are exactly those a small reference evaluator,
written here from the documented rules (docs/control-flow.md), says should run."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle import Settings
from spindle.core.engine import Engine
from spindle.core.model import StepKind, StepStatus
from spindle.core.workflow import Workflow, load_workflow_text

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
    """Nodes ``n0..nK``: each a value (or a failure tolerated with
    ``continue_on_failure``), dependencies among earlier nodes, maybe ``join: any``,
    maybe a condition over nodes that have surely ended when it is evaluated."""
    size = draw(st.integers(min_value=3, max_value=10))
    nodes: list[dict[str, Any]] = []
    settled: dict[str, set[str]] = {}
    for i in range(size):
        nid = f"n{i}"
        earlier = [f"n{j}" for j in range(i)]
        deps = sorted(draw(st.sets(st.sampled_from(earlier), max_size=3))) if earlier else []
        join_any = bool(deps) and draw(st.booleans()) and draw(st.booleans())
        # The nodes that have ended whenever this one starts: with join all every
        # dependency and what it waited for; with join any only what every
        # dependency shares, since it starts once the first one completes. A
        # condition reads only these, so the verdict does not depend on timing.
        reach = [{d} | settled[d] for d in deps]
        if not reach:
            settled[nid] = set()
        elif join_any:
            settled[nid] = set.intersection(*reach)
        else:
            settled[nid] = set.union(*reach)
        when = None
        if draw(st.booleans()):
            when = draw(_condition(sorted(settled[nid]) or ["inputs.x"]))
        fails = draw(st.integers(min_value=0, max_value=7)) == 0
        value = None if fails else draw(VALUES)
        nodes.append({"id": nid, "value": value, "deps": deps, "any": join_any, "when": when})
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


def expected_ends(nodes: list[dict[str, Any]], x: int) -> dict[str, str]:
    """How each node ends, by the reference evaluator of the join rule and conditions:
    ``completed``, ``failed``, or the ``skipped_by`` reason (``when``, ``upstream``,
    ``failed``, the latter spelt ``skipped:failed``)."""
    ends: dict[str, str] = {}
    values: dict[str, int] = {}
    bad = ("failed", "skipped:failed")
    for node in nodes:
        deps, nid = node["deps"], node["id"]
        if deps and node["any"]:
            if not any(ends[d] == "completed" for d in deps):
                ends[nid] = "skipped:failed" if any(ends[d] in bad for d in deps) else "upstream"
                continue
        elif deps:
            if any(ends[d] in bad for d in deps):
                ends[nid] = "skipped:failed"
                continue
            if all(ends[d] in ("when", "upstream") for d in deps):
                ends[nid] = "upstream"
                continue
        if node["when"] is not None:

            def value(ref: str) -> Any:
                return x if ref == "inputs.x" else values.get(ref, _GONE)

            if not _holds(node["when"], value):
                ends[nid] = "when"
                continue
        if node["value"] is None:
            ends[nid] = "failed"
        else:
            ends[nid] = "completed"
            values[nid] = node["value"]
    return ends


def expected_completed(nodes: list[dict[str, Any]], x: int) -> set[str]:
    """Which nodes run to completion, by the reference evaluator."""
    return {n for n, end in expected_ends(nodes, x).items() if end == "completed"}


def expected_status(nodes: list[dict[str, Any]], x: int) -> str:
    """The run's status: tolerated failures fail it only when no leaf completed."""
    ends = expected_ends(nodes, x)
    if "failed" not in ends.values():
        return "completed"
    leaves = {n["id"] for n in nodes} - {d for n in nodes for d in n["deps"]}
    return "completed" if any(ends[n] == "completed" for n in leaves) else "failed"


def _code(node: dict[str, Any]) -> str:
    if node["value"] is None:
        return f"raise ValueError('{node['id']} is down')"
    return f"result = {node['value']}"


def _workflow(nodes: list[dict[str, Any]]) -> Workflow:
    """The DAG built through the Python API."""
    wf = Workflow("prop", inputs={"x": 0})
    for node in nodes:
        wf.task(
            node["id"],
            {"kind": "python_code", "code": _code(node)},
            after=node["deps"],
            when=node["when"],
            join="any" if node["any"] else "all",
            continue_on_failure=node["value"] is None,
        )
    return wf


def _yaml_workflow(nodes: list[dict[str, Any]]) -> Workflow:
    """The same DAG written as a YAML file and read by the loader."""
    doc: dict[str, Any] = {"name": "prop", "inputs": {"x": 0}, "nodes": {}}
    for node in nodes:
        spec: dict[str, Any] = {"runtime": {"kind": "python_code", "code": _code(node)}}
        if node["deps"]:
            spec["after"] = node["deps"]
        if node["when"] is not None:
            spec["when"] = node["when"]
        if node["any"]:
            spec["join"] = "any"
        if node["value"] is None:
            spec["continue_on_failure"] = True
        doc["nodes"][node["id"]] = spec
    return load_workflow_text(yaml.safe_dump(doc, sort_keys=False), filename="prop.yaml")


def _run(url: str, runs_dir: str, wf: Workflow, x: int) -> tuple[dict[str, str], str]:
    """How each node ended in the ledger (as :func:`expected_ends` spells it), and
    the run's status."""

    async def main() -> tuple[dict[str, str], str]:
        async with Engine(url, settings=Settings(runs_dir=runs_dir)) as engine:
            state = await engine.run(wf, {"x": x})
            records = await engine.ledger(state.run_id)
        ends: dict[str, str] = {}
        for r in records:
            if r.kind != StepKind.NODE:
                continue
            assert r.node_id not in ends, f"{r.node_id} has two node records"
            if r.status == StepStatus.SKIPPED:
                why = r.result["skipped_by"]
                ends[r.node_id] = "skipped:failed" if why == "failed" else why
            else:
                ends[r.node_id] = r.status.value
        return ends, state.status.value

    return asyncio.run(main())


def _check(nodes: list[dict[str, Any]], x: int, ends: dict[str, str], status: str) -> None:
    expected = expected_ends(nodes, x)
    assert ends == expected, {n: (ends.get(n), e) for n, e in expected.items() if ends.get(n) != e}
    assert status == expected_status(nodes, x)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), x=VALUES)
def test_the_executed_nodes_are_those_the_reference_evaluator_says(
    nodes: list[dict[str, Any]], x: int
) -> None:
    """Each node of a random DAG ends (completed, failed, skipped and why) as the
    reference evaluator says, and so does the run."""
    with tempfile.TemporaryDirectory() as tmp:
        ends, status = _run("memory://", tmp, _workflow(nodes), x)
    _check(nodes, x, ends, status)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), x=VALUES)
def test_a_dag_read_from_yaml_ends_as_the_reference_evaluator_says(
    nodes: list[dict[str, Any]], x: int
) -> None:
    """The same property holds for the DAG written as YAML and read by the loader."""
    with tempfile.TemporaryDirectory() as tmp:
        ends, status = _run("memory://", tmp, _yaml_workflow(nodes), x)
    _check(nodes, x, ends, status)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), x=VALUES)
def test_the_same_holds_on_sqlite(nodes: list[dict[str, Any]], x: int) -> None:
    """The property holds on the SQLite store (a file per example)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'db.sqlite'}"
        ends, status = _run(url, str(Path(tmp) / "runs"), _yaml_workflow(nodes), x)
    _check(nodes, x, ends, status)


def test_two_independent_roots_both_run_when_a_sibling_branch_is_skipped() -> None:
    """A known failure elsewhere drops a sibling root silently: here both roots run."""
    nodes = [
        {"id": "n0", "value": 1, "deps": [], "any": False, "when": None},
        {"id": "n1", "value": 2, "deps": [], "any": False, "when": None},
        {"id": "n2", "value": 3, "deps": ["n0"], "any": False, "when": {"gt": ["n0", 5]}},
        {"id": "n3", "value": 4, "deps": ["n1", "n2"], "any": False, "when": None},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        ends, _ = _run("memory://", tmp, _workflow(nodes), 0)
    assert {n for n, e in ends.items() if e == "completed"} == {"n0", "n1", "n3"}
    assert expected_completed(nodes, 0) == {"n0", "n1", "n3"}
