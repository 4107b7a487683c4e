"""Conditions, the join rule, branch and map nodes, on both embedded stores."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from spindle.core.engine import Engine
from spindle.core.errors import ValidationError
from spindle.core.model import StepKind
from spindle.core.workflow import Workflow, load_workflow_text

from .conftest import run

SEEN: list[Any] = []
FLAKY: dict[int, int] = {}
LIVE = {"now": 0, "most": 0}
LOCK = threading.Lock()


@pytest.fixture(autouse=True)
def _reset() -> None:
    SEEN.clear()
    FLAKY.clear()
    LIVE.update(now=0, most=0)


class Events:
    """An observer keeping the lifecycle events."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def on_event(self, event: Any) -> None:
        self.events.append(event)


def _go(
    wf: Workflow, url: str, make_engine: Callable[..., Engine], **inputs: Any
) -> tuple[Any, list[Any], list[Any]]:
    seen = Events()

    async def main() -> tuple[Any, list[Any]]:
        async with make_engine(url, observers=[seen]) as engine:
            state = await engine.run(wf, inputs)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    return state, records, seen.events


def _status(records: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in records:
        if r.kind == StepKind.NODE:
            out[r.node_id] = r.status.value
    return out


def _code(value: str) -> dict[str, Any]:
    return {"kind": "python_code", "code": f"result = {value}"}


# --- when and the join rule --------------------------------------------------------


def test_a_false_condition_skips_the_node_records_why_and_tells_observers(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("gate", inputs={"limit": 0.5})
    wf.task("score", _code("0.3"))
    wf.task("publish", _code("'yes'"), after=["score"], when={"gt": ["score", 0.5]})
    wf.task("after_publish", _code("1"), after=["publish"])
    state, records, events = _go(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    status = _status(records)
    assert status == {"score": "completed", "publish": "skipped", "after_publish": "skipped"}
    skip = next(r for r in records if r.node_id == "publish")
    assert skip.result == {"skipped_by": "when", "condition": "score > 0.5"}
    downstream = next(r for r in records if r.node_id == "after_publish")
    assert downstream.result == {"skipped_by": "upstream"}
    told = [
        (e.node_id, e.payload.get("skipped_by")) for e in events if e.type.value == "node_skipped"
    ]
    assert told == [("publish", "when"), ("after_publish", "upstream")]


def test_a_node_runs_when_one_dependency_is_live_and_gets_none_for_the_skipped(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("join")
    wf.task("a", _code("1"))
    wf.task("b", _code("2"), after=["a"], when={"lt": ["a", 0]})
    wf.task("c", _code("[inputs['a'], inputs['b']]"), inputs={"a": "a", "b": "b"})
    state, records, _ = _go(wf, store_url, make_engine)
    assert _status(records)["c"] == "completed"
    assert state.output == {"c": [1, None]}


def test_join_any_runs_after_the_first_dependency_that_completes(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("race")
    wf.task("fast", _code("'fast'"))
    wf.task("never", _code("'x'"), after=["fast"], when={"eq": ["fast", "slow"]})
    wf.task("first", _code("inputs['f']"), inputs={"f": "fast"}, after=["never"], join="any")
    state, records, _ = _go(wf, store_url, make_engine)
    assert _status(records)["first"] == "completed"
    assert state.output == {"first": "fast"}


def test_a_condition_on_a_workflow_input_gates_a_root_and_its_sibling_still_runs(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("roots", inputs={"mode": "fast"})
    wf.task("slow_root", _code("1"), when={"eq": ["inputs.mode", "slow"]})
    wf.task("other_root", _code("2"))
    state, records, _ = _go(wf, store_url, make_engine)
    assert _status(records) == {"slow_root": "skipped", "other_root": "completed"}
    assert state.output == {"other_root": 2}


def test_a_python_predicate_gets_upstream_results_by_name(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("pred")
    wf.task("score", _code("0.9"))
    wf.task("hi", _code("'hi'"), after=["score"], when=lambda score: score > 0.5)
    wf.task("lo", _code("'lo'"), after=["score"], when=lambda score: score < 0.5)
    _, records, _ = _go(wf, store_url, make_engine)
    assert _status(records) == {"score": "completed", "hi": "completed", "lo": "skipped"}


def test_a_predicate_naming_nothing_upstream_is_a_load_error() -> None:
    wf = Workflow("pred")
    wf.task("score", _code("0.9"))
    with pytest.raises(ValidationError, match="condition parameter 'scor' names neither"):
        wf.task("hi", _code("1"), after=["score"], when=lambda scor: scor > 0.5)
        wf.validate()


# --- branch ---------------------------------------------------------------------------

BRANCH = """
name: route
inputs: {kind: image}
nodes:
  detect:
    inputs: {k: inputs.kind}
    runtime: {kind: python_code, code: "result = inputs['k']"}
  route:
    branch:
      on: detect
      cases: {image: [resize], text: [tokenize], 3: [three], true: [yes_node]}
      default: [archive]
  resize: {runtime: {kind: python_code, code: "result = 'resized'"}}
  tokenize: {runtime: {kind: python_code, code: "result = 'tokens'"}}
  three: {runtime: {kind: python_code, code: "result = 3"}}
  yes_node: {runtime: {kind: python_code, code: "result = True"}}
  archive: {runtime: {kind: python_code, code: "result = 'archived'"}}
"""


@pytest.mark.parametrize(
    ("kind", "live"),
    [("image", "resize"), ("text", "tokenize"), (3, "three"), (True, "yes_node"), ("x", "archive")],
)
def test_a_branch_makes_its_chosen_case_live_and_skips_the_others(
    kind: Any, live: str, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    state, records, _ = _go(load_workflow_text(BRANCH), store_url, make_engine, kind=kind)
    assert state.status.value == "completed", state.error
    status = _status(records)
    listed = ["resize", "tokenize", "three", "yes_node", "archive"]
    assert {n: status[n] for n in listed} == {
        n: "completed" if n == live else "skipped" for n in listed
    }
    skipped = next(
        r for r in records if r.node_id == ("archive" if live != "archive" else "resize")
    )
    assert skipped.result["skipped_by"] == "branch" and skipped.result["branch"] == "route"


def test_a_branch_without_a_match_or_default_skips_every_listed_node(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    text = BRANCH.replace("      default: [archive]\n", "")
    text = text.replace(
        "  archive: {runtime: {kind: python_code, code: \"result = 'archived'\"}}\n", ""
    )
    state, records, _ = _go(load_workflow_text(text), store_url, make_engine, kind="none")
    assert state.status.value == "completed", state.error
    status = _status(records)
    assert all(status[n] == "skipped" for n in ("resize", "tokenize", "three", "yes_node"))


def test_a_branch_listing_an_unknown_node_is_a_load_error() -> None:
    with pytest.raises(ValidationError, match="case 'image' lists unknown node 'rezise'"):
        load_workflow_text(BRANCH.replace("image: [resize]", "image: [rezise]"))


# --- map ------------------------------------------------------------------------------


def track(item: Any, index: int) -> Any:
    with LOCK:
        LIVE["now"] += 1
        LIVE["most"] = max(LIVE["most"], LIVE["now"])
    SEEN.append(index)
    import time

    time.sleep(0.01)
    with LOCK:
        LIVE["now"] -= 1
    return {"i": index, "item": item}


def flaky(index: int) -> int:
    FLAKY[index] = FLAKY.get(index, 0) + 1
    if index % 3 == 0 and FLAKY[index] < 2:
        raise RuntimeError(f"item {index} flaked")
    return index


def always_fails_on_odd(index: int) -> int:
    if index % 2:
        raise ValueError(f"odd {index}")
    return index


def test_a_map_runs_at_most_concurrency_items_at_once_and_keeps_their_order(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("fan")
    wf.task("list", _code("['a', 'b', 'c', 'd', 'e', 'f', 'g']"))
    node = {"runtime": {"kind": "python", "function": track}, "executor": {"kind": "inline"}}
    wf.map("each", over="list", node=node, concurrency=2)
    wf.output = "each"
    state, records, _ = _go(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == [{"i": i, "item": x} for i, x in enumerate("abcdefg")]
    assert LIVE["most"] == 2  # two at once, never three
    items = [r for r in records if r.kind == StepKind.NODE and r.node_id.startswith("each[")]
    assert sorted(r.node_id for r in items) == sorted(f"each[{i}]" for i in range(7))


def test_a_map_over_item_keys_of_a_workflow_input(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = load_workflow_text(
        """
name: people
inputs:
  people: [{name: ann, age: 31}, {name: bob, age: 17}]
nodes:
  greet:
    map:
      over: inputs.people
      node:
        inputs: {n: item.name, a: item.age, i: index}
        runtime:
          kind: python_code
          code: "result = '%s:%s:%s' % (inputs['i'], inputs['n'], inputs['a'])"
output: greet
"""
    )
    state, _, _ = _go(wf, store_url, make_engine)
    assert state.output == ["0:ann:31", "1:bob:17"]


def test_an_empty_list_maps_to_an_empty_result(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("none")
    wf.task("list", _code("[]"))
    wf.map("each", over="list", node={"runtime": _code("1")})
    wf.task("count", _code("len(inputs['xs'])"), inputs={"xs": "each"})
    state, records, _ = _go(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == {"count": 0}
    assert _status(records)["each"] == "completed"


def test_each_item_follows_the_templates_retry_policy(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("retry")
    node = {"runtime": {"kind": "python", "function": flaky}, "retry": {"max_attempts": 2}}
    wf.map("each", over=7, node=node)
    wf.output = "each"
    state, records, _ = _go(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == list(range(7))
    assert {i: 2 if i % 3 == 0 else 1 for i in range(7)} == FLAKY
    retried = {r.node_id for r in records if r.kind == StepKind.RETRY}
    assert retried == {"each[0]", "each[3]", "each[6]"}


def test_max_failures_tolerates_that_many_failed_items_and_no_more(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    def build(most: int) -> Workflow:
        wf = Workflow("odd")
        node = {"runtime": {"kind": "python", "function": always_fails_on_odd}}
        wf.map("each", over=4, node=node, max_failures=most)
        wf.output = "each"
        return wf

    state, _, _ = _go(build(2), store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == [0, None, 2, None]
    state, records, _ = _go(build(1), store_url, make_engine)
    assert state.status.value == "failed"
    assert "map 'each': 2 of 4 items failed, more than max_failures 1" in state.error
    assert "each[1]" in state.error
    assert _status(records)["each"] == "failed"


def test_a_map_over_something_not_a_list_fails_naming_what_it_got(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("bad")
    wf.task("n", _code("42"))
    wf.map("each", over="n", node={"runtime": _code("1")})
    state, _, _ = _go(wf, store_url, make_engine)
    assert state.status.value == "failed"
    assert "a map needs a list" in state.error and "int 42" in state.error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("over: nope\n      node: {runtime: {kind: python_code, code: 'result = 1'}}", "nope"),
        (
            "over: {range: -1}\n      node: {runtime: {kind: python_code, code: 'result = 1'}}",
            "range must be a non-negative integer",
        ),
        ("over: {range: 2}", "map needs 'node:'"),
        (
            "over: {range: 2}\n      concurrency: 0\n"
            "      node: {runtime: {kind: python_code, code: 'result = 1'}}",
            "map concurrency must be an integer of at least 1",
        ),
        ("over: {range: 2}\n      node: {map: {over: {range: 2}}}", "cannot itself be a map"),
        ("over: {range: 2}\n      node: {loop: {max_iterations: 2}}", "make it a sub-workflow"),
        ("over: {range: 2}\n      nodes: {}", "unknown field 'nodes' in map"),
    ],
)
def test_bad_maps_are_refused_when_the_file_loads(body: str, message: str) -> None:
    text = f"name: m\nnodes:\n  each:\n    map:\n      {body}\n"
    with pytest.raises(ValidationError) as info:
        load_workflow_text(text, filename="m.yaml")
    joined = "\n".join(info.value.problems)
    assert message in joined and "m.yaml:" in joined, joined


def test_ten_thousand_items_need_no_task_per_waiting_item(
    make_engine: Callable[..., Engine],
) -> None:
    """Items are fed as earlier ones end: the tasks alive never approach the item count."""
    most = {"tasks": 0}

    async def noop(index: int) -> int:
        most["tasks"] = max(most["tasks"], len(asyncio.all_tasks()))
        return index

    wf = Workflow("big")
    wf.map("each", over=10_000, node={"runtime": {"kind": "python", "function": noop}})
    wf.task("count", _code("len(inputs['xs'])"), inputs={"xs": "each"})
    state, _, _ = _go(wf, "memory://", make_engine)
    assert state.output == {"count": 10_000}
    assert most["tasks"] < 200, most
