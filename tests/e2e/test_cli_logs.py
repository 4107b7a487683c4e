"""Debugging a failed run as a user does: `spindle show` with tracebacks, `spindle logs`."""

from __future__ import annotations

import json
import signal
import time

import pytest

pytestmark = pytest.mark.slow

STEPS = """\
def explode(n):
    helper = {"n": n}
    raise KeyError(f"no entry for {helper['n']}")
"""

BROKEN = """\
name: broken
nodes:
  shout:
    runtime: {kind: command, command: "echo to stdout; echo to stderr >&2"}
  crash:
    runtime: {kind: python, function: "steps:explode"}
    inputs: {n: inputs.n}
    after: [shout]
inputs: {n: 7}
"""

TICKS = """\
name: ticks
nodes:
  ticker:
    runtime:
      kind: command
      command: >-
        echo tick 1; while [ ! -f gate ]; do sleep 0.05; done;
        for i in 2 3 4 5; do sleep 0.4; echo tick $i; done; echo giving up >&2; exit 4
"""

FLAKY = """\
name: flaky
nodes:
  flaky:
    runtime:
      kind: command
      command: "if [ -f marker ]; then echo second; else touch marker; echo first; exit 1; fi"
    retry: {max_attempts: 2, backoff: 0.05}
"""

# The first node holds on until the follower has printed its first line: the test then
# creates `gate` in the run directory, the node's working directory. Lines that come
# later must arrive later, however slowly the follower started.
GATED_STAGES = """\
name: stages
nodes:
  one:
    runtime:
      kind: command
      command: "echo stage one; while [ ! -f gate ]; do sleep 0.05; done; sleep 0.8"
  two:
    runtime: {kind: command, command: "echo stage two; sleep 0.8"}
    after: [one]
  three:
    runtime: {kind: command, command: "echo stage three; sleep 0.8"}
    after: [two]
  last:
    runtime: {kind: command, command: "echo giving up >&2; exit 4"}
    after: [three]
"""

STAGES = """\
name: stages
nodes:
  one:
    runtime: {kind: command, command: "echo stage one; sleep 0.8"}
  two:
    runtime: {kind: command, command: "echo stage two; sleep 0.8"}
    after: [one]
  three:
    runtime: {kind: command, command: "echo stage three; sleep 0.8"}
    after: [two]
  last:
    runtime: {kind: command, command: "echo giving up >&2; exit 4"}
    after: [three]
"""

SECRET = """\
name: secret
inputs:
  token: {secret: true}
nodes:
  leak:
    runtime: {kind: command, command: "echo token is {inputs.token}; echo {inputs.token} >&2"}
"""


CHARGE = """\
import pathlib


def charge_card():
    marker = pathlib.Path("charged-once")
    if not marker.exists():
        marker.touch()
        raise ConnectionError("the card network timed out")
    return "receipt-1"


def pay(ctx):
    return ctx.step(charge_card, name="charge", retry={"max_attempts": 2, "backoff": 0})
"""

PAY = """\
name: pay
nodes:
  pay:
    runtime: {kind: python, function: "charge:pay"}
"""


def _run(spindle, write, text, *args):
    """Run a workflow file; return the run id from `--json`."""
    write("steps.py", STEPS)
    write("flow.yaml", text)
    _, doc = spindle.json("run", "flow.yaml", *args)
    return doc["run_id"]


# --- logs --------------------------------------------------------------------------------


def test_logs_prints_captured_output_and_tracebacks_of_every_node(spindle, write):
    """`logs RUN` prints a command node's stdout and stderr and a Python node's traceback."""
    rid = _run(spindle, write, BROKEN)
    proc = spindle("logs", rid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        "==> shout stdout (attempt 1) <==\nto stdout\n\n"
        "==> shout stderr (attempt 1) <==\nto stderr\n\n"
        "==> crash traceback (attempt 1) <==\nTraceback (most recent call last):\n"
    )
    assert proc.stdout.endswith("KeyError: 'no entry for 7'\n")


