"""`--json` stdout holds one JSON document, whatever the tasks a command runs print."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

NOISY_PY = """\
import os
import sys


def sync_task():
    print("junk from a sync task")
    print("more junk on stderr", file=sys.stderr)
    os.system("echo junk from os.system")
    return 1


async def async_task():
    print("junk from an async task")
    return 2


def pooled():
    print("junk from a process pool")
    return 3
"""

NOISY = """\
name: noisy
nodes:
  sync:
    runtime: {kind: python, function: "noisy:sync_task"}
  aio:
    runtime: {kind: python, function: "noisy:async_task"}
  code:
    runtime: {kind: python_code, code: "print('junk from code'); result = 4"}
  cmd:
    runtime: {kind: command, command: "echo junk from a command"}
  pool:
    runtime: {kind: python, function: "noisy:pooled"}
    executor: {kind: process_pool, max_workers: 1}
  wait:
    effect: {kind: wait_event, key: go}
    after: [sync, aio, code, cmd, pool]
  after:
    runtime: {kind: python_code, code: "print('junk after the wait'); result = 5"}
    after: [wait]
output: after
"""


def _one_document(proc):
    """The one JSON document on stdout (json.loads refuses anything before or after it)."""
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"stdout is not one JSON document:\n{proc.stdout}") from None


def test_run_and_resume_json_stdout_is_one_document_and_logs_keep_the_prints(spindle, write):
    """Prints of Python, code, command and pool tasks reach neither run's nor resume's stdout."""
    write("noisy.py", NOISY_PY)
    write("noisy.yaml", NOISY)
    env = {"PYTHONPATH": str(spindle.cwd)}
    ran = spindle("run", "noisy.yaml", "--json", env=env)
    doc = _one_document(ran)
    assert (ran.returncode, doc["status"]) == (3, "waiting"), ran.stderr
    # Still shown, on stderr: a print is not lost, it just is not in the document.
    assert "junk from a sync task" in ran.stderr
    assert "junk from os.system" in ran.stderr
    resumed = spindle("resume", doc["run_id"], "--payload", "1", "--json", env=env)
    done = _one_document(resumed)
    assert (resumed.returncode, done["status"], done["output"]) == (0, "completed", 5)
    assert "junk after the wait" in resumed.stderr

    logs = spindle("logs", doc["run_id"])
    assert logs.returncode == 0, logs.stderr
    for node, stream, text in [
        ("sync", "stdout", "junk from a sync task"),
        ("sync", "stderr", "more junk on stderr"),
        ("aio", "stdout", "junk from an async task"),
        ("code", "stdout", "junk from code"),
        ("cmd", "stdout", "junk from a command"),
        ("pool", "stdout", "junk from a process pool"),
        ("after", "stdout", "junk after the wait"),
    ]:
        assert f"==> {node} {stream} (attempt 1) <==\n{text}\n" in logs.stdout


def test_inline_echo_false_keeps_prints_to_the_log_only(spindle, write):
    """`executor: {kind: inline, echo: false}`: a print is in the log and on no stream."""
    write(
        "quiet.yaml",
        "name: quiet\nnodes:\n  a:\n    runtime: {kind: python_code, code: \"print('hush')\"}\n"
        "    executor: {kind: inline, echo: false}\n",
    )
    proc = spindle("run", "quiet.yaml", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "hush" not in proc.stdout + proc.stderr
    rid = spindle.json("runs")[1]["runs"][0]["run_id"]
    assert "==> a stdout (attempt 1) <==\nhush\n" in spindle("logs", rid).stdout


def test_json_stdout_stays_one_document_when_stderr_is_closed(spindle, write):
    """With no stderr to move prints to, they are dropped rather than written into the JSON."""
    import os
    import subprocess
    import sys

    write("noisy.py", NOISY_PY)
    write("noisy.yaml", NOISY)
    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "run", "noisy.yaml", "--json"],
        cwd=spindle.cwd,
        env=spindle.env({"PYTHONPATH": str(spindle.cwd)}),
        stdout=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(2),  # spindle starts with no stderr at all
    )
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["status"] == "waiting"
