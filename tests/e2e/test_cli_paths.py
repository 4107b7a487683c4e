"""Output paths and working directories stay inside the run directory, through the CLI.

The run directory is ``.spindle/runs/RUN_ID/`` under the working directory,
so ``../../../x`` from it is ``x`` in the test's working directory: outside
the run directory, where nothing may be written, created or read from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ECHO_ONLY = '[policy]\nallowed_executables = ["echo"]\n'
HINT = (
    "(paths are relative to the run directory; a trusted workflow, run without a load "
    "policy, can allow this for the node with 'allow_outside_paths: true')"
)
SECRET = b"the-secret-bytes-0600\n"


def stored_bytes(cwd: Path) -> bytes:
    """Everything the default store's artifact area holds, concatenated."""
    area = cwd / ".spindle" / "spindle.db.artifacts"
    if not area.exists():
        return b""
    return b"".join(p.read_bytes() for p in sorted(area.rglob("*")) if p.is_file())


def secret_file(cwd: Path) -> Path:
    """A 0600 file outside the run directory, as a private key or a token would be."""
    path = cwd / "private.key"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


# each case: (the command's cwd, the node's outputs, the message, what must not be made)
CASES = {
    "file climbing out": (
        None,
        "{out: {kind: file, path: ../../../x.txt}}",
        "node 'x': output 'out' path '../../../x.txt' leaves the run directory",
        "x.txt",
    ),
    "absolute file": (
        None,
        "{out: {kind: file, path: CWD/abs.txt}}",
        "node 'x': output 'out' path 'CWD/abs.txt' is absolute",
        "abs.txt",
    ),
    "folder climbing out": (
        None,
        "{out: {kind: folder, path: ../../../made}}",
        "node 'x': output 'out' path '../../../made' leaves the run directory",
        "made",
    ),
    "cwd climbing out": (
        "../../..",
        None,
        "node 'x': runtime cwd '../../..' leaves the run directory",
        "cwd.txt",
    ),
}


