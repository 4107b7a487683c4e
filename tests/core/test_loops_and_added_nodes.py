"""Loop nodes and nodes added at run time (``ctx.add_node``), on both embedded stores.

A crash is simulated by a task raising a BaseException the engine does not
catch (the process "dies" mid-run, with what it committed kept); a new engine
on the same store then resumes the run, as after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spindle.core.engine import Engine
from spindle.core.errors import ValidationError
from spindle.core.model import StepKind, StepStatus
from spindle.core.workflow import Workflow, load_workflow_text

from .conftest import run

CALLS: list[tuple[str, Any]] = []
CRASH: dict[str, Any] = {"at": None}


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine handles it."""


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    CRASH["at"] = None


def double(prev: Any = None, k: int = 0) -> int:
    CALLS.append(("double", k))
    if CRASH["at"] == ("double", k):
        CRASH["at"] = None
        raise Crash(f"crash in iteration {k}")
    return int((prev or 1) * 2)


def _loop_wf(until: dict[str, Any] | None = None, most: int = 10) -> Workflow:
    wf = Workflow("grow")
    wf.loop(
        "grow",
        [
            {
                "id": "double",
                "inputs": {"prev": "previous.double", "k": "iteration"},
                "runtime": {"kind": "python", "function": double},
            },
            {
                "id": "label",
                "inputs": {"d": "double"},
                "runtime": {"kind": "python_code", "code": "result = f\"d={inputs['d']}\""},
            },
        ],
        until=until if until is not None else {"ge": ["double", 16]},
        max_iterations=most,
    )
    return wf


def _nodes(records: list[Any], status: StepStatus = StepStatus.COMPLETED) -> list[str]:
    return [r.node_id for r in records if r.kind == StepKind.NODE and r.status == status]


