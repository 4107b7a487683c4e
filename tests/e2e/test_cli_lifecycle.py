"""Run lifecycles as a user meets them through the CLI: sub-workflow waits answered only
by their child, cancels that reach the driving process, runs whose every path failed,
and what ``spindle runs`` says about runs being driven or left behind."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

pytestmark = pytest.mark.slow

CHILD = """\
name: child
nodes:
  confirm:
    effect: {kind: ask_user, prompt: "Confirm?", choices: ["yes", "no"]}
output: confirm
"""

PARENT = """\
name: parent
nodes:
  sub:
    effect: {kind: subworkflow, workflow: child.yaml}
  after:
    runtime: {kind: python_code, code: "result = 'child said ' + str(inputs['s'])"}
    inputs: {s: sub}
output: after
"""

TOLERANT_PARENT = """\
name: tolerant
nodes:
  sub:
    effect: {kind: subworkflow, workflow: child.yaml}
    continue_on_failure: true
  other:
    runtime: {kind: python_code, code: "result = 'still here'"}
    after: [sub]
  fallback:
    runtime: {kind: python_code, code: "result = 'fallback'"}
output: fallback
"""


def _wait_for(predicate, timeout: float = 20.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _parent_and_child(spindle, write, parent: str = PARENT) -> tuple[str, str]:
    write("child.yaml", CHILD)
    write("parent.yaml", parent)
    code, doc = spindle.json("run", "parent.yaml")
    assert code == 3, doc
    child = doc["waiting"]["child_run_id"]
    return doc["run_id"], child


# --- defect 1: a sub-workflow wait is answered only by its child's end -----------------


def test_a_forged_resume_cannot_answer_a_subworkflow_wait(spindle, write):
    """`resume PARENT --payload` is refused while the child waits; the parent stays waiting."""
    parent, child = _parent_and_child(spindle, write)

    forged = spindle("resume", parent, "--payload", '"forged"')

    assert forged.returncode == 2
    assert "only that run's end answers it" in forged.stderr
    assert f"spindle show {child}" in forged.stderr
    assert "Traceback" not in forged.stderr
    _code, shown = spindle.json("show", parent)
    assert shown["status"] == "waiting"
    bare = spindle("resume", parent)
    assert bare.returncode == 2
    _, shown = spindle.json("show", parent)
    assert shown["status"] == "waiting" and shown["output"] is None


def test_the_child_answering_its_wait_completes_the_parent(spindle, write):
    """Answering the child's own question ends the child and, through it, the parent."""
    parent, child = _parent_and_child(spindle, write)

    code, doc = spindle.json("resume", child, "--payload", '"yes"')

    assert code == 0 and doc["status"] == "completed"
    code, shown = spindle.json("show", parent)
    assert code == 0
    assert shown["output"] == "child said yes"


# --- defect 2: a cancelled child settles its parent's wait -----------------------------


def test_cancelling_the_child_fails_the_waiting_parent(spindle, write):
    """`spindle cancel CHILD` ends the parent as failed, naming the cancelled child."""
    parent, child = _parent_and_child(spindle, write)

    proc = spindle("cancel", child)

    assert proc.returncode == 0, proc.stderr
    code, shown = spindle.json("show", parent)
    assert code == 1
    assert shown["status"] == "failed"
    assert f"sub-workflow run {child} cancelled" in shown["error"]
    again = spindle("resume", parent)
    assert again.returncode == 2
    assert "has already failed" in again.stderr


def test_a_tolerant_parent_continues_after_its_child_is_cancelled(spindle, write):
    """With continue_on_failure, the parent goes on without the cancelled child's result."""
    parent, child = _parent_and_child(spindle, write, TOLERANT_PARENT)

    assert spindle("cancel", child).returncode == 0

    code, shown = spindle.json("show", parent)
    assert code == 0, shown
    assert shown["status"] == "completed"
    assert shown["output"] == "fallback"
    assert shown["nodes"]["sub"]["status"] == "failed"
    assert shown["nodes"]["other"]["status"] == "skipped"


def test_cancelling_the_parent_cancels_its_waiting_child(spindle, write):
    """A cancel cascades from the parent to its child."""
    parent, child = _parent_and_child(spindle, write)

    assert spindle("cancel", parent).returncode == 0

    assert spindle.json("show", parent)[1]["status"] == "cancelled"
    assert spindle.json("show", child)[1]["status"] == "cancelled"


# --- defect 3: a cancel from another process reaches the driver at once ----------------

# Each task writes its pid where the test looks (the working directory, not the run's).
SLEEPY = """\
name: sleepy
inputs: {dir: .}
nodes:
  nap:
    runtime: {kind: command, command: "echo $$ > {inputs.dir}/nap.pid; exec sleep 30"}
"""

TWO_SLEEPY = """\
name: two
inputs: {dir: .}
nodes:
  a:
    runtime: {kind: command, command: "echo $$ > {inputs.dir}/a.pid; exec sleep 30"}
  b:
    runtime: {kind: command, command: "echo $$ > {inputs.dir}/b.pid; exec sleep 30"}
"""

