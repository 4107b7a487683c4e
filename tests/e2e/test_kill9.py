"""Fault injection: kill -9 a process driving a 50-node run at random points.

Each trial starts a fresh run in a subprocess, SIGKILLs it after a random
delay, then finishes it in a new process. The run must end with exactly one
completed ledger record per node, the same output as an uninterrupted run,
an intact hash chain, and each node's idempotent side effect present once.
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

NODES = 50
TRIALS = 20

DRIVER = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from spindle import Settings, Workflow
    from spindle.core.engine import Engine
    from spindle.core.errors import RunNotFound

    EFFECTS = os.environ["EFFECTS_DIR"]

    def work(ctx, **deps):
        # The side effect is keyed by ctx.idempotency_key: a re-run after a crash
        # finds the file and does not write it twice.
        path = os.path.join(EFFECTS, ctx.idempotency_key.replace(":", "_"))
        # Atomic create-if-absent: the content is written first, then linked into
        # place, so a kill can never leave an empty or half-written effect behind.
        tmp = f"{{path}}.{{os.getpid()}}.tmp"
        with open(tmp, "w") as f:
            f.write(ctx.node_id)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        with open(os.path.join(EFFECTS, "..", "attempts.log"), "a") as log:
            log.write(ctx.node_id + "\\n")
        time.sleep(0.004)
        return sum(v for v in deps.values()) + 1

    def build():
        wf = Workflow("fifty")
        for i in range({nodes}):
            # a layered DAG: each node depends on up to two nodes of the previous layer
            deps = [f"n{{j}}" for j in (i - 5, i - 6) if j >= 0 and j // 5 == i // 5 - 1]
            wf.task(f"n{{i}}", {{"kind": "python", "function": work}},
                    inputs={{d: d for d in deps}})
        wf.output = "n{last}"
        return wf

    async def main(db, run_id):
        wf = build()
        settings = Settings(runs_dir=os.path.join(os.path.dirname(db), "runs"),
                            concurrency=4)
        async with Engine(f"sqlite:///{{db}}", settings=settings) as engine:
            try:
                await engine.get_run(run_id)
            except RunNotFound:
                await engine.start(wf, run_id=run_id)
            state = await engine.drive(run_id, workflow=wf)
            ledger = await engine.ledger(run_id)
            ok = (await engine.verify_ledger(run_id)).ok
            print(json.dumps({{"status": state.status.value, "output": state.output,
                              "completed": [r.node_id for r in ledger
                                            if r.kind.value == "node"
                                            and r.status.value == "completed"],
                              "chain_ok": ok}}))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
).format(nodes=NODES, last=NODES - 1)


def _driver(tmp_path: Path) -> Path:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return script


def _env(effects: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["EFFECTS_DIR"] = str(effects)
    return env


def _finish(script: Path, db: Path, run_id: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(script), str(db), run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_runs_killed_at_random_points_complete_exactly_once(tmp_path):
    """After kill -9 at random points, every run completes with each node recorded once."""
    script = _driver(tmp_path)
    clean_dir = tmp_path / "clean"
    (clean_dir / "effects").mkdir(parents=True)
    baseline = _finish(script, clean_dir / "db.sqlite", "clean", _env(clean_dir / "effects"))
    assert baseline["status"] == "completed"
    rng = random.Random(1234)
    killed_mid_run = 0
    for trial in range(TRIALS):
        trial_dir = tmp_path / f"trial{trial}"
        effects = trial_dir / "effects"
        effects.mkdir(parents=True)
        db = trial_dir / "db.sqlite"
        env = _env(effects)
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db), "r"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Kill once a random number of node attempts have started, so the kill lands
        # mid-run whatever the machine's speed, plus a random sub-step delay.
        target = rng.randint(1, NODES - 5)
        log = trial_dir / "attempts.log"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if log.exists() and log.read_text().count("\n") >= target:
                break
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.004))
        if proc.poll() is None:
            killed_mid_run += 1
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        result = _finish(script, db, "r", env)
        assert result["status"] == "completed", (trial, result)
        assert sorted(result["completed"]) == sorted(f"n{i}" for i in range(NODES)), trial
        assert result["output"] == baseline["output"], trial
        assert result["chain_ok"], trial
        written = sorted(p.name for p in effects.iterdir() if not p.name.endswith(".tmp"))
        assert len(written) == NODES, (trial, len(written))
        assert all((effects / name).read_text() for name in written)
    # The kills must actually interrupt runs, or the test proves nothing.
    assert killed_mid_run >= TRIALS // 2, killed_mid_run
