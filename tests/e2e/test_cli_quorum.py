"""Waits that take several answers, as people give them through the CLI."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

QUORUM = """\
name: release
nodes:
  sign_off:
    effect: {kind: approval_quorum, prompt: "Ship it?", required: 2, approvers: [ada, bob, cy]}
  ship:
    runtime: {kind: python_code, code: "result = inputs['s']"}
    inputs: {s: sign_off}
output: ship
"""


def _started(spindle, write) -> str:
    write("release.yaml", QUORUM)
    code, doc = spindle.json("run", "release.yaml")
    assert code == 3 and doc["waiting"]["key"] == "sign_off"
    return doc["run_id"]


def test_a_quorum_completes_after_enough_distinct_approvals(spindle, write):
    """One approval keeps the run waiting, a duplicate changes nothing, a second ends it."""
    rid = _started(spindle, write)

    first = spindle.json("resume", rid, "--payload", '"ada"')
    again = spindle.json("resume", rid, "--payload", '{"by": "ada"}')
    last = spindle.json("resume", rid, "--payload", '{"by": "bob"}')

    assert first[0] == 3 and first[1]["status"] == "waiting"
    assert again[0] == 3 and again[1]["status"] == "waiting"
    assert last[0] == 0
    assert last[1]["output"] == {"approved": True, "approvers": ["ada", "bob"]}
    records = json.loads(spindle("ledger", rid, "--json").stdout)["records"]
    answers = [r for r in records if r["kind"] == "resume"]
    assert len(answers) == 3  # every answer is a ledger record
    assert spindle("ledger", "verify", rid).returncode == 0


def test_a_rejection_ends_the_quorum_and_a_stranger_is_refused(spindle, write):
    """Someone not listed is refused with exit 2; a rejection ends the wait at once."""
    rid = _started(spindle, write)

    stranger = spindle("resume", rid, "--payload", '"eve"')
    rejected = spindle.json("resume", rid, "--payload", '{"by": "cy", "approve": false}')

    assert stranger.returncode == 2
    assert "'eve' may not answer 'sign_off'; the approvers are ada, bob, cy" in stranger.stderr
    assert rejected[0] == 0
    assert rejected[1]["output"] == {"approved": False, "approvers": [], "rejected_by": "cy"}


def test_two_approvers_answering_at_once_both_count(spindle, write):
    """Concurrent answers from two processes are taken one after the other, none lost."""
    rid = _started(spindle, write)

    procs = [
        spindle.popen("resume", rid, "--payload", json.dumps({"by": who}), "--json")
        for who in ("ada", "bob")
    ]
    results = [(*p.communicate(timeout=60), p.returncode) for p in procs]

    codes = sorted(code for _, _, code in results)
    assert codes == [0, 3], results  # one left it waiting, the other ended it
    code, shown = spindle.json("show", rid)
    assert code == 0
    assert sorted(shown["output"]["approvers"]) == ["ada", "bob"]
