"""A map's node template: ``{item}``/``{index}`` in commands, ``item`` as a parameter, and
the checks a template gets when the file loads (as any node does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spindle.core.engine import Engine
from spindle.core.errors import ValidationError
from spindle.core.workflow import Workflow, load_workflow_text

from .conftest import run


def _run(wf: Workflow, url: str, make_engine: Callable[..., Engine]) -> Any:
    async def main() -> Any:
        async with make_engine(url) as engine:
            return await engine.run(wf)

    return run(main())


def test_item_and_index_fill_a_command_shell_quoted(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = load_workflow_text(
        """
name: greet
inputs: {names: [ann, "bo b", "x; echo pwned"]}
nodes:
  each:
    map:
      over: inputs.names
      node:
        runtime: {kind: command, command: "printf '%s:%s' {index} {item}"}
output: each
"""
    )
    state = _run(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert list(state.output) == ["0:ann", "1:bo b", "2:x; echo pwned"]


def test_item_keys_fill_a_command(store_url: str, make_engine: Callable[..., Engine]) -> None:
    wf = load_workflow_text(
        """
name: files
nodes:
  list:
    runtime: {kind: python_code, code: "result = [{'name': 'a', 'n': 1}, {'name': 'b', 'n': 2}]"}
  each:
    map:
      over: list
      node:
        runtime: {kind: command, command: "echo {item.name}={item.n}"}
output: each
"""
    )
    state = _run(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert [r.strip() for r in state.output] == ["a=1", "b=2"]


def test_a_missing_item_key_fails_that_item_with_a_clear_error(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = load_workflow_text(
        """
name: files
nodes:
  each:
    map:
      over: {range: 2}
      node:
        runtime: {kind: command, command: "echo {item.name}"}
"""
    )
    state = _run(wf, store_url, make_engine)
    assert state.status.value == "failed"
    assert "placeholder '{item.name}' in command has no value" in state.error


def scale(item: int, index: int) -> int:
    return item * 10 + index


def test_a_function_taking_keywords_is_not_handed_item_and_index(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """Only what a runtime names is given: ``json.dumps(obj, **kw)`` gets ``obj`` alone."""
    wf = Workflow("dump")
    node = {"inputs": {"obj": "item"}, "runtime": {"kind": "python", "function": "json:dumps"}}
    wf.map("each", over=2, node=node)
    wf.output = "each"
    state = _run(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == ["0", "1"]


def test_item_and_index_are_parameters_of_a_python_template(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    wf = Workflow("scale")
    wf.map("each", over=3, node={"runtime": {"kind": "python", "function": scale}})
    code = "result = [inputs['index'], inputs['item']]"
    pairs = {"inputs": {"item": "item", "index": "index"}}
    wf.map("pairs", over="each", node={**pairs, "runtime": {"kind": "python_code", "code": code}})
    wf.output = "pairs"
    state = _run(wf, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == [[0, 0], [1, 11], [2, 22]]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            '{runtime: {kind: command, command: "echo {itme}"}}',
            "unknown placeholder '{itme}' in command",
        ),
        (
            '{runtime: {kind: python_code, code: "result = ("}}',
            "nodes.each.map.node.runtime",
        ),
    ],
)
def test_a_templates_plugin_problems_are_reported_when_the_file_loads(
    template: str, message: str
) -> None:
    text = f"name: w\nnodes:\n  each:\n    map:\n      over: {{range: 2}}\n      node: {template}\n"
    with pytest.raises(ValidationError) as info:
        load_workflow_text(text, filename="w.yaml")
    joined = "\n".join(info.value.problems)
    assert message in joined, joined
    assert "w.yaml:" in joined


@pytest.mark.parametrize("executor", ["inline", "subprocess", "process_pool"])
def test_a_map_runs_on_every_local_executor(
    executor: str, sqlite_url: str, make_engine: Callable[..., Engine]
) -> None:
    """Each item is a node like any other: the template's executor runs it."""
    wf = load_workflow_text(
        f"""
name: squares
nodes:
  each:
    map:
      over: {{range: 4}}
      concurrency: 2
      node:
        executor: {{kind: {executor}}}
        inputs: {{obj: item}}
        runtime: {{kind: python, function: "json:dumps"}}
output: each
"""
    )
    state = _run(wf, sqlite_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == ["0", "1", "2", "3"]


def test_an_executor_that_cannot_run_the_templates_payload_is_a_load_error() -> None:
    with pytest.raises(ValidationError) as info:
        load_workflow_text(
            """
name: squares
nodes:
  each:
    map:
      over: {range: 4}
      node:
        executor: {kind: process_pool}
        runtime: {kind: python_code, code: "result = 1"}
""",
            filename="sq.yaml",
        )
    (problem,) = info.value.problems
    assert "executor 'process_pool' cannot run what runtime 'python_code' prepares" in problem
    assert problem.startswith("sq.yaml:") and "@ nodes.each.map.node.executor" in problem
