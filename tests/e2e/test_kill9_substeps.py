"""Fault injection for sub-steps: kill -9 a process while one node makes its steps.

The node's function makes STEPS sub-steps; each appends its index to a file
(a side effect that is *not* idempotent) and sleeps a little. Each trial
kills the driving process at random points, several times, then finishes the
run in a new process. A completed sub-step must never run again, so every
index is in the file once, plus at most one repeat per kill (the step in
flight); the output must equal an uninterrupted run's, every step must have
exactly one completed ledger record, and the hash chain must verify.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STEPS = 40
TRIALS = 10
KILLS_PER_TRIAL = 3

DRIVER = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from spindle import Settings, Workflow
    from spindle.core.engine import Engine
    from spindle.core.errors import RunNotFound

    LOG = os.environ["STEPS_LOG"]
    MODE = os.environ["STEP_MODE"]

    def effect(i):
        with open(LOG, "a") as f:
            f.write(f"{{i}}\\n")
        time.sleep(0.006)
        return i * i

    async def aeffect(i):
        with open(LOG, "a") as f:
            f.write(f"{{i}}\\n")
        await asyncio.sleep(0.006)
        return i * i

    def build():
        wf = Workflow("steps")
        if MODE == "async":
            @wf.node
            async def work(ctx):
                return [await ctx.astep(aeffect, i, name=f"e{{i}}") for i in range({steps})]
        else:
            @wf.node
            def work(ctx):
                return [ctx.step(effect, i, name=f"e{{i}}") for i in range({steps})]
        return wf

    async def main(db, run_id):
        wf = build()
        settings = Settings(runs_dir=os.path.join(os.path.dirname(db), "runs"))
        async with Engine(f"sqlite:///{{db}}", settings=settings) as engine:
            try:
                await engine.get_run(run_id)
            except RunNotFound:
                await engine.start(wf, run_id=run_id)
            state = await engine.drive(run_id, workflow=wf)
            calls = [r.idempotency_key for r in await engine.ledger(run_id)
                     if r.kind.value == "call" and r.status.value == "completed"]
            ok = (await engine.verify_ledger(run_id)).ok
            print(json.dumps({{"status": state.status.value, "output": state.output,
                              "calls": calls, "chain_ok": ok}}))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
).format(steps=STEPS)


def _env(log: Path, mode: str) -> dict[str, str]:
    return {**os.environ, "STEPS_LOG": str(log), "STEP_MODE": mode}


def _finish(script: Path, db: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(script), str(db), "r"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_sub_steps_killed_at_random_points_run_once_each(tmp_path, mode):
    """After kill -9 mid-steps, each completed sub-step never runs again."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    clean = tmp_path / "clean"
    clean.mkdir()
    baseline = _finish(script, clean / "db.sqlite", _env(clean / "steps.log", mode))
    assert baseline["status"] == "completed"
    assert _lines(clean / "steps.log") == [str(i) for i in range(STEPS)]
    rng = random.Random(f"substeps-{mode}")
    kills = 0
    for trial in range(TRIALS):
        trial_dir = tmp_path / f"trial{trial}"
        trial_dir.mkdir()
        db, log = trial_dir / "db.sqlite", trial_dir / "steps.log"
        env = _env(log, mode)
        killed_here = 0
        for _ in range(KILLS_PER_TRIAL):
            done = len(_lines(log))
            if done >= STEPS - 2:
                break
            proc = subprocess.Popen(
                [sys.executable, str(script), str(db), "r"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            # Kill once a random number of further steps have started, plus a little.
            target = rng.randint(done + 1, min(STEPS - 1, done + STEPS // KILLS_PER_TRIAL))
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if len(_lines(log)) >= target:
                    break
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.006))
            if proc.poll() is None:
                killed_here += 1
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        kills += killed_here
        result = _finish(script, db, env)
        assert result["status"] == "completed", (trial, result)
        assert result["output"] == baseline["output"], trial
        assert result["chain_ok"], trial
        assert sorted(result["calls"]) == sorted(set(result["calls"])), trial  # once each
        assert len(result["calls"]) == STEPS, trial
        lines = _lines(log)
        assert sorted(set(lines), key=int) == [str(i) for i in range(STEPS)], trial
        repeats = len(lines) - STEPS
        assert repeats <= killed_here, (trial, repeats, killed_here)
    # The kills must interrupt runs mid-steps, or the test proves nothing.
    assert kills >= 30, kills