def test_logs_of_one_node_prints_only_that_node(spindle, write):
    """`logs RUN NODE` prints that node's blocks and no other's."""
    rid = _run(spindle, write, BROKEN)
    proc = spindle("logs", rid, "shout")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "==> shout stdout (attempt 1) <==\nto stdout\n\n"
        "==> shout stderr (attempt 1) <==\nto stderr\n"
    )


def test_logs_json_is_one_document_of_streams_and_tracebacks(spindle, write):
    """`logs --json` gives each node its stdout, stderr (null if not captured) and tracebacks."""
    rid = _run(spindle, write, BROKEN)
    code, doc = spindle.json("logs", rid)
    assert code == 0
    assert doc["run_id"] == rid
    assert doc["nodes"]["shout"] == {
        "stdout": "to stdout\n",
        "stderr": "to stderr\n",
        "tracebacks": [],
    }
    crash = doc["nodes"]["crash"]
    assert crash["stdout"] is None and crash["stderr"] is None
    assert [t["attempt"] for t in crash["tracebacks"]] == [1]
    assert "KeyError: 'no entry for 7'" in crash["tracebacks"][0]["traceback"]


def test_logs_prints_the_traceback_of_a_sub_step_that_was_tried_again(spindle, write):
    """A ``ctx.step`` attempt that raised keeps its traceback, though the node completed."""
    write("charge.py", CHARGE)
    rid = _run(spindle, write, PAY)
    proc = spindle("logs", rid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        "==> pay step 'charge' traceback (attempt 1) <==\nTraceback (most recent call last):\n"
    )
    assert 'raise ConnectionError("the card network timed out")' in proc.stdout
    assert proc.stdout.endswith("ConnectionError: the card network timed out\n")
    code, doc = spindle.json("logs", rid)
    assert code == 0
    [kept] = doc["nodes"]["pay"]["tracebacks"]
    assert kept["step"] == "charge" and kept["attempt"] == 1
    assert kept["traceback"] == proc.stdout.split("<==\n", 1)[1]
    # the node's own failed attempts are marked as not a sub-step's
    rid = _run(spindle, write, BROKEN)
    _, doc = spindle.json("logs", rid)
    assert [t["step"] for t in doc["nodes"]["crash"]["tracebacks"]] == [None]


def test_logs_heads_each_attempt_of_a_retried_node(spindle, write):
    """A retried node's output is split by attempt under its own headings."""
    rid = _run(spindle, write, FLAKY)
    proc = spindle("logs", rid, "flaky")
    assert proc.stdout == (
        "==> flaky stdout (attempt 1) <==\nfirst\n\n==> flaky stdout (attempt 2) <==\nsecond\n"
    )


def test_logs_show_secret_inputs_redacted(spindle, write):
    """A secret input printed by a command is `***` in the logs, never its value."""
    rid = _run(spindle, write, SECRET, "--input", "token=hunter2")
    proc = spindle("logs", rid)
    assert "token is ***" in proc.stdout
    assert "hunter2" not in proc.stdout
    assert "hunter2" not in spindle("logs", rid, "--json").stdout


def test_logs_of_a_node_that_left_nothing_says_why(spindle, write):
    """A node with no captured output and no traceback is reported on stderr, exit 0."""
    write(
        "flow.yaml", "name: q\nnodes:\n  calc:\n    runtime: {kind: python_code, code: 'x = 1'}\n"
    )
    _, doc = spindle.json("run", "flow.yaml")
    proc = spindle("logs", doc["run_id"], "calc")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        f"node 'calc' of run {doc['run_id']} left no output and no traceback (a node's "
        "output is kept when it prints to stdout or stderr"
    )


def test_logs_of_an_unknown_run_names_the_newest_runs(spindle, write):
    """An unknown run id exits 2 naming the runs the store has."""
    rid = _run(spindle, write, BROKEN)
    proc = spindle("logs", "no-such-run")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: run 'no-such-run' not found in SQLite store ")
    assert f"newest runs in this store: {rid} (broken, failed)" in proc.stderr


def test_logs_of_an_unknown_node_lists_the_nodes(spindle, write):
    """An unknown node exits 2 naming the run's nodes."""
    rid = _run(spindle, write, BROKEN)
    proc = spindle("logs", rid, "nope")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: run {rid} (broken) has no node 'nope'; its nodes: shout, crash "
        f"(or give no NODE to see them all)\n"
    )


