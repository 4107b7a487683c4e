"""Sub-workflow nodes (``workflow: child.yaml``): inputs, output mapping, depth limit, map.

The child files are real files in a temp dir, loaded as a user's would be.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spindle.core.engine import Engine
from spindle.core.errors import ValidationError
from spindle.core.workflow import load_workflow

from .conftest import run

CHILD = """
name: child
inputs:
  numbers: {required: true}
nodes:
  total:
    runtime: {kind: python_code, code: "result = sum(inputs['numbers'])"}
  stats:
    inputs: {total: total}
    runtime:
      kind: python_code
      code: "result = {'count': len(inputs['numbers']), 'total': inputs['total']}"
output: stats
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), "utf-8")
    return path


def _run_file(path: Path, url: str, make_engine: Callable[..., Engine], **inputs: Any) -> Any:
    async def main() -> tuple[Any, list[Any]]:
        async with make_engine(url) as engine:
            state = await engine.run(load_workflow(path), inputs)
            children = await engine.store.list_runs(parent_run_id=state.run_id)
            return state, children

    return run(main())


def test_a_workflow_node_runs_the_child_with_the_nodes_inputs(
    tmp_path: Path, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    _write(tmp_path, "child.yaml", CHILD)
    parent = _write(
        tmp_path,
        "parent.yaml",
        """
        name: parent
        nodes:
          nums:
            runtime: {kind: python_code, code: "result = [1, 2, 3, 4]"}
          stats:
            workflow: child.yaml
            inputs: {numbers: nums}
          report:
            inputs: {s: stats}
            runtime: {kind: python_code, code: "result = inputs['s']['total'] * 10"}
        output: report
        """,
    )
    state, children = _run_file(parent, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == 100
    (child,) = children
    assert child.status.value == "completed" and child.output == {"count": 4, "total": 10}


def test_output_picks_values_of_the_childs_nodes(
    tmp_path: Path, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    _write(tmp_path, "child.yaml", CHILD)
    parent = _write(
        tmp_path,
        "parent.yaml",
        """
        name: parent
        inputs: {numbers: [5, 6]}
        nodes:
          stats:
            workflow: {path: child.yaml, output: {sum: total, summary: stats}}
            inputs: {numbers: inputs.numbers}
        output: stats
        """,
    )
    state, _ = _run_file(parent, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == {"sum": 11, "summary": {"count": 2, "total": 11}}


def test_a_map_over_a_sub_workflow_runs_one_child_per_item(
    tmp_path: Path, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    _write(tmp_path, "child.yaml", CHILD)
    parent = _write(
        tmp_path,
        "parent.yaml",
        """
        name: parent
        nodes:
          groups:
            runtime: {kind: python_code, code: "result = [[1], [2, 3], [4, 5, 6]]"}
          each:
            map:
              over: groups
              concurrency: 2
              node:
                workflow: {path: child.yaml, output: total}
                inputs: {numbers: item}
        output: each
        """,
    )
    state, children = _run_file(parent, store_url, make_engine)
    assert state.status.value == "completed", state.error
    assert state.output == [1, 5, 15]
    assert len(children) == 3 and {c.status.value for c in children} == {"completed"}


def test_a_workflow_that_starts_itself_stops_at_max_depth(
    tmp_path: Path, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    loop = _write(
        tmp_path,
        "again.yaml",
        """
        name: again
        nodes:
          deeper:
            workflow: {path: again.yaml, max_depth: 3}
        """,
    )
    state, _ = _run_file(loop, store_url, make_engine)
    assert state.status.value == "failed"
    assert "more than max_depth 3" in state.error
    assert "needs a condition (when:)" in state.error


def test_an_output_naming_no_node_of_the_child_fails_the_node_clearly(
    tmp_path: Path, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    _write(tmp_path, "child.yaml", CHILD)
    parent = _write(
        tmp_path,
        "parent.yaml",
        """
        name: parent
        nodes:
          stats:
            workflow: {path: child.yaml, output: {m: mean}}
            inputs: {numbers: {value: [1]}}
        """,
    )
    state, _ = _run_file(parent, store_url, make_engine)
    assert state.status.value == "failed"
    assert "output refers to no node of it: mean" in state.error


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("workflow: 3", "expected a workflow file path"),
        ("workflow: {output: x}", "needs 'path:'"),
        ("workflow: {path: child.yaml, depth: 2}", "unknown field 'depth' in workflow"),
        ("workflow: {path: child.yaml, max_depth: 0}", "max_depth must be a positive integer"),
        ("workflow: {path: child.yaml, output: [a]}", "a workflow node's output is"),
        ("workflow: missing.yaml", "missing.yaml"),
        (
            "workflow: child.yaml\n    runtime: {kind: python_code, code: 'result = 1'}",
            "has no 'runtime' or 'effect' of its own",
        ),
    ],
)
def test_bad_workflow_nodes_are_refused_when_the_file_loads(
    tmp_path: Path, node: str, message: str
) -> None:
    _write(tmp_path, "child.yaml", CHILD)
    path = tmp_path / "parent.yaml"
    path.write_text(f"name: parent\nnodes:\n  sub:\n    {node}\n", "utf-8")
    with pytest.raises(ValidationError) as info:
        load_workflow(path)
    text = "\n".join(info.value.problems)
    assert message in text, text
    assert "parent.yaml:" in text


def test_a_workflow_output_mapping_gathers_several_nodes(
    store_url: str, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "wf.yaml",
        """
        name: many
        nodes:
          a: {runtime: {kind: python_code, code: "result = 1"}}
          b: {runtime: {kind: python_code, code: "result = 2"}}
        output: {first: a, second: b}
        """,
    )
    state, _ = _run_file(path, store_url, make_engine)
    assert state.output == {"first": 1, "second": 2}


def test_a_workflow_output_mapping_naming_an_unknown_node_is_a_load_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "wf.yaml",
        """
        name: many
        nodes:
          a: {runtime: {kind: python_code, code: "result = 1"}}
        output: {first: a, second: nope}
        """,
    )
    with pytest.raises(ValidationError) as info:
        load_workflow(path)
    assert any("unknown node 'nope' @" in p and "output.second" in p for p in info.value.problems)


def test_the_python_api_adds_a_sub_workflow_node(
    tmp_path: Path, store_url: str, make_engine: Callable[..., Engine]
) -> None:
    from spindle.core.workflow import Workflow

    child = load_workflow(_write(tmp_path, "child.yaml", CHILD))
    wf = Workflow("parent", inputs={"numbers": [2, 3]})
    wf.subworkflow("stats", "child", inputs={"numbers": "inputs.numbers"}, output="total")

    async def main() -> Any:
        async with make_engine(store_url, workflows={"child": child}) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status.value == "completed", state.error
    assert state.output == {"stats": 5}
