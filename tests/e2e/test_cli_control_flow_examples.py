"""Every example in ``examples/control_flow/`` runs as its header says, through the real CLI.

Each test runs one example against the default SQLite store of its working
directory (a copy of ``examples/``) and checks what the construct is for:
which nodes ran, which were skipped and why (the ledger's skip records),
the item and iteration ids, and the values the run produced.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES, Spindle

pytestmark = pytest.mark.slow

FOLDER = EXAMPLES / "control_flow"


def _ledger(spindle: Spindle, run_id: str) -> list[dict[str, Any]]:
    proc = spindle("ledger", run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    records: list[dict[str, Any]] = json.loads(proc.stdout)["records"]
    return records


def _nodes(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each node record by node id (a node is recorded once: a second record fails)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["kind"] == "node":
            assert r["node_id"] not in out, f"node {r['node_id']} recorded twice"
            out[r["node_id"]] = r
    return out


def _statuses(spindle: Spindle, run_id: str) -> dict[str, str]:
    code, shown = spindle.json("show", run_id)
    assert code == 0, shown
    return {nid: n["status"] for nid, n in shown["nodes"].items()}


def _run(spindle: Spindle, name: str, *args: str) -> dict[str, Any]:
    code, doc = spindle.json("run", f"examples/control_flow/{name}", *args)
    assert code == 0, doc
    assert doc["status"] == "completed", doc
    return doc


# --- the headers -----------------------------------------------------------------------


def _header_commands(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [x.lstrip("# ").strip() for x in lines if x.startswith("#")]
    return [x for x in header if x.startswith("spindle run ")]


def test_every_example_header_says_what_it_shows_and_how_to_run_it():
    """Each YAML file opens with a comment naming the command that runs it."""
    files = sorted(FOLDER.glob("*.yaml"))
    assert {f.name for f in files} >= {
        "when.yaml",
        "branch.yaml",
        "map.yaml",
        "map_range.yaml",
        "loop.yaml",
        "add_node.yaml",
        "subworkflow_node.yaml",
    }
    for f in files:
        assert f.read_text(encoding="utf-8").startswith("# "), f.name
        commands = _header_commands(f)
        runs = [shlex.split(c, comments=True)[:3] for c in commands]
        assert ["spindle", "run", f"examples/control_flow/{f.name}"] in runs, f.name


@pytest.mark.parametrize("name", sorted(p.name for p in FOLDER.glob("*.yaml")))
def test_every_command_in_an_example_header_completes(spindle, examples, name):
    """The commands a header shows exit 0 with the run completed."""
    commands = _header_commands(FOLDER / name)
    assert commands, name
    for command in commands:
        args = shlex.split(command, comments=True)[1:]
        code, doc = spindle.json(*args)
        assert code == 0, (command, doc)
        assert doc["status"] == "completed", (command, doc)


# --- when ------------------------------------------------------------------------------


def test_when_runs_both_roots_and_skips_the_audit_with_its_condition(spindle, examples):
    """By default `publish` runs, `flag_for_audit` is skipped by `when`, `notify` runs."""
    doc = _run(spindle, "when.yaml")
    assert doc["output"] == "published (score 0.82)"
    assert _statuses(spindle, doc["run_id"]) == {
        "score": "completed",
        "review": "completed",
        "publish": "completed",
        "flag_for_audit": "skipped",
        "notify": "completed",
    }
    skip = _nodes(_ledger(spindle, doc["run_id"]))["flag_for_audit"]
    assert skip["status"] == "skipped"
    assert skip["result"]["skipped_by"] == "when"
    assert "review" in skip["result"]["condition"]


def test_when_takes_the_other_side_when_the_reviewer_says_no(spindle, examples):
    """verdict=no makes `all` false and `any` true: the audit runs, publish is skipped."""
    doc = _run(spindle, "when.yaml", "--input", "verdict=no")
    assert doc["output"] == "sent to the audit queue"
    statuses = _statuses(spindle, doc["run_id"])
    assert statuses["publish"] == "skipped"
    assert statuses["flag_for_audit"] == "completed"


def test_when_both_skipped_skips_the_join_as_upstream(spindle, examples):
    """A dry run skips both conditional nodes, so `notify` is skipped as `upstream`."""
    doc = _run(spindle, "when.yaml", "--input", "dry_run=true")
    assert doc["output"] is None
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    assert nodes["score"]["status"] == nodes["review"]["status"] == "completed"
    assert nodes["publish"]["result"]["skipped_by"] == "when"
    assert nodes["flag_for_audit"]["result"]["skipped_by"] == "when"
    assert nodes["notify"]["status"] == "skipped"
    assert nodes["notify"]["result"] == {"skipped_by": "upstream"}


# --- branch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "case", "live", "output"),
    [
        ("measurements.csv", "csv", "parse_csv", "parsed measurements.csv as CSV"),
        ("data.json", "json", "parse_json", "parsed data.json as JSON"),
        ("notes.txt", None, "reject", "no parser for .txt files; notes.txt left as is"),
    ],
)
def test_branch_runs_the_chosen_case_and_skips_the_others(
    spindle, examples, file, case, live, output
):
    """The case the file type picks (or the default) runs; the other listed nodes are skipped."""
    doc = _run(spindle, "branch.yaml", "--input", f"file={file}")
    assert doc["output"] == output
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    assert nodes["route"]["status"] == "completed"
    assert nodes["route"]["result"] == case
    for other in {"parse_csv", "parse_json", "reject"} - {live}:
        assert nodes[other]["status"] == "skipped"
        assert nodes[other]["result"] == {"skipped_by": "branch", "branch": "route", "case": case}
    assert nodes[live]["status"] == "completed"
    assert nodes["report"]["status"] == "completed"


# --- map -------------------------------------------------------------------------------


def test_map_runs_one_item_per_sample_tolerating_one_failure(spindle, examples):
    """Five items run once each; the corrupt one fails, and its place in the list is null."""
    doc = _run(spindle, "map.yaml")
    assert doc["output"] == {
        "measured": ["s1", "s2", "s4", "s5"],
        "failed": [2],
        "mean_density": 3.25,
    }
    statuses = _statuses(spindle, doc["run_id"])
    assert {k: v for k, v in statuses.items() if k.startswith("measure[")} == {
        "measure[0]": "completed",
        "measure[1]": "completed",
        "measure[2]": "failed",
        "measure[3]": "completed",
        "measure[4]": "completed",
    }
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    gathered = nodes["measure"]["result"]
    assert [g and (g["name"], g["position"]) for g in gathered] == [
        ("s1", 0),
        ("s2", 1),
        None,
        ("s4", 3),
        ("s5", 4),
    ]
    assert "ZeroDivisionError" in nodes["measure[2]"]["result"]["traceback"]


def test_map_over_a_range_feeds_each_number_to_a_command(spindle, examples):
    """`{range: 4}` runs four command items, their outputs gathered in order."""
    doc = _run(spindle, "map_range.yaml", "--input", "prefix=part")
    files = [f"part-{i}.parquet" for i in range(4)]
    assert doc["output"] == {"files": files, "count": 4}
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    assert [nodes[f"shards[{i}]"]["result"] for i in range(4)] == files
    assert "shards[4]" not in nodes


# --- loop ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "root", "iterations"), [("2.0", 1.414213562, 4), ("10", 3.16227766, 6)]
)
def test_loop_iterates_until_the_error_is_small(spindle, examples, number, root, iterations):
    """Each iteration is recorded as newton#k with its body nodes; the last says until held."""
    doc = _run(spindle, "loop.yaml", "--input", f"number={number}")
    assert doc["output"] == {"root": root, "iterations": iterations}
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    rounds = [n for n in nodes if n.startswith("newton#") and "/" not in n]
    assert rounds == [f"newton#{k}" for k in range(iterations)]
    for k in range(iterations):
        assert nodes[f"newton#{k}/step"]["status"] == "completed"
        assert nodes[f"newton#{k}/check"]["result"]["outputs"]["iteration"] == k
        assert nodes[f"newton#{k}"]["result"]["results"]["check"]["iteration"] == k
    last = nodes[f"newton#{iterations - 1}"]["result"]
    assert last["done"] is True and last["iteration"] == iterations - 1
    assert nodes[f"newton#{iterations - 2}"]["result"]["done"] is False