def test_logs_refuses_follow_with_json(spindle, write):
    """--follow with --json is a usage error saying to drop one."""
    rid = _run(spindle, write, BROKEN)
    proc = spindle("logs", rid, "--follow", "--json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --follow and --json cannot be used together")
    assert proc.stdout == ""


def _start_following(spindle, write, workflow, first_log):
    """Start `spindle run` in the background and `spindle logs --follow` on its run."""
    write("flow.yaml", workflow)
    driver = spindle.popen("run", "flow.yaml", "--quiet")
    runs = spindle.cwd / ".spindle" / "runs"
    deadline = time.monotonic() + 30
    while not list(runs.glob(f"*/logs/{first_log}")):
        assert time.monotonic() < deadline, "the first node never started"
        time.sleep(0.05)
    rid = next(runs.iterdir()).name
    return driver, spindle.popen("logs", rid, "--follow"), rid


def _arrivals(follower, gate=None):
    """Each line `logs --follow` prints, with when it arrived, until it exits; ``gate`` is
    created once the first line has arrived."""
    assert follower.stdout is not None
    arrived = []
    for line in follower.stdout:
        arrived.append((time.monotonic(), line))
        if gate is not None and not gate.exists():
            gate.touch()
    _, err = follower.communicate(timeout=30)
    return arrived, err


def test_follow_streams_a_live_run_and_exits_with_its_code(spindle, write):
    """`logs --follow` prints each node's output as the run goes on, then exits 1 as it fails."""
    driver, follower, rid = _start_following(spindle, write, GATED_STAGES, "one.stdout")
    arrived, err = _arrivals(follower, spindle.cwd / ".spindle" / "runs" / rid / "gate")
    driver.communicate(timeout=30)
    assert follower.returncode == 1, err
    lines = [line for _, line in arrived]
    assert [x for x in lines if not x.startswith("==>") and x != "\n"] == [
        "stage one\n",
        "stage two\n",
        "stage three\n",
        "giving up\n",
    ]
    assert lines[-2:] == ["==> last stderr (attempt 1) <==\n", "giving up\n"]
    when = {line: t for t, line in arrived}
    assert when["stage three\n"] - when["stage one\n"] > 0.8  # as they came, not at the end
    assert json.loads(spindle("show", rid, "--json").stdout)["status"] == "failed"


def test_follow_streams_the_lines_of_a_running_node_as_it_prints_them(spindle, write):
    """`logs --follow` prints a running node's lines as it writes them, not when it ends."""
    driver, follower, rid = _start_following(spindle, write, TICKS, "ticker.stdout")
    arrived, err = _arrivals(follower, spindle.cwd / ".spindle" / "runs" / rid / "gate")
    driver.communicate(timeout=30)
    assert follower.returncode == 1, err
    ticks = [t for t, line in arrived if line.startswith("tick")]
    assert len(ticks) == 5
    assert ticks[-1] - ticks[0] > 0.8


def test_ctrl_c_stops_following_quietly_with_130(spindle, write):
    """SIGINT ends `logs --follow` with exit 130 and nothing on stderr; the run goes on."""
    driver, follower, _ = _start_following(spindle, write, STAGES, "one.stdout")
    assert follower.stdout is not None
    assert follower.stdout.readline() == "==> one stdout (attempt 1) <==\n"
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 130
    assert err == ""
    driver.communicate(timeout=30)
    assert driver.returncode == 1


def test_follow_stops_at_a_run_whose_driver_died_and_says_how_to_continue(spindle, write):
    """`logs --follow` of an interrupted run prints what is there, exits 3 and names resume."""
    driver, follower, rid = _start_following(spindle, write, STAGES, "one.stdout")
    follower.kill()
    follower.communicate(timeout=30)
    driver.kill()  # like kill -9: the run stays `running` with nobody driving it
    driver.communicate(timeout=30)
    proc = spindle("logs", rid, "--follow", timeout=30)
    assert proc.returncode == 3
    assert proc.stderr.endswith(  # after a note that nothing was captured, if nothing was
        f"run {rid} is interrupted: the process driving it stopped; continue it with: "
        f"spindle resume {rid}\n"
    )
