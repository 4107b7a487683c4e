"""``spindle audit RUN_ID`` through the real CLI: what finish hooks recorded, as an
operator reads it — the audit trail, the disposition and the handoffs."""

from __future__ import annotations

HOOKS = """
from spindle import hookimpl

@hookimpl
async def spindle_on_finish(run, output, unsettled):
    if run.state.workflow != "reviewed":
        return None
    await run.audit("checked output", length=len(output), source_file="report.txt")
    await run.audit("approved | by policy\\nsecond line")
    run.set_disposition("approved")
    await run.handoff("follow.yaml", {"text": output})
    return None
"""

REVIEWED = """
name: reviewed
nodes:
  make:
    runtime: {kind: python_code, code: "result = 'hello'"}
output: make
"""

FOLLOW = """
name: follow
inputs: {text: ""}
nodes:
  echo:
    runtime: {kind: python_code, code: "result = inputs['text']"}
output: echo
"""


def _env(tmp_path):
    return {"PYTHONPATH": str(tmp_path), "SPINDLE_HOOKS": "audithooks"}


def _run(spindle, write, tmp_path):
    write("audithooks.py", HOOKS)
    write("reviewed.yaml", REVIEWED)
    write("follow.yaml", FOLLOW)
    code, doc = spindle.json("run", "reviewed.yaml", env=_env(tmp_path))
    assert code == 0, doc
    return doc["run_id"]


def test_audit_shows_the_trail_the_disposition_and_the_handoff(spindle, write, tmp_path):
    run_id = _run(spindle, write, tmp_path)

    proc = spindle("audit", run_id, env=_env(tmp_path))

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"run          {run_id}" in out
    assert "disposition  approved" in out
    lines = out.splitlines()
    trail = lines[lines.index("audit trail:") + 1 :]
    assert trail[0].split() == ["SEQ", "TIME", "SOURCE", "MESSAGE", "DATA"]
    assert trail[1].startswith("1 ") and "checked output" in trail[1]
    assert '"length": 5' in trail[1]
    # A message on two lines stays on one row, marked as cut.
    assert trail[2].startswith("2 ") and "approved | by policy ..." in trail[2]
    assert "handoffs:" in out
    assert "follow.yaml" in out


def test_audit_json_is_one_document_with_every_entry(spindle, write, tmp_path):
    run_id = _run(spindle, write, tmp_path)

    code, doc = spindle.json("audit", run_id, env=_env(tmp_path))

    assert code == 0
    assert doc["run_id"] == run_id
    assert doc["status"] == "completed"
    assert doc["disposition"] == "approved"
    assert [e["seq"] for e in doc["audit"]] == [1, 2]
    assert doc["audit"][0]["message"] == "checked output"
    assert doc["audit"][0]["data"] == {"length": 5, "source_file": "report.txt"}
    assert doc["audit"][1]["message"] == "approved | by policy\nsecond line"
    assert doc["audit"][0]["source"]
    [handoff] = doc["handoffs"]
    assert handoff["target"] == "follow.yaml"
    assert handoff["payload"] == {"text": "hello"}
    started = handoff["started_run_id"]
    assert started
    code, follow = spindle.json("show", started, env=_env(tmp_path))
    assert (code, follow["output"]) == (0, "hello")


def test_show_names_the_disposition_and_points_to_audit(spindle, write, tmp_path):
    run_id = _run(spindle, write, tmp_path)

    proc = spindle("show", run_id, env=_env(tmp_path))

    assert proc.returncode == 0, proc.stderr
    assert f"disposition approved (spindle audit {run_id} shows the trail)" in proc.stdout


def test_a_run_without_hooks_has_an_empty_trail(spindle, examples):
    code, doc = spindle.json("run", "examples/hello.yaml")
    assert code == 0

    proc = spindle("audit", doc["run_id"])

    assert proc.returncode == 0, proc.stderr
    assert "disposition  (none set)" in proc.stdout
    assert "audit trail: (no entries)" in proc.stdout
    assert "handoffs:" not in proc.stdout
    code, audit = spindle.json("audit", doc["run_id"])
    assert (code, audit["audit"], audit["handoffs"], audit["disposition"]) == (0, [], [], None)


def test_audit_of_an_unknown_run_is_a_usage_error(spindle):
    proc = spindle("audit", "no-such-run")

    assert proc.returncode == 2
    assert "no-such-run" in proc.stderr
    assert "Traceback" not in proc.stderr