# --- ctx.add_node ----------------------------------------------------------------------


def test_add_node_records_each_addition_and_runs_the_added_nodes(spindle, examples):
    """`plan` adds fit_0..fit_3 and `choose` (add_node sub-steps); choose picks degree 2."""
    doc = _run(spindle, "add_node.yaml")
    added = [f"fit_{d}" for d in range(4)]
    # No output: in the file, so the output is the leaves': the added `choose` only.
    assert list(doc["output"]) == ["choose"] and doc["output"]["choose"]["degree"] == 2
    records = _ledger(spindle, doc["run_id"])
    calls = [r["result"]["id"] for r in records if r["kind"] == "call"]
    assert calls == [*added, "choose"]
    nodes = _nodes(records)
    assert [nodes[f]["result"]["degree"] for f in added] == [0, 1, 2, 3]
    assert nodes["choose"]["result"]["degree"] == 2
    assert list(_statuses(spindle, doc["run_id"])) == ["plan", *added, "choose"]


def test_add_node_adds_as_many_nodes_as_the_input_asks(spindle, examples):
    """max_degree=5 adds six fit nodes; the choice is still the quadratic."""
    doc = _run(spindle, "add_node.yaml", "--input", "max_degree=5")
    assert list(doc["output"]) == ["choose"]
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    assert nodes["choose"]["result"]["degree"] == 2
    assert len(nodes["choose"]["result"]["errors"]) == 6


# --- sub-workflow nodes ----------------------------------------------------------------


def test_subworkflow_nodes_run_children_and_map_over_them(spindle, examples):
    """`overall` picks two child values; `per_batch` runs one child per batch, in order."""
    doc = _run(spindle, "subworkflow_node.yaml")
    assert doc["output"] == "7 numbers, mean 16.43; batch means 9.0, 27.0, 7.0"
    _, listing = spindle.json("runs")
    children = [r for r in listing["runs"] if r["parent_run_id"] == doc["run_id"]]
    assert len(children) == 4
    assert {r["workflow"] for r in children} == {"stats_child"}
    assert sorted(r["output"]["count"] for r in children) == [1, 3, 3, 7]
    nodes = _nodes(_ledger(spindle, doc["run_id"]))
    assert nodes["overall"]["result"] == {"mean": 16.43, "count": 7}
    assert [nodes[f"per_batch[{i}]"]["result"]["mean"] for i in range(3)] == [9.0, 27.0, 7.0]
    shown = spindle("show", doc["run_id"])
    assert "sub-workflow runs:" in shown.stdout
    for child in children:
        assert f"{child['run_id']}  stats_child  completed" in shown.stdout
