"""Wait keys made from a run's inputs, used through the CLI as a user would."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

PAYMENT = """\
name: payment
inputs:
  order: {}
nodes:
  paid:
    effect: {kind: wait_event, key: "order-{inputs.order}-paid"}
  approve:
    effect: {kind: ask_user, prompt: "Ship order?", choices: [yes, no], key: "ship-{inputs.order}"}
    after: [paid]
output: paid
"""

LEAKY = """\
name: leaky
inputs:
  token: {secret: true}
nodes:
  paid:
    effect: {kind: wait_event, key: "paid-{inputs.token}"}
"""


def test_each_order_waits_on_its_own_key_and_emit_reaches_only_it(spindle, write):
    """Two runs of one file: `emit order-2-paid` continues the run of order 2 only."""
    write("payment.yaml", PAYMENT)
    code, one = spindle.json("run", "payment.yaml", "--input", "order=1")
    assert code == 3
    code, two = spindle.json("run", "payment.yaml", "--input", "order=2")
    assert code == 3
    assert one["waiting"]["event_key"] == "order-1-paid"
    assert two["waiting"]["event_key"] == "order-2-paid"

    emitted = spindle("emit", "order-2-paid", "--payload", json.dumps({"amount": 9}))
    assert emitted.returncode == 0, emitted.stderr
    assert two["run_id"] in emitted.stdout and one["run_id"] not in emitted.stdout

    code, shown = spindle.json("show", two["run_id"])
    assert code == 3 and shown["waiting"]["key"] == "ship-2"
    shown_text = spindle("show", two["run_id"]).stdout
    assert f"spindle resume {two['run_id']} --key ship-2" in shown_text

    code, done = spindle.json("resume", two["run_id"], "--key", "ship-2", "--payload", '"yes"')
    assert code == 0, done
    assert done["output"] == {"amount": 9}
    code, still = spindle.json("show", one["run_id"])
    assert code == 3 and still["waiting"]["event_key"] == "order-1-paid"


def test_a_key_that_would_hold_a_secret_is_refused_before_anything_runs(spindle, write):
    """Exit 2 with the file's line and the fix; no run is created."""
    write("leaky.yaml", LEAKY)
    proc = spindle("run", "leaky.yaml", "--input", "token=hunter2")
    assert proc.returncode == 2
    assert "leaky.yaml:6: node 'paid': wait_event key 'paid-{inputs.token}'" in proc.stderr
    assert "{inputs.token} is a secret input; a key is stored and shown in clear" in proc.stderr
    assert "hunter2" not in proc.stderr
    code, runs = spindle.json("runs")
    assert code == 0 and runs["runs"] == [], runs
