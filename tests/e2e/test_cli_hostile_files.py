"""Hostile and broken workflow files get one short ``error:`` and exit 2 from ``spindle run``.

Each file here once cost gigabytes, printed megabytes, hung, or ended in a
traceback (issue 9: defect 3 and part of 9). The bombs run under a 1 GiB
address-space limit, so a loader that expands them fails the test quickly
instead of exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Spindle

_LIMIT_AS = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_LIMIT_AS, _LIMIT_AS))


def run_bounded(spindle: Spindle, *args: str) -> subprocess.CompletedProcess[str]:
    """``spindle ARGS`` under a 1 GiB memory limit and a 60 s timeout."""
    return subprocess.run(
        [sys.executable, "-m", "spindle", *args],
        cwd=spindle.cwd,
        env=spindle.env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )


def nested_aliases(levels: int, width: int = 9, leaf: str = '"x"') -> str:
    """A YAML fragment of anchors a..: each a list of ``width`` aliases of the one before."""
    lines = [f"  a0: &a0 [{', '.join([leaf] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines)


NODE = "nodes:\n  n: {runtime: {kind: command, command: echo}}\n"


def assert_refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one short ``error:`` line naming what was wrong, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr[:500]
    assert len(proc.stderr.encode()) < 1024, proc.stderr[:2000]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_an_alias_bomb_is_refused_with_a_short_error(spindle, write):
    """A billion-laughs file (400 bytes, 387 million values) is refused, naming the limit."""
    path = write("bomb.yaml", f"name: bomb\ninputs:\n{nested_aliases(9)}\n{NODE}")
    assert path.stat().st_size < 600
    proc = run_bounded(spindle, "run", "bomb.yaml")
    assert_refused(proc, "bomb.yaml:", "50,000 values", "aliases")
    assert proc.stderr.count("\n") == 1


def test_an_alias_bomb_of_long_strings_is_refused(spindle, write):
    """Few values but megabytes of text once expanded: refused on the text limit."""
    leaf = '"' + "x" * 1000 + '"'
    write("text.yaml", f"name: t\ninputs:\n{nested_aliases(4, leaf=leaf)}\n{NODE}")
    proc = run_bounded(spindle, "run", "text.yaml")
    assert_refused(proc, "text.yaml:", "4,194,304 characters")


def test_an_error_quoting_an_expanded_alias_stays_short(spindle, write):
    """A value that expands to 6,561 items is quoted in 200 characters, not 40 KB."""
    write("big.yaml", f"name: big\ninputs:\n{nested_aliases(4)}\noutput: *a3\n{NODE}")
    proc = run_bounded(spindle, "run", "big.yaml")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "expected a string naming a node" in proc.stderr
    assert "characters)" in proc.stderr  # the quote says how long the whole was
    assert len(proc.stderr.encode()) < 1024, proc.stderr[:2000]


def test_a_recursive_alias_is_refused(spindle, write):
    """An alias inside the list it names (a structure that contains itself) is refused."""
    write("rec.yaml", f"name: rec\ninputs:\n  a: &a [1, *a]\n{NODE}")
    proc = run_bounded(spindle, "run", "rec.yaml")
    assert_refused(proc, "rec.yaml:3:", "alias *a", "contains itself")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("raw.yaml", b"name: x\x00\n", "raw.yaml:1:8:"),
        ("raw.json", b'{"name": "x\x00"}', "raw.json:1:12:"),
    ],
)
def test_a_nul_byte_in_the_file_is_refused(spindle, tmp_path, name, content, where):
    """A NUL byte in a YAML or JSON file is one error line with its position."""
    (tmp_path / name).write_bytes(content)
    proc = run_bounded(spindle, "run", name)
    assert_refused(proc, where, "NUL byte")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("esc.yaml", 'name: x\nnodes:\n  a: {runtime: {kind: command, command: "echo \\0 hi"}}\n'),
        (
            "esc.json",
            '{"name": "x", "nodes": {"a": {"runtime": '
            '{"kind": "command", "command": "echo \\u0000"}}}}',
        ),
    ],
)
def test_a_nul_character_from_an_escape_is_refused_at_load(spindle, write, name, text):
    """``"\\0"`` in YAML or ``"\\u0000"`` in JSON is refused before anything runs."""
    write(name, text)
    proc = run_bounded(spindle, "run", name)
    assert_refused(proc, f"{name}:", "NUL character")
    assert "started" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "name: x\nnodes: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("deep.json", '{"name": "x", "nodes": ' + '{"a": ' * 5000 + "1" + "}" * 5001),
        ("deep101.yaml", "name: x\n" + NODE + "inputs:\n  d: " + "[" * 100 + "]" * 100 + "\n"),
    ],
)
def test_deep_nesting_is_refused_at_the_documented_limit(spindle, write, name, text):
    """Lists or mappings nested past 100 levels are refused (no RecursionError)."""
    write(name, text)
    proc = run_bounded(spindle, "run", name)
    assert_refused(proc, f"{name}:", "100 levels")


def test_nesting_at_the_limit_loads(spindle, write):
    """A document nested exactly 100 levels deep is still a workflow."""
    # the document is level 1, inputs 2, d 3: 98 lists reach level 100
    write("ok.yaml", "name: x\n" + NODE + "inputs:\n  d: " + "[" * 98 + "]" * 98 + "\n")
    proc = run_bounded(spindle, "run", "ok.yaml")
    assert proc.returncode == 0, proc.stderr


def test_a_file_over_one_mebibyte_is_refused(spindle, write):
    """A workflow file larger than 1 MiB is refused before it is parsed."""
    write("huge.yaml", f"name: huge\n{NODE}# " + "x" * (1 << 20) + "\n")
    proc = run_bounded(spindle, "run", "huge.yaml")
    assert_refused(proc, "huge.yaml is too large", "1,048,576 bytes")


def test_an_integer_too_long_to_convert_is_refused(spindle, write):
    """An integer of 5,000 digits is an error that says to quote it, not a traceback."""
    write("int.yaml", f"name: x\n{NODE}inputs:\n  n: {'1' * 5000}\n")
    proc = run_bounded(spindle, "run", "int.yaml")
    assert_refused(proc, "int.yaml:", "digits", "quote it")


def test_a_directory_is_refused_in_one_line(spindle, tmp_path):
    """A directory given as the workflow file is one ``error:`` line, exit 2."""
    (tmp_path / "flow.yaml").mkdir()
    proc = run_bounded(spindle, "run", "flow.yaml")
    assert_refused(proc, "flow.yaml", "is a directory")
    assert proc.stderr.count("\n") == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_blocking(spindle, tmp_path):
    """A FIFO named as the workflow file is refused; reading it would wait for a writer."""
    os.mkfifo(tmp_path / "pipe.yaml")
    proc = run_bounded(spindle, "run", "pipe.yaml")
    assert_refused(proc, "pipe.yaml", "not a regular file", "named pipe")


def test_a_missing_subworkflow_file_is_refused_at_load(spindle, write, tmp_path):
    """A subworkflow node naming a file that is not there is refused before the run starts."""
    write(
        "flows/parent.yaml",
        "name: parent\nnodes:\n"
        "  first: {runtime: {kind: command, command: 'touch ran.txt'}}\n"
        "  child:\n"
        "    effect: {kind: subworkflow, workflow: sub/child.yaml}\n"
        "    after: [first]\n",
    )
    proc = spindle("run", "flows/parent.yaml")
    assert proc.returncode == 2, proc.stderr
    expected = tmp_path / "flows" / "sub" / "child.yaml"
    assert f"flows/parent.yaml:5: node 'child': workflow file not found: {expected}" in proc.stderr
    assert "@ nodes.child.effect.workflow" in proc.stderr
    assert "started" not in proc.stderr
    assert not list(tmp_path.rglob("ran.txt"))


def test_a_missing_handoff_target_file_is_refused_at_load(spindle, write):
    """A handoff to a workflow file that is not there is refused with the node and the path."""
    write(
        "h.yaml",
        "name: h\nnodes:\n  give:\n    effect: {kind: handoff, target: /nowhere/next.json}\n",
    )
    proc = spindle("run", "h.yaml")
    assert proc.returncode == 2, proc.stderr
    assert "node 'give': workflow file not found: /nowhere/next.json" in proc.stderr


def test_a_subworkflow_file_that_exists_still_runs(spindle, write):
    """The load-time check resolves the child as the run does: relative to the parent file."""
    write(
        "flows/sub/child.yaml",
        "name: child\nnodes:\n  a: {runtime: {kind: command, command: 'echo hi'}}\n",
    )
    write(
        "flows/parent.yaml",
        "name: parent\nnodes:\n"
        "  child:\n    effect: {kind: subworkflow, workflow: sub/child.yaml}\n",
    )
    proc = spindle("run", "flows/parent.yaml")
    assert proc.returncode == 0, proc.stderr


def test_a_subworkflow_by_name_is_not_checked_as_a_file(tmp_path: Path):
    """A target without a workflow-file suffix is a name the engine knows: not refused at load."""
    from spindle import load_workflow_text

    wf = load_workflow_text(
        "name: p\nnodes:\n  c: {effect: {kind: subworkflow, workflow: child}}\n",
        base_dir=tmp_path,
    )
    assert wf.nodes["c"].effect is not None