THREADED = """\
name: threaded
inputs: {dir: .}
nodes:
  nap:
    runtime:
      kind: python_code
      code: |
        import os, time
        open(os.path.join(inputs['dir'], 'nap.pid'), 'w').write(str(os.getpid()))
        time.sleep(30)
    inputs: {dir: inputs.dir}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; only a live process counts.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _drive_and_cancel(spindle, write, tmp_path, text: str, pids: list[str]):
    write("flow.yaml", text)
    driver = spindle.popen("run", "flow.yaml", "--quiet", "--input", f"dir={tmp_path}")
    try:
        _wait_for(lambda: all((tmp_path / p).exists() for p in pids))
        _, listed = spindle.json("runs")
        run_id = listed["runs"][0]["run_id"]
        started = time.monotonic()
        cancel = spindle("cancel", run_id)
        out, err = driver.communicate(timeout=20)
        took = time.monotonic() - started
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=10)
    return run_id, cancel, driver.returncode, out, err, took


@pytest.mark.parametrize(
    ("text", "pids"), [(SLEEPY, ["nap.pid"]), (TWO_SLEEPY, ["a.pid", "b.pid"])]
)
def test_a_cancel_from_another_process_stops_the_driving_run(spindle, write, tmp_path, text, pids):
    """The driver stops its commands within a second or two, prints 'was cancelled', exits 1."""
    run_id, cancel, code, out, err, took = _drive_and_cancel(spindle, write, tmp_path, text, pids)

    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip() == f"run {run_id} cancelled"
    assert code == 1, (out, err)
    assert f"run {run_id} was cancelled" in out
    assert "Traceback" not in err and "CancelledError" not in err
    assert "stale" not in err
    assert took < 8, f"the cancel took {took:.1f}s to reach the driver"
    for name in pids:
        pid = int((tmp_path / name).read_text())
        _wait_for(lambda pid=pid: not _alive(pid), timeout=5)
    code, shown = spindle.json("show", run_id)
    assert shown["status"] == "cancelled"
    verified = spindle("ledger", "verify", run_id)
    assert verified.returncode == 0, verified.stdout


def test_a_cancel_reaches_a_python_task_running_in_a_thread(spindle, write, tmp_path):
    """A sync Python task cannot be stopped, but the driving command ends at once."""
    run_id, cancel, code, out, err, took = _drive_and_cancel(
        spindle, write, tmp_path, THREADED, ["nap.pid"]
    )

    assert cancel.returncode == 0
    assert code == 1 and f"run {run_id} was cancelled" in out
    assert "Traceback" not in err
    assert took < 8


# --- defect 4: a run whose every path failed is failed --------------------------------

ALL_FAIL = """\
name: doomed
nodes:
  left:
    runtime: {kind: command, command: "echo left broke >&2; exit 3"}
    continue_on_failure: true
  right:
    runtime: {kind: python_code, code: "raise ValueError('right broke')"}
    continue_on_failure: true
  join:
    runtime: {kind: python_code, code: "result = 1"}
    after: [left, right]
"""


def test_a_run_whose_every_path_failed_is_failed(spindle, write):
    """Every node failing under continue_on_failure fails the run, naming each node."""
    write("doomed.yaml", ALL_FAIL)

    code, doc = spindle.json("run", "doomed.yaml")

    assert code == 1
    assert doc["status"] == "failed"
    assert doc["error"].startswith("every path of the run failed: ")
    assert "node 'left'" in doc["error"] and "node 'right'" in doc["error"]
    assert "ValueError: right broke" in doc["error"]
    assert "a node failed" not in doc["error"]


# --- defect 8: what `spindle runs` says about driven and abandoned runs -----------------

LONG = """\
name: long
inputs: {dir: .}
nodes:
  first:
    runtime:
      kind: python_code
      code: |
        import os, time
        open(os.path.join(inputs['dir'], 'started'), 'w').write('1')
        time.sleep(30)
    inputs: {dir: inputs.dir}
  second:
    runtime: {kind: python_code, code: "result = 2"}
    after: [first]
"""


@pytest.mark.parametrize("flags", [["--quiet"], ["--json"], ["--detach"]])
def test_a_run_being_driven_is_listed_as_running(spindle, write, tmp_path, flags):
    """From the moment a driver holds the run, `spindle runs` says running; killed, interrupted."""
    write("long.yaml", LONG)
    if flags == ["--detach"]:
        detached = spindle("run", "long.yaml", "--detach", "--input", f"dir={tmp_path}")
        assert detached.returncode == 0, detached.stderr
        driver = spindle.popen("worker", "--once")
    else:
        driver = spindle.popen("run", "long.yaml", *flags, "--input", f"dir={tmp_path}")
    try:
        _wait_for(lambda: (tmp_path / "started").exists())
        _, listed = spindle.json("runs")
        doc = listed["runs"][0]
        assert doc["status"] == "running"
        assert doc["interrupted"] is False
        driver.send_signal(signal.SIGKILL)
        driver.communicate(timeout=10)
        _, listed = spindle.json("runs")
        assert listed["runs"][0]["status"] == "running"
        assert listed["runs"][0]["interrupted"] is True
        table = spindle("runs")
        assert "interrupted" in table.stdout
        assert json.loads(spindle("show", doc["run_id"], "--json").stdout)["interrupted"] is True
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=10)
