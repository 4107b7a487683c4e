"""``spindle show --graph`` on every control-flow construct and sub-runs nested in
``spindle show``, through the real CLI in a subprocess on a SQLite store in the
test's directory (``tests/e2e/test_cli_graph.py`` covers the formats and
escaping)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import EXAMPLES, Spindle


@pytest.fixture
def spindle(tmp_path: Path) -> Spindle:
    return Spindle(tmp_path)


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def _run(spindle: Spindle, *args: str, code: int = 0) -> str:
    got, doc = spindle.json("run", *args)
    assert got == code, doc
    return str(doc["run_id"])


def _graph(spindle: Spindle, run_id: str) -> dict[str, dict[str, Any]]:
    _exit, doc = spindle.json("show", run_id, "--graph")  # the run's status: tested elsewhere
    assert doc["run_id"] == run_id, doc
    return {n["id"]: n for n in doc["nodes"]}


def _tree(spindle: Spindle, run_id: str) -> list[str]:
    proc = spindle("show", run_id, "--graph")
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def _full_lines(lines: list[str]) -> dict[str, int]:
    """Node id to the index of the line that draws it in full."""
    out: dict[str, int] = {}
    for i, line in enumerate(lines):
        text = line.lstrip("│├└─ ")
        if not text.startswith(("↑ ", "… ")):
            nid = text.split("  ")[0]
            assert nid not in out, f"{nid} drawn twice"
            out[nid] = i
    return out


def test_branch_tree_draws_each_node_once_and_every_marker_points_above(spindle, tmp_path):
    """A branch's chosen and skipped nodes are drawn once each; a '↑' marker comes after."""
    shutil.copytree(EXAMPLES / "control_flow", tmp_path / "cf")
    run_id = _run(spindle, "cf/branch.yaml")
    lines = _tree(spindle, run_id)
    full = _full_lines(lines)
    assert set(full) == {"classify", "route", "parse_csv", "parse_json", "reject", "report"}
    refs = [(i, re.search(r"↑ (\S+) \(shown above\)", x)) for i, x in enumerate(lines)]
    refs = [(i, m.group(1)) for i, m in refs if m]
    assert refs, lines
    for i, nid in refs:
        assert full[nid] < i, (nid, lines)
    assert "parse_json  skipped (branch)" in lines[full["parse_json"]]
    assert "reject  skipped (branch)" in lines[full["reject"]]
    nodes = _graph(spindle, run_id)
    assert nodes["parse_csv"]["depends_on"] == ["route"]
    assert nodes["route"]["depends_on"] == ["classify"]
    assert nodes["report"]["depends_on"] == ["parse_csv", "parse_json", "reject"]


def test_map_and_loop_hang_under_the_node_their_template_and_body_read(spindle, write):
    """A map template's and a loop body's upstream references are the map's and loop's edges."""
    write(
        "wf.yaml",
        """
name: reads_upstream
nodes:
  a:
    runtime: {kind: python_code, code: "result = 5"}
  each:
    map:
      over: {range: 3}
      node:
        inputs: {x: a, i: index}
        runtime: {kind: python_code, code: "result = inputs['x'] + inputs['i']"}
  grow:
    loop:
      body:
        - id: step
          inputs: {k: iteration, x: a}
          runtime: {kind: python_code, code: "result = inputs['k'] + inputs['x']"}
      until: {ge: [step, 6]}
""",
    )
    run_id = _run(spindle, "wf.yaml")
    nodes = _graph(spindle, run_id)
    assert nodes["each"]["depends_on"] == ["a"]
    assert nodes["grow"]["depends_on"] == ["a"]
    assert nodes["each[2]"]["parent"] == "each"
    assert nodes["grow#1/step"]["parent"] == "grow#1"
    lines = _tree(spindle, run_id)
    assert lines[0] == "a  completed"
    assert [x for x in lines if not x.startswith((" ", "│", "├", "└"))] == ["a  completed"]


def test_skips_say_why_when_and_upstream(spindle, write):
    """A false ``when`` skips its node as ``when`` and the node after it as ``upstream``."""
    write(
        "wf.yaml",
        """
name: skips
nodes:
  a:
    runtime: {kind: python_code, code: "result = 0"}
  gated:
    after: [a]
    when: {gt: [a, 1]}
    runtime: {kind: python_code, code: "result = 1"}
  later:
    inputs: {g: gated}
    runtime: {kind: python_code, code: "result = 2"}
  sibling:
    runtime: {kind: python_code, code: "result = 3"}
""",
    )
    run_id = _run(spindle, "wf.yaml")
    text = "\n".join(_tree(spindle, run_id))
    assert "└─ gated  skipped (when)" in text
    assert "└─ later  skipped (upstream)" in text
    assert "\nsibling  completed" in text
    nodes = _graph(spindle, run_id)
    assert nodes["later"]["skipped_by"] == "upstream" and nodes["later"]["depends_on"] == ["gated"]


def test_nodes_added_at_run_time_hang_under_their_adder(spindle, tmp_path):
    """``ctx.add_node`` nodes come from the ledger, after the node that added them."""
    shutil.copytree(EXAMPLES / "control_flow", tmp_path / "cf")
    run_id = _run(spindle, "cf/add_node.yaml")
    nodes = _graph(spindle, run_id)
    assert list(nodes) == ["plan", "fit_0", "fit_1", "fit_2", "fit_3", "choose"]
    assert nodes["fit_2"]["depends_on"] == ["plan"]
    assert nodes["choose"]["depends_on"] == ["plan", "fit_0", "fit_1", "fit_2", "fit_3"]
    assert all(n["state"] == "completed" for n in nodes.values())
    lines = _tree(spindle, run_id)
    full = _full_lines(lines)
    assert set(full) == set(nodes)
    assert lines[full["choose"]].startswith("├─ ") or lines[full["choose"]].startswith("│")
    assert sum("↑ choose (shown above)" in x for x in lines) == 4


