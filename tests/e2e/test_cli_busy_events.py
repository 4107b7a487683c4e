"""An event emitted while the run waiting on its key is busy in another node: queued for
that run (exit 0), taken by it as soon as it stops to wait, never given to another run."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.slow

BUSY = """\
name: busy
inputs: {dir: "."}
nodes:
  gate:
    effect: {kind: wait_event, key: k1}
  work:
    runtime:
      kind: command
      command: "touch {inputs.dir}/started; while [ ! -f {inputs.dir}/go ]; do sleep 0.05; done"
output: gate
"""

LATER = """\
name: later
nodes:
  gate:
    effect: {kind: wait_event, key: k1}
output: gate
"""


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _waits_on_k1(spindle) -> str | None:
    _, listed = spindle.json("runs")
    for run in listed["runs"]:
        _, doc = spindle.json("show", run["run_id"])
        if any(w.get("event_key") == "k1" for w in doc.get("waits", [])):
            return run["run_id"]
    return None


def test_an_event_for_a_busy_run_is_queued_for_it_and_taken_at_its_wait(spindle, write, tmp_path):
    """emit exits 0 saying 'queued for run R'; R ends with that payload; the next run to
    wait on the key does not receive it, and a later emit goes to that next run."""
    write("busy.yaml", BUSY)
    write("later.yaml", LATER)
    driver = spindle.popen("run", "busy.yaml", "--quiet", "--input", f"dir={tmp_path}")
    try:
        _wait_for(lambda: (tmp_path / "started").exists())
        run_id = _wait_for(lambda: _waits_on_k1(spindle))
        sent = spindle("emit", "k1", "--payload", '{"paid": 1}')
        assert sent.returncode == 0, sent.stderr
        assert f"event 'k1' queued for run {run_id}" in sent.stdout
        assert "Traceback" not in sent.stderr
        (tmp_path / "go").touch()
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=10)
    assert driver.returncode == 0, (out, err)
    _, shown = spindle.json("show", run_id)
    assert shown["status"] == "completed"
    assert shown["output"] == {"paid": 1}

    # The event is spent: a new run waiting on k1 waits, and gets the next event.
    later = spindle("run", "later.yaml", "--json")
    doc = json.loads(later.stdout)
    assert doc["status"] == "waiting", later.stdout
    code, sent = spindle.json("emit", "k1", "--payload", '{"paid": 2}')
    assert code == 0
    assert sent["resumed"] == [doc["run_id"]] and sent["queued_for"] is None
    _, shown = spindle.json("show", doc["run_id"])
    assert shown["output"] == {"paid": 2}


def test_emit_json_says_where_the_event_went(spindle, write):
    """--json names the event's id and where it went: kept for later when nobody waits."""
    code, sent = spindle.json("emit", "nobody-waits", "--payload", "3")
    assert code == 0
    assert sent["resumed"] == [] and sent["queued_for"] is None
    assert len(sent["event_id"]) == 32
    kept = spindle("emit", "nobody-waits")
    assert "kept in the inbox until a run waits for it" in kept.stdout
