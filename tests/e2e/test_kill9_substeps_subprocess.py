"""Fault injection: kill -9 the engine while a subprocess task makes durable sub-steps.

One node, run by the ``subprocess`` executor, makes ``STEPS`` sub-steps; each
appends its index to a file and sleeps a little. Each trial starts the run
with ``spindle run``, then SIGKILLs the driving ``spindle`` process and the
task's child process (each in its own process group) at random points, over
and over, continuing with ``spindle resume`` after each kill, and finally lets
it complete. Every index must be in the file exactly once, except at most one
repeat per kill (the step in flight: it ran, but its commit never happened);
the output must equal an uninterrupted run's, the ledger must hold one
record per step, and ``spindle ledger verify`` must pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)"),
]

STEPS = 48
TRIALS = 4
KILLS_PER_TRIAL = 8

MODULE = textwrap.dedent(
    """
    import os, time

    def mark(i):
        with open(os.environ["STEPS_LOG"], "a") as f:
            f.write(f"{i}\\n")
        time.sleep(0.004)
        return i * i

    def work(ctx, n):
        return [ctx.step(mark, i, name="mark") for i in range(n)]
    """
)

WORKFLOW = textwrap.dedent(
    f"""
    name: substeps
    inputs: {{n: {STEPS}}}
    nodes:
      steps:
        runtime: {{kind: python, function: "stepmod:work"}}
        executor: {{kind: subprocess}}
        inputs: {{n: inputs.n}}
    output: steps
    """
)

SPINDLE = [sys.executable, "-m", "spindle"]


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _dead(pid: int) -> bool:
    """Whether ``pid`` is gone (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _kill_tree(proc: subprocess.Popen[bytes]) -> list[int]:
    """SIGKILL the driver's process group and the groups of the children it started;
    return the children's pids.

    The driver is stopped first, so it starts nothing between the look at its
    children and the kill; the task's child runs in a session of its own.
    """
    os.kill(proc.pid, signal.SIGSTOP)
    children = _children(proc.pid)
    groups = {proc.pid}
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(child))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait()
    return children


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _spindle(args: list[str], cwd: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [*SPINDLE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode in (0, 1, 3), out.stderr
    return json.loads(out.stdout)


def _setup(root: Path) -> tuple[Path, dict[str, str], list[str]]:
    root.mkdir(parents=True)
    (root / "stepmod.py").write_text(MODULE)
    (root / "wf.yaml").write_text(WORKFLOW)
    env = dict(os.environ)
    env["STEPS_LOG"] = str(root / "steps.log")
    return root / "steps.log", env, ["--store", f"sqlite:///{root / 'db.sqlite'}", "--json"]


def test_substeps_of_a_subprocess_task_survive_kill_9(tmp_path):
    """Killed at random points, a subprocess task's steps each run once, bar one per kill."""
    log, env, store = _setup(tmp_path / "clean")
    baseline = _spindle(["run", "wf.yaml", "-q", *store], log.parent, env)
    assert baseline["status"] == "completed", baseline
    assert _lines(log) == [str(i) for i in range(STEPS)]

    rng = random.Random(4321)
    kills = repeats = 0
    for trial in range(TRIALS):
        log, env, store = _setup(tmp_path / f"trial{trial}")
        root = log.parent
        run_id = None
        trial_kills = 0
        while trial_kills < KILLS_PER_TRIAL:
            done = len(set(_lines(log)))
            if STEPS - done < 2:
                break
            args = ["resume", run_id, "-q", *store] if run_id else ["run", "wf.yaml", "-q", *store]
            proc = subprocess.Popen(
                [*SPINDLE, *args],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            # Kill once a few more steps have run, plus a random part of a step's time,
            # so the kills land at every point of a step: running, committing, between.
            target = len(_lines(log)) + rng.randint(1, 4)
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if len(_lines(log)) >= target:
                    break
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.010))
            if proc.poll() is not None:
                break  # it completed first
            children = _kill_tree(proc)
            trial_kills += 1
            gone_by = time.monotonic() + 10
            while not all(_dead(c) for c in children) and time.monotonic() < gone_by:
                time.sleep(0.01)
            assert all(_dead(c) for c in children), (trial, children)
            if run_id is None:
                (listed,) = _spindle(["runs", *store], root, env)["runs"]
                run_id = listed["run_id"]
        assert run_id is not None, f"trial {trial}: the first kill came too late"
        final = _spindle(["resume", run_id, "-q", *store], root, env)
        assert final["status"] == "completed", (trial, final)
        assert final["output"] == baseline["output"], trial

        counts = Counter(_lines(log))
        assert set(counts) == {str(i) for i in range(STEPS)}, (trial, counts)
        extra = sum(n - 1 for n in counts.values())
        assert extra <= trial_kills, (trial, trial_kills, counts)
        kills += trial_kills
        repeats += extra

        ledger = _spindle(["ledger", run_id, *store], root, env)
        records = ledger["records"]
        steps = [r for r in records if r["kind"] == "call" and r["status"] == "completed"]
        assert sorted(r["idempotency_key"].rsplit(":", 1)[1] for r in steps) == sorted(
            str(i) for i in range(STEPS)
        ), trial
        verify = subprocess.run(
            [*SPINDLE, "ledger", "verify", run_id, *store[:2]],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert verify.returncode == 0, (trial, verify.stdout, verify.stderr)

    # The kills must land mid-run, or the test proves nothing.
    assert kills >= 30, kills
    print(f"\n{kills} kills, {repeats} steps run twice")
