"""Secret inputs as a user meets them: never on disk in the store, never in a command line."""

from __future__ import annotations

import contextlib
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


HIDDEN = """\
name: hidden
inputs:
  token: {secret: true, required: true}
nodes:
  use:
    inputs: {t: inputs.token}
    runtime:
      kind: command
      command: >-
        printf '%s|%s|%s' {secrets.token} {inputs.token} {inputs.t} > {outputs.seen.path};
        touch started; while [ ! -e go ]; do sleep 0.05; done
    outputs: {seen: {kind: file, path: seen.txt}}
"""

# A value with spaces, quotes and shell syntax: it must arrive as one word, untouched.
TOKEN = "hunter2 $HOME 'x' \"y\" ; rm -rf ~"


def _process_tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _cmdlines(pids: list[int]) -> dict[int, bytes]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # it ended meanwhile
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
    return out


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_a_secret_in_a_command_is_not_in_any_command_line(spindle, write):
    """{secrets.X} and {inputs.X} of a secret reach the command through its environment only."""
    write("hidden.yaml", HIDDEN)
    proc = spindle.popen("run", "hidden.yaml", "-q", "--input", f"token={TOKEN}")
    try:
        started = _wait_for(spindle.cwd, ".spindle/runs/*/started")
        seen: dict[int, bytes] = {}
        for _ in range(5):  # the loop's sleep children come and go: look a few times
            # spindle's own command line holds the --input this test typed: not ours to hide.
            seen.update(_cmdlines(_process_tree(proc.pid)[1:]))
            time.sleep(0.05)
        shells = [c for c in seen.values() if c.startswith(b"/bin/sh\0-c\0")]
        assert shells, seen
        assert b'"$SPINDLE_SECRET_TOKEN"' in shells[0]
        assert b'"$SPINDLE_SECRET_T"' in shells[0]
        assert any(c.startswith(b"sleep\0") for c in seen.values()), seen  # the shell's child
        assert [c for c in seen.values() if b"hunter2" in c] == []
        (started.parent / "go").touch()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert (started.parent / "seen.txt").read_text() == "|".join([TOKEN] * 3)


def test_secrets_placeholder_must_name_a_secret_input(spindle, write):
    """{secrets.NAME} of an input that is not secret, or of no input, is refused at load."""
    write(
        "bad.yaml",
        "name: bad\ninputs:\n  who: Ada\n  token: {secret: true}\nnodes:\n"
        "  a:\n    runtime: {kind: command, command: 'echo {secrets.who} {secrets.nope}'}\n",
    )
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 2
    assert (
        "unknown placeholder '{secrets.who}' in command (input 'who' is not declared secret: "
        "write {inputs.who}, or declare it with secret: true); available: inputs.token, "
        "inputs.who, secrets.token, task.name, run.id, run.dir @ nodes.a.runtime"
    ) in proc.stderr
    assert "unknown placeholder '{secrets.nope}' in command; available: " in proc.stderr
