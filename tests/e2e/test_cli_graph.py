"""``spindle show RUN_ID --graph`` (tree, Mermaid, DOT, JSON) and sub-runs nested in
``spindle show``, through the real CLI on a SQLite store."""

from __future__ import annotations

import json
import re
from typing import Any

WF = """
name: shapes
nodes:
  a:
    runtime: {kind: python_code, code: "result = 2"}
  b:
    runtime: {kind: python_code, code: "result = 3"}
  low:
    after: [a]
    when: {lt: [a, 1]}
    runtime: {kind: python_code, code: "result = 'low'"}
  both:
    inputs: {x: a, y: b}
    runtime: {kind: python_code, code: "result = inputs['x'] + inputs['y']"}
  each:
    map:
      over: {range: 25}
      node:
        runtime: {kind: command, command: "echo {item}"}
  grow:
    loop:
      body:
        - id: step
          inputs: {k: iteration}
          runtime: {kind: python_code, code: "result = inputs['k']"}
      until: {ge: [step, 2]}
"""


def _run(spindle: Any, write: Any, text: str = WF) -> str:
    path = write("wf.yaml", text)
    code, doc = spindle.json("run", str(path))
    assert code == 0, doc
    return str(doc["run_id"])


def test_the_tree_shows_states_skips_items_and_iterations(spindle, write):
    run_id = _run(spindle, write)
    proc = spindle("show", run_id, "--graph")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    lines = text.splitlines()
    assert lines[0] == "a  completed"
    assert "├─ low  skipped (when)" in text
    assert "both  completed" in text and "↑ both (shown above)" in text
    # 25 items: the first ten in full, in index order, the rest counted.
    items = [x for x in lines if re.search(r"each\[\d+\]", x)]
    assert [re.search(r"each\[(\d+)\]", x).group(1) for x in items] == [str(i) for i in range(10)]
    assert any("… 15 more: 15 completed" in x for x in lines)
    # Loop iterations hang under the loop, body nodes under their iteration.
    grow = lines.index("grow  completed")
    assert lines[grow + 1].endswith("grow#0  completed")
    assert lines[grow + 2].endswith("grow#0/step  completed")
    assert "grow#2/step  completed" in text and "grow#3" not in text


def test_graph_json_lists_every_node_with_its_dependencies_and_parent(spindle, write):
    run_id = _run(spindle, write)
    code, doc = spindle.json("show", run_id, "--graph")
    assert code == 0
    nodes = {n["id"]: n for n in doc["nodes"]}
    assert doc["run_id"] == run_id
    assert nodes["both"]["depends_on"] == ["a", "b"]
    assert nodes["low"]["state"] == "skipped" and nodes["low"]["skipped_by"] == "when"
    assert nodes["each[24]"]["parent"] == "each" and nodes["each[24]"]["state"] == "completed"
    assert nodes["grow#1/step"]["parent"] == "grow#1" and nodes["grow#1"]["parent"] == "grow"
    assert ["a", "both"] in doc["edges"] and ["each", "each[3]"] in doc["edges"]


def test_mermaid_and_dot_are_well_formed_with_a_class_per_state(spindle, write):
    run_id = _run(spindle, write)
    mermaid = spindle("show", run_id, "--graph", "--format", "mermaid").stdout.splitlines()
    assert mermaid[0] == "flowchart TD"
    assert any(x.strip().startswith("classDef skipped") for x in mermaid)
    assert any('["low  skipped (when)"]:::skipped' in x for x in mermaid)
    assert any("each#91;3#93;" in x for x in mermaid)  # brackets escaped inside labels
    dot = spindle("show", run_id, "--graph", "--format", "dot").stdout
    assert dot.startswith('digraph "run ') and dot.rstrip().endswith("}")
    assert '[label="low  skipped (when)", fillcolor="#e0e0e0"]' in dot


def test_a_hostile_node_id_cannot_break_out_of_a_label(spindle, write):
    evil = 'x"]; click n0 call alert(1); n9["'
    dot_evil = 'y" ]; n0 -> n0; n1 [label="'
    text = (
        "name: hostile\nnodes:\n"
        f"  {json.dumps(evil)}:\n    runtime: {{kind: python_code, code: 'result = 1'}}\n"
        f"  {json.dumps(dot_evil)}:\n    runtime: {{kind: python_code, code: 'result = 2'}}\n"
    )
    run_id = _run(spindle, write, text)
    mermaid = spindle("show", run_id, "--graph", "--format", "mermaid").stdout.splitlines()
    labels = [x for x in mermaid if ":::" in x]
    assert len(labels) == 2
    for line in labels:
        # one node per line: an id, one quoted label with no raw quote or bracket inside
        assert re.fullmatch(r'  n\d+\["[^"\[\]]*"\]:::completed', line), line
    assert not any("click" in x and "-->" not in x and ":::" not in x for x in mermaid)
    dot = spindle("show", run_id, "--graph", "--format", "dot").stdout.splitlines()
    nodes = [x for x in dot if "[label=" in x]
    assert len(nodes) == 2
    edges = [x for x in dot if re.fullmatch(r"\s*n\d+ -> n\d+;", x)]
    assert edges == []  # the id's "n0 -> n0" stayed inside its quoted label
    for line in nodes:
        label = re.fullmatch(r'  n\d+ \[label=("(?:[^"\\]|\\.)*"), fillcolor="#b7e4c7"\];', line)
        assert label, line


def test_format_without_graph_is_a_usage_error(spindle, write):
    run_id = _run(spindle, write)
    proc = spindle("show", run_id, "--format", "dot")
    assert proc.returncode == 2
    assert "--format only applies with --graph" in proc.stderr


def test_show_nests_sub_runs_under_the_node_that_started_them(spindle, examples):
    code, doc = spindle.json("run", "examples/control_flow/subworkflow_node.yaml")
    assert code == 0, doc
    proc = spindle("show", doc["run_id"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, x in enumerate(lines) if x.strip().startswith("overall "))
    assert "└─ sub-run " in lines[at + 1] and "stats_child  completed" in lines[at + 1]
    assert lines[at + 2].split()[:2] == ["total", "completed"]
    for i in range(3):
        row = next(j for j, x in enumerate(lines) if x.strip().startswith(f"per_batch[{i}] "))
        assert "└─ sub-run " in lines[row + 1]
    # The listing of sub-workflow runs is still there, and --json keeps its keys.
    assert "sub-workflow runs:" in proc.stdout
    code, shown = spindle.json("show", doc["run_id"])
    assert len(shown["children"]) == 4 and "nodes" in shown
