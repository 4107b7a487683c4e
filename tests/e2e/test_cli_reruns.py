"""Running a failed run again from the CLI: `spindle retry` and `spindle rerun --from`."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

FLOW = """\
name: flow
inputs: {flag: ./ok.flag}
nodes:
  a:
    runtime: {kind: python_code, code: "result = 21"}
  b:
    runtime:
      kind: command
      command: "test -f {inputs.flag} && echo fixed || (echo broken >&2; exit 3)"
    inputs: {flag: inputs.flag}
    after: [a]
  c:
    runtime: {kind: python_code, code: "result = inputs['a'] * 2"}
    inputs: {a: a}
    after: [b]
output: c
"""


def _failed(spindle, write, tmp_path) -> str:
    write("flow.yaml", FLOW)
    code, doc = spindle.json("run", "flow.yaml", "--input", f"flag={tmp_path / 'ok.flag'}")
    assert code == 1 and "exited with code 3" in doc["error"]
    return doc["run_id"]


def test_retry_continues_a_failed_run_once_it_is_fixed(spindle, write, tmp_path):
    """After the cause is fixed, retry completes the same run; completed nodes are kept."""
    rid = _failed(spindle, write, tmp_path)
    (tmp_path / "ok.flag").write_text("")

    code, doc = spindle.json("retry", rid)

    assert code == 0 and doc["run_id"] == rid and doc["output"] == 42
    records = json.loads(spindle("ledger", rid, "--json").stdout)["records"]
    runs = [r["status"] for r in records if r["kind"] == "run"]
    assert runs == ["failed", "retried", "completed"]
    assert [r["node_id"] for r in records if r["kind"] == "node"].count("a") == 1
    again = spindle("retry", rid)
    assert again.returncode == 2
    assert f"run {rid} completed; there is nothing to retry" in again.stderr
    assert f"spindle rerun {rid} --from NODE" in again.stderr


def test_rerun_from_a_node_starts_a_linked_run(spindle, write, tmp_path):
    """rerun --from b reuses a, runs b and c in a new run that names its source."""
    rid = _failed(spindle, write, tmp_path)
    (tmp_path / "ok.flag").write_text("")

    code, doc = spindle.json("rerun", rid, "--from", "b")

    assert code == 0 and doc["run_id"] != rid and doc["output"] == 42
    listed = json.loads(spindle("runs", "--json").stdout)["runs"]
    assert {r["run_id"] for r in listed} == {rid, doc["run_id"]}
    unknown = spindle("rerun", rid, "--from", "nope")
    assert unknown.returncode == 2
    assert "has no node 'nope'" in unknown.stderr and "known nodes: a, b, c" in unknown.stderr