@pytest.mark.parametrize("policy", [None, ECHO_ONLY], ids=["no policy", "echo-only policy"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_path_leaving_the_run_directory_is_refused_at_load(spindle, write, policy, case):
    """A path outside the run dir is refused before anything runs, naming node and field."""
    cwd, outputs, message, made = (
        None if v is None else v.replace("CWD", str(spindle.cwd)) for v in CASES[case]
    )
    if policy:
        write("spindle.toml", policy)
        command = "echo hi"  # a plain allowed command: only the path is wrong
    else:
        command = "echo hi > cwd.txt" if cwd else "echo hi > {outputs.out.path}"
    runtime = f"{{kind: command, command: {command!r}" + (f", cwd: {cwd}}}" if cwd else "}")
    text = f"name: esc\nnodes:\n  x:\n    runtime: {runtime}\n"
    if outputs:
        text += f"    outputs: {outputs}\n"
    write("esc.yaml", text)
    proc = spindle("run", "esc.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: esc.yaml: workflow 'esc' is invalid"), proc.stderr
    assert f"{message} {HINT}" in proc.stderr
    assert not (spindle.cwd / made).exists()
    assert not (spindle.cwd / ".spindle" / "runs").exists()


@pytest.mark.parametrize("policy", [None, ECHO_ONLY], ids=["no policy", "echo-only policy"])
def test_a_private_file_outside_is_not_copied_into_the_artifact_store(spindle, write, policy):
    """Naming a 0600 file outside the run dir as an output is refused; its bytes are not stored."""
    secret_file(spindle.cwd)
    if policy:
        write("spindle.toml", policy)
    for path in ("../../../private.key", str(spindle.cwd / "private.key")):
        write(
            "steal.yaml",
            "name: steal\nnodes:\n  x:\n    runtime: {kind: command, command: 'echo hi'}\n"
            f"    outputs: {{key: {{kind: file, path: {path!r}}}}}\n",
        )
        proc = spindle("run", "steal.yaml")
        assert proc.returncode == 2, proc.stderr
        assert f"node 'x': output 'key' path '{path}'" in proc.stderr
        assert SECRET not in stored_bytes(spindle.cwd)


def test_a_symlink_planted_by_the_task_does_not_copy_an_outside_file(spindle, write):
    """An output that is a symlink pointing outside fails the node; the store lacks its bytes."""
    secret = secret_file(spindle.cwd)
    write(
        "link.yaml",
        "name: link\nnodes:\n  x:\n"
        f"    runtime: {{kind: command, command: 'ln -s {secret} {{outputs.key.path}}'}}\n"
        "    outputs: {key: {kind: file, path: key.txt}}\n",
    )
    code, doc = spindle.json("run", "link.yaml")
    assert code == 1, doc
    assert doc["status"] == "failed"
    run_dir = os.path.realpath(spindle.cwd / ".spindle" / "runs" / doc["run_id"])
    assert doc["error"] == (
        f"node 'x': output 'key' path 'key.txt' resolves to {os.path.realpath(secret)}, "
        f"outside the run directory {run_dir} (a symbolic link inside the run directory "
        "points out of it); refused"
    )
    assert SECRET not in stored_bytes(spindle.cwd)


def test_a_planted_symlink_cannot_move_a_cwd_or_a_folder_outside(spindle, write):
    """A node whose cwd or folder output goes through a planted link fails; nothing is made."""
    outside = spindle.cwd / "outside"
    outside.mkdir()
    write(
        "link.yaml",
        "name: link\nnodes:\n"
        f"  plant:\n    runtime: {{kind: command, command: 'ln -s {outside} {{run.dir}}/out'}}\n"
        "  work:\n    runtime: {kind: command, command: 'echo hi > made.txt', cwd: out}\n"
        "    after: [plant]\n    continue_on_failure: true\n"
        "  report:\n    runtime: {kind: command, command: 'echo hi > {outputs.d.path}/r.txt'}\n"
        "    outputs: {d: {kind: folder, path: out/reports}}\n    after: [plant]\n"
        "    continue_on_failure: true\n",
    )
    code, doc = spindle.json("run", "link.yaml")
    assert code == 1, doc
    shown = spindle("show", doc["run_id"]).stdout
    real = os.path.realpath(outside)
    assert f"node 'work': runtime cwd 'out' resolves to {real}, outside the run directory" in shown
    assert (
        f"node 'report': output 'd' path 'out/reports' resolves to {real}/reports, outside "
        "the run directory" in shown
    )
    assert list(outside.iterdir()) == []


def test_a_trusted_workflow_can_allow_outside_paths_explicitly(spindle, write):
    """With allow_outside_paths: true and no policy, a node writes and keeps a file outside."""
    write(
        "shared.yaml",
        "name: shared\nnodes:\n  x:\n"
        "    runtime: {kind: command, command: 'echo shared > {outputs.out.path}', cwd: ../..}\n"
        "    outputs: {out: {kind: file, path: ../../../shared.txt}}\n"
        "    allow_outside_paths: true\n",
    )
    code, doc = spindle.json("run", "shared.yaml")
    assert code == 0, doc
    assert (spindle.cwd / "shared.txt").read_text() == "shared\n"
    assert b"shared\n" in stored_bytes(spindle.cwd)


def test_a_load_policy_refuses_allow_outside_paths(spindle, write):
    """Under a policy the opt-in flag itself is refused, naming the node and the paths."""
    write("spindle.toml", ECHO_ONLY)
    write(
        "shared.yaml",
        "name: shared\nnodes:\n  x:\n    runtime: {kind: command, command: 'echo hi', cwd: /}\n"
        "    outputs: {out: {kind: file, path: ../../../shared.txt}}\n"
        "    allow_outside_paths: true\n",
    )
    proc = spindle("run", "shared.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: shared.yaml: workflow 'shared' is refused by the load policy",
        "  - shared.yaml:6: node 'x': 'allow_outside_paths' is refused by the load policy: "
        "under a policy every path stays inside the run directory (output 'out' path "
        "'../../../shared.txt' leaves the run directory; runtime cwd '/' is absolute); "
        "remove the flag and use paths relative to the run directory "
        "@ nodes.x.allow_outside_paths",
    ]
    assert not (spindle.cwd / ".spindle" / "runs").exists()


def test_a_run_resumed_under_a_policy_does_not_honour_allow_outside_paths(spindle, write):
    """A stored definition with the flag, resumed by a process with a policy, stays inside."""
    write(
        "later.yaml",
        "name: later\nnodes:\n"
        "  ok:\n    effect: {kind: ask_user, prompt: 'Go?'}\n"
        "  x:\n    runtime: {kind: command, command: 'echo hi'}\n"
        "    outputs: {out: {kind: folder, path: ../../../later}}\n"
        "    allow_outside_paths: true\n    after: [ok]\n",
    )
    code, doc = spindle.json("run", "later.yaml")
    assert code == 3, doc
    write("spindle.toml", ECHO_ONLY)
    code, doc = spindle.json("resume", doc["run_id"], "--payload", json.dumps("go"))
    assert code == 1, doc
    assert doc["error"].startswith("node 'x': output 'out' path '../../../later' resolves to ")
    assert doc["error"].endswith(
        "(it leaves the run directory; under a load policy 'allow_outside_paths' is not "
        "honoured); refused"
    )
    assert not (spindle.cwd / "later").exists()
