"""The progress displays through the real ``spindle`` command, as a user sees them:
stderr on a pseudo-terminal (the live line, its summary, ``-v``), or piped
(plain lines, no control characters).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.ptys import on_pty

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

CHAIN = """\
name: chain
nodes:
  a: {runtime: {kind: python_code, code: "result = 1"}}
  b: {runtime: {kind: python_code, code: "result = inputs['x'] + 1"}, inputs: {x: a}}
  c: {runtime: {kind: python_code, code: "result = inputs['x'] + 1"}, inputs: {x: b}}
  d: {runtime: {kind: python_code, code: "result = inputs['x'] + 1"}, inputs: {x: c}}
output: d
"""

BROKEN = """\
name: broken
nodes:
  a: {runtime: {kind: python_code, code: "result = 1"}}
  boom: {runtime: {kind: python_code, code: "raise ValueError('kaboom')"}, after: [a]}
  c: {runtime: {kind: python_code, code: "result = 3"}, after: [boom]}
"""

ASKING = """\
name: asking
nodes:
  a: {runtime: {kind: python_code, code: "result = 1"}}
  approve: {effect: {kind: ask_user, prompt: "Go?", choices: ["yes", "no"]}, after: [a]}
  b: {runtime: {kind: python_code, code: "result = inputs['ok']"}, inputs: {ok: approve}}
output: b
"""


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    out.update({"TERM": "xterm-256color", "COLUMNS": "120"})
    return out


def on_terminal(cwd: Path, *args: str) -> tuple[int, str, list[str]]:
    """Run ``spindle ARGS`` with stderr on a pseudo-terminal (stdout piped); return the
    exit code, stdout, and the terminal's text as lines without escape codes."""
    code, out, raw = on_pty(list(args), cwd=cwd, env=env())
    text = ANSI.sub("", raw)
    seen = [x.strip() for x in re.split(r"[\r\n]+", text) if x.strip()]
    return code, out, seen


def piped(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "spindle", *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        timeout=60,
    )


SUMMARY = r"\d+/\d+ nodes · \d+ failed( · \d+ \w+( \w+)?)* · \d+\.\ds"


def test_run_on_a_terminal_ends_in_the_summary_line(tmp_path):
    """On a terminal, `spindle run` shows a live line that ends in one summary line;
    no per-node lines without -v; stdout keeps the outcome."""
    (tmp_path / "chain.yaml").write_text(CHAIN)
    code, out, seen = on_terminal(tmp_path, "run", "chain.yaml")
    assert code == 0, seen
    assert "output: 4" in out
    assert re.fullmatch(r"4/4 nodes · 0 failed · \d+\.\ds", seen[-1]), seen
    assert not [x for x in seen if re.match(r"[abcd] completed", x)], seen


def test_run_on_a_terminal_prints_per_node_lines_with_verbose(tmp_path):
    """`spindle -v run` on a terminal adds a line per completed node above the display."""
    (tmp_path / "chain.yaml").write_text(CHAIN)
    code, _, seen = on_terminal(tmp_path, "-v", "run", "chain.yaml")
    assert code == 0, seen
    for node in "abcd":
        assert any(re.fullmatch(rf"{node} completed in \d+\.\d\ds", x) for x in seen), seen
    assert re.fullmatch(r"4/4 nodes · 0 failed · \d+\.\ds", seen[-1]), seen


def test_a_failure_is_printed_on_a_terminal_without_verbose(tmp_path):
    """A failing node's error is printed even without -v; the summary counts it and
    the node that never ran."""
    (tmp_path / "broken.yaml").write_text(BROKEN)
    code, _, seen = on_terminal(tmp_path, "run", "broken.yaml")
    assert code == 1, seen
    assert any(x.startswith("boom failed in ") and "kaboom" in x for x in seen), seen
    summary = [x for x in seen if re.fullmatch(SUMMARY, x)]
    assert summary and summary[-1].startswith("2/3 nodes · 1 failed · 1 not run · "), seen


def test_a_resumed_run_counts_the_nodes_done_before(tmp_path):
    """A run that waits ends its display with the wait; resuming it counts the nodes
    the earlier drive completed, so the summary reaches the full total."""
    (tmp_path / "asking.yaml").write_text(ASKING)
    code, out, seen = on_terminal(tmp_path, "run", "asking.yaml")
    assert code == 3, seen
    assert any(x.startswith("1/3 nodes · 0 failed · 1 waiting · ") for x in seen), seen
    assert seen[-1] == "approve waiting", seen
    run_id = out.split()[1]
    code, out, seen = on_terminal(
        tmp_path, "resume", run_id, "--key", "approve", "--payload", '"yes"'
    )
    assert code == 0, seen
    assert re.fullmatch(r"3/3 nodes · 0 failed · \d+\.\ds", seen[-1]), seen


def test_worker_on_a_terminal_ends_in_a_summary_line(tmp_path):
    """`spindle worker --once` on a terminal ends in a summary of the runs it drove."""
    (tmp_path / "chain.yaml").write_text(CHAIN)
    assert piped(tmp_path, "run", "chain.yaml", "--detach").returncode == 0
    code, _, seen = on_terminal(tmp_path, "worker", "--once")
    assert code == 0, seen
    assert seen[-1] == "drove 1 run(s)", seen
    assert re.fullmatch(
        r"worker: 1 claimed · 0 running · 1 finished · 0 failed · \d+\.\ds", seen[-2]
    ), seen


def test_piped_run_and_worker_print_no_escape_byte(tmp_path):
    """Piped, `spindle run` (-v or not, completed or failed) and `spindle worker` print
    plain lines only: not one ESC byte, even with TERM set."""
    (tmp_path / "chain.yaml").write_text(CHAIN)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    for args in (["run", "chain.yaml"], ["-v", "run", "broken.yaml"]):
        proc = piped(tmp_path, *args)
        assert proc.returncode in (0, 1), proc.stderr
        assert b"\x1b" not in proc.stdout + proc.stderr
        assert b"  a completed in " in proc.stderr
    detached = piped(tmp_path, "run", "chain.yaml", "--detach")
    run_id = detached.stdout.split()[1].decode()
    work = piped(tmp_path, "worker", "--once")
    assert work.returncode == 0, work.stderr
    assert b"\x1b" not in work.stdout + work.stderr
    assert work.stderr.decode().splitlines() == [
        f"run {run_id} claimed",
        f"run {run_id} completed",
        "drove 1 run(s)",
    ]