def test_a_loop_runs_its_body_until_its_condition_holds(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with make_engine(store_url) as engine:
            state = await engine.run(_loop_wf())
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status.value == "completed", state.error
    assert state.output == {"grow": {"double": 16, "label": "d=16"}}
    done = _nodes(records)
    assert done[:3] == ["grow#0/double", "grow#0/label", "grow#0"]
    assert [n for n in done if n.count("#") and "/" not in n] == [f"grow#{k}" for k in range(4)]
    last = next(r for r in records if r.node_id == "grow#3")
    assert last.result["done"] is True and last.result["iteration"] == 3
    assert list(CALLS) == [("double", k) for k in range(4)]


def test_a_loop_stops_at_max_iterations(store_url: str, make_engine: Callable[..., Engine]) -> None:
    async def main() -> Any:
        async with make_engine(store_url) as engine:
            return await engine.run(_loop_wf(until={"gt": ["double", 10**9]}, most=3))

    state = run(main())
    assert state.status.value == "completed"
    assert state.output == {"grow": {"double": 8, "label": "d=8"}}


def test_a_failing_body_node_fails_the_loop_and_names_the_iteration(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = load_workflow_text(
        """
name: bad
nodes:
  l:
    loop:
      max_iterations: 5
      body:
        - id: b
          inputs: {k: iteration}
          runtime: {kind: python_code, code: "assert inputs['k'] < 2, 'too far'"}
"""
    )

    async def main() -> Any:
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status.value == "failed"
    assert "loop 'l' iteration 2: body node 'b' failed" in (state.error or "")


def test_a_loop_resumed_after_a_crash_goes_on_at_the_iteration_it_was_in(
    sqlite_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = _loop_wf()
    CRASH["at"] = ("double", 2)

    async def crash() -> str:
        async with make_engine(sqlite_url) as engine:
            with pytest.raises(Crash):
                await engine.run(wf)
            (state,) = await engine.store.list_runs()
            return state.run_id

    run_id = run(crash())

    async def resume() -> tuple[Any, list[Any]]:
        async with make_engine(sqlite_url) as engine:
            state = await engine.resume(run_id, workflow=wf)
            return state, await engine.ledger(run_id)

    state, records = run(resume())
    assert state.status.value == "completed", state.error
    assert state.output == {"grow": {"double": 16, "label": "d=16"}}
    # iterations 0 and 1 ran once; 2 was in flight at the crash and ran again
    assert CALLS == [("double", 0), ("double", 1), ("double", 2), ("double", 2), ("double", 3)]
    done = _nodes(records)
    assert len(done) == len(set(done)), "a body node or iteration recorded twice"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[{runtime: {kind: python_code, code: 'x=1'}}]", "a loop body entry is a node mapping"),
        (
            "[{id: 'a#1', runtime: {kind: python_code, code: 'x=1'}}]",
            "loop body node id 'a#1' must be unique",
        ),
        ("[]", "loop needs 'body:'"),
    ],
)
def test_bad_loops_are_refused_when_the_file_loads(body: str, message: str) -> None:
    text = f"name: l\nnodes:\n  l:\n    loop: {{max_iterations: 2, body: {body}}}\n"
    with pytest.raises(ValidationError) as err:
        load_workflow_text(text, filename="l.yaml")
    assert any(message in p and p.startswith("l.yaml:") for p in err.value.problems), (
        err.value.problems
    )


def test_until_naming_a_node_that_is_neither_in_the_body_nor_upstream_is_refused() -> None:
    text = """
name: l
nodes:
  other: {runtime: {kind: python_code, code: "result = 1"}}
  l:
    loop:
      until: {eq: [other, 1]}
      body: [{id: b, runtime: {kind: python_code, code: "result = 1"}}]
"""
    with pytest.raises(ValidationError) as err:
        load_workflow_text(text, filename="l.yaml")
    assert any("'other', which is not upstream" in p for p in err.value.problems)


# --- nodes added at run time ---------------------------------------------------------


def plan(ctx: Any) -> str:
    CALLS.append(("plan", None))
    for i in range(3):
        ctx.add_node(
            f"part{i}",
            {
                "runtime": {"kind": "python", "function": f"{__name__}:part"},
                "inputs": {"i": {"value": i}},
            },
        )
    ctx.add_node(
        "total",
        {
            "runtime": {"kind": "python", "function": f"{__name__}:total"},
            "inputs": {"a": "part0", "b": "part1", "c": "part2"},
        },
    )
    return "planned"


def part(i: int) -> int:
    CALLS.append(("part", i))
    if CRASH["at"] == ("part", i):
        CRASH["at"] = None
        raise Crash("crash in an added node")
    return i * 10


def total(a: int, b: int, c: int) -> int:
    return a + b + c


def _dynamic_wf() -> Workflow:
    wf = Workflow("dyn")
    wf.task("plan", {"kind": "python", "function": plan})
    return wf


def test_added_nodes_run_after_the_node_that_added_them(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with make_engine(store_url) as engine:
            state = await engine.run(_dynamic_wf())
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status.value == "completed", state.error
    done = _nodes(records)
    assert done == ["plan", "part0", "part1", "part2", "total"]
    assert next(r for r in records if r.node_id == "total" and r.kind == StepKind.NODE).result == 30
    adds = [r for r in records if r.kind == StepKind.CALL and r.name == "add_node"]
    assert [r.result["id"] for r in adds] == ["part0", "part1", "part2", "total"]


def test_the_default_output_holds_the_added_leaves_not_the_adder(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """With no ``output:``, a run's output is its leaves' results; a node added at run
    time counts, and the nodes it depends on (the adder, the parts) are no leaves."""

    async def main() -> Any:
        async with make_engine(store_url) as engine:
            return await engine.run(_dynamic_wf())

    state = run(main())
    assert state.status.value == "completed", state.error
    assert state.output == {"total": 30}


def test_a_resumed_run_rebuilds_the_added_nodes_from_its_ledger(
    sqlite_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = _dynamic_wf()
    CRASH["at"] = ("part", 1)

    async def crash() -> str:
        async with make_engine(sqlite_url) as engine:
            with pytest.raises(Crash):
                await engine.run(wf)
            (state,) = await engine.store.list_runs()
            return state.run_id

    run_id = run(crash())

    async def resume() -> tuple[Any, list[Any]]:
        async with make_engine(sqlite_url) as engine:
            state = await engine.resume(run_id, workflow=wf)
            return state, await engine.ledger(run_id)

    state, records = run(resume())
    assert state.status.value == "completed", state.error
    assert CALLS.count(("plan", None)) == 1  # the adding node is not run again
    # part1 died; part0 may have been in flight beside it (at-least-once), no more
    assert CALLS.count(("part", 1)) == 2 and CALLS.count(("part", 0)) <= 2
    total_rec = next(r for r in records if r.node_id == "total" and r.kind == StepKind.NODE)
    assert total_rec.result == 30


def _adder(node_id: str, node: dict[str, Any]) -> Callable[[Any], str]:
    def add(ctx: Any) -> str:
        try:
            ctx.add_node(node_id, node)
        except ValidationError as exc:
            return f"{exc} {exc.problems}"
        return "added"

    return add


@pytest.mark.parametrize(
    ("node_id", "node", "message"),
    [
        ("a.b", {"runtime": {"kind": "python_code", "code": "x=1"}}, "a node id is a non-empty"),
        ("first", {"runtime": {"kind": "python_code", "code": "x=1"}}, "already has a node"),
        (
            "x",
            {"runtime": {"kind": "python_code", "code": "x=1"}, "after": ["later"]},
            "it depends on 'later', which has not ended",
        ),
        (
            "x",
            {"runtime": {"kind": "python_code", "code": "x=1"}, "after": ["ghost"]},
            "'ghost', which is no node of the run",
        ),
        ("x", {"inputs": {}}, "needs exactly one of 'runtime' or 'effect'"),
        ("x", {"runtime": {"kind": "no_such_kind"}}, "no_such_kind"),
    ],
)
def test_a_node_that_cannot_be_added_is_refused_at_the_call(
    node_id: str, node: dict[str, Any], message: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("refuse")
    wf.task("first", {"kind": "python", "function": _adder(node_id, node)})
    wf.task("later", {"kind": "python_code", "code": "result = 1"}, after=["first"])
    wf.output = "first"

    async def main() -> Any:
        async with make_engine("memory://") as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status.value == "completed"
    assert message in state.output, state.output
