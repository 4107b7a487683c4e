"""Secret inputs as a user meets them: never on disk in the store, never in a command line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DEFAULTED = """\
name: defaulted
inputs:
  token: {secret: true, default: "s3cr3tXYZ"}
nodes:
  hold:
    runtime:
      kind: command
      command: "test -n {inputs.token}; touch started; while [ ! -e go ]; do sleep 0.05; done"
  wait:
    effect: {kind: wait_event, key: go}
    after: [hold]
  use:
    runtime: {kind: python_code, code: "result = len(inputs['token'])"}
    inputs: {token: inputs.token}
    after: [wait]
output: use
"""


def _store_bytes(cwd: Path) -> bytes:
    """The bytes of the SQLite store file and its WAL and shared-memory files, as they are now."""
    return b"".join(p.read_bytes() for p in sorted((cwd / ".spindle").glob("spindle.db*")))


def _wait_for(cwd: Path, pattern: str) -> Path:
    """The first file matching ``pattern`` under ``cwd``, once one exists."""
    deadline = time.monotonic() + 30
    while not (found := sorted(cwd.glob(pattern))):
        assert time.monotonic() < deadline, f"nothing matched {pattern}"
        time.sleep(0.05)
    return found[0]


def test_a_secret_default_is_not_stored_and_a_resume_asks_for_it(spindle, write):
    """A secret input's default is in neither the store file nor its WAL; resume asks for it."""
    write("defaulted.yaml", DEFAULTED)
    proc = spindle.popen("run", "defaulted.yaml", "-q")
    try:
        started = _wait_for(spindle.cwd, ".spindle/runs/*/started")
        # While the run is live its definition is freshly committed (in the WAL).
        assert b"s3cr3tXYZ" not in _store_bytes(spindle.cwd)
        (started.parent / "go").touch()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    assert b"s3cr3tXYZ" not in _store_bytes(spindle.cwd)
    rid = started.parent.name
    refused = spindle("resume", rid, "--payload", "1")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: run {rid} has secret inputs, which are never stored: give them again with "
        f"spindle resume {rid} --input token=VALUE (plus --key/--payload to answer a wait)\n"
    )
    code, doc = spindle.json("resume", rid, "--payload", "1", "--input", "token=s3cr3tXYZ")
    assert (code, doc["status"], doc["output"]) == (0, "completed", 9)
    assert b"s3cr3tXYZ" not in _store_bytes(spindle.cwd)
