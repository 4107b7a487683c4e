"""A failed Python node's traceback in `spindle show`, as a user reads it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

# The node calls down through six functions, so its traceback is longer than
# what `show` prints of it.
STEPS = """\
def explode(n):
    helper = {"n": n}
    raise KeyError(f"no entry for {helper['n']}")


def fetch(n):
    return explode(n)


def parse(n):
    return fetch(n)


def check(n):
    return parse(n)


def load(n):
    return check(n)


def open_entry(n):
    return load(n)


def find(n):
    return open_entry(n)
"""

BROKEN = """\
name: broken
nodes:
  shout:
    runtime: {kind: command, command: "echo to stdout; echo to stderr >&2"}
  crash:
    runtime: {kind: python, function: "steps:find"}
    inputs: {n: inputs.n}
    after: [shout]
inputs: {n: 7}
"""


def _run(spindle, write, text):
    """Run a workflow file; return the run id from `--json`."""
    write("steps.py", STEPS)
    write("flow.yaml", text)
    _, doc = spindle.json("run", "flow.yaml")
    return doc["run_id"]


def test_show_prints_the_end_of_a_failed_python_nodes_traceback(spindle, write):
    """`show` prints under a failed node's error the end of its traceback, from the raise."""
    rid = _run(spindle, write, BROKEN)
    proc = spindle("show", rid)
    assert proc.returncode == 1
    out = proc.stdout
    assert "node 'crash' failed: KeyError: 'no entry for 7'" in out
    assert "raise KeyError(f\"no entry for {helper['n']}\")" in out
    assert out.index("node 'crash' failed") < out.index("KeyError: 'no entry for 7'\n")
    assert f"all of it: spindle logs {rid} crash" in out


def test_show_json_gives_each_node_its_traceback_or_null(spindle, write):
    """`show --json` adds a traceback to each node entry: the text, or null when none."""
    rid = _run(spindle, write, BROKEN)
    code, doc = spindle.json("show", rid)
    assert code == 1
    crash = doc["nodes"]["crash"]
    assert crash["traceback"].rstrip().endswith("KeyError: 'no entry for 7'")
    assert "line 3, in explode" in crash["traceback"]
    assert doc["nodes"]["shout"]["traceback"] is None
    assert set(crash) == {"status", "attempts", "seconds", "error", "traceback"}