def test_an_iteration_that_failed_inside_is_drawn_with_its_body(spindle, write):
    """A body node failing in iteration 1 shows under ``L#1``, which has no record of its own."""
    write(
        "wf.yaml",
        """
name: breaks
nodes:
  L:
    loop:
      body:
        - id: b
          inputs: {k: iteration}
          runtime:
            kind: python_code
            code: |
              if inputs["k"] == 1:
                  raise ValueError("second time")
              result = inputs["k"]
      until: {ge: [b, 5]}
""",
    )
    run_id = _run(spindle, "wf.yaml", code=1)
    nodes = _graph(spindle, run_id)
    assert nodes["L#1"]["parent"] == "L" and nodes["L#1/b"]["parent"] == "L#1"
    assert nodes["L#1/b"]["state"] == "failed"
    lines = _tree(spindle, run_id)
    at = next(i for i, x in enumerate(lines) if "L#1  " in x)
    assert lines[at + 1].endswith("└─ L#1/b  failed")


def test_a_waiting_node_in_a_loop_marks_its_iteration_and_loop_running(spindle, write):
    """While the run waits, the iteration and loop holding the waiting node are running."""
    write(
        "wf.yaml",
        """
name: asks
nodes:
  L:
    loop:
      body:
        - id: ask
          effect: {kind: ask_user, prompt: "again?", choices: ["yes", "no"]}
      until: {eq: [ask, "no"]}
  after_loop:
    after: [L]
    runtime: {kind: python_code, code: "result = 1"}
""",
    )
    run_id = _run(spindle, "wf.yaml", code=3)
    nodes = _graph(spindle, run_id)
    assert nodes["L#0/ask"]["state"] == "waiting"
    assert nodes["L#0"]["state"] == "running" and nodes["L"]["state"] == "running"
    assert nodes["after_loop"]["state"] == "pending"


def test_a_long_chain_draws_without_running_out_of_stack(spindle, write):
    """1,200 nodes in a chain draw as 1,200 lines (the tree is walked without recursion)."""
    lines = [
        "name: chain",
        "nodes:",
        "  n0:",
        "    runtime: {kind: python_code, code: 'result = 0'}",
    ]
    for i in range(1, 1200):
        lines += [
            f"  n{i}:",
            f"    after: [n{i - 1}]",
            "    runtime: {kind: python_code, code: 'result = 0'}",
        ]
    write("wf.yaml", "\n".join(lines) + "\n")
    run_id = _run(spindle, "wf.yaml")
    tree = _tree(spindle, run_id)
    assert len(tree) == 1200
    assert tree[-1].endswith("└─ n1199  completed")


def test_show_nests_sub_runs_five_levels_deep_then_counts(spindle, write):
    """A chain of seven workflows shows five levels of sub-runs, then '… deeper'."""
    for level in range(7):
        body = (
            f"    workflow: level{level + 1}.yaml\n"
            if level < 6
            else "    runtime: {kind: python_code, code: 'result = 6'}\n"
        )
        write(f"level{level}.yaml", f"name: level{level}\nnodes:\n  step{level}:\n{body}")
    run_id = _run(spindle, "level0.yaml")
    proc = spindle("show", run_id)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    subs = [x for x in lines if "└─ sub-run " in x]
    assert [x.split()[-2] for x in subs] == [f"level{i}" for i in range(1, 6)]
    # each level is indented further than the one above it, under its node's row
    indents = [len(x) - len(x.lstrip()) for x in subs]
    assert indents == sorted(indents) and len(set(indents)) == 5
    step = next(i for i, x in enumerate(lines) if x.strip().startswith("step0 "))
    assert "└─ sub-run " in lines[step + 1] and "level1" in lines[step + 1]
    assert any("… 1 sub-run(s) deeper than 5 levels" in x for x in lines)
    code, doc = spindle.json("show", run_id)
    assert code == 0 and len(doc["children"]) == 1
    detail, depth = doc["children_detail"], 0
    while detail:
        (child,) = detail
        depth += 1
        assert child["workflow"] == f"level{depth}" and child["status"] == "completed"
        assert child["node"] == f"step{depth - 1}"
        assert child["nodes"] == {f"step{depth}": "completed"}
        last, detail = child, child["children_detail"]
    assert depth == 5 and last["more_children"] == 1


def test_subworkflow_example_nests_the_child_under_its_node(spindle, tmp_path):
    """examples/subworkflow/parent.yaml: the child run's rows sit under ``stats``."""
    shutil.copytree(EXAMPLES / "subworkflow", tmp_path / "sub")
    run_id = _run(spindle, "sub/parent.yaml")
    lines = spindle("show", run_id).stdout.splitlines()
    at = next(i for i, x in enumerate(lines) if x.strip().startswith("stats "))
    assert "└─ sub-run " in lines[at + 1] and "child  completed" in lines[at + 1]
    rows = [x.split()[:2] for x in lines[at + 2 : at + 4]]
    assert rows == [["total", "completed"], ["stats", "completed"]]
    assert lines[at + 4].strip().startswith("report ")
    code, doc = spindle.json("show", run_id)
    assert code == 0
    assert [c["run_id"] for c in doc["children_detail"]] == doc["children"]
    nodes = _graph(spindle, run_id)
    assert nodes["stats"]["depends_on"] == ["clean"] and nodes["report"]["state"] == "completed"
