"""Four ``spindle worker`` processes share one store: 500 runs of a 5-node workflow are
each driven to the end once, every node recorded completed exactly once, no lease left.

On SQLite (one file, one machine) and on PostgreSQL (the server ``.ci/run`` starts).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from spindle import Settings
from spindle.core.engine import Engine
from spindle.core.model import StepKind, StepStatus
from spindle.core.workflow import load_workflow

pytestmark = pytest.mark.slow

RUNS = 500
WORKERS = 4

WF = """
name: five
nodes:
  a: {runtime: {kind: python_code, code: "result = 1"}}
  b: {inputs: {x: a}, runtime: {kind: python_code, code: "result = inputs['x'] + 1"}}
  c: {inputs: {x: a}, runtime: {kind: python_code, code: "result = inputs['x'] + 2"}}
  d: {inputs: {x: b, y: c}, runtime: {kind: python_code, code: "result = inputs['x']+inputs['y']"}}
  e: {inputs: {x: d}, runtime: {kind: python_code, code: "result = inputs['x'] * 10"}}
output: e
"""


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    from tests.pg import postgres_url

    return postgres_url()


def test_four_workers_drive_five_hundred_runs_each_node_once(url: str, tmp_path: Path) -> None:
    path = tmp_path / "five.yaml"
    path.write_text(WF, "utf-8")
    settings = Settings(runs_dir=str(tmp_path / "runs"))

    async def start() -> list[str]:
        async with Engine(url, settings=settings) as engine:
            wf = load_workflow(path)
            return [await engine.start(wf) for _ in range(RUNS)]

    run_ids = asyncio.run(start())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
    env["SPINDLE_RUNS_DIR"] = str(tmp_path / "runs")
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    workers = []
    for log in logs:
        with log.open("w") as out:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "spindle", "worker", "--store", url, "--poll", "0.1"],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                )
            )

    async def unfinished() -> int:
        async with Engine(url, settings=settings) as engine:
            runs = await engine.store.list_runs()
            return sum(1 for r in runs if r.status.value != "completed")

    try:
        deadline = time.monotonic() + 300
        while (left := asyncio.run(unfinished())) and time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), [x.read_text() for x in logs]
            time.sleep(0.5)
        assert left == 0, f"{left} runs unfinished after 300 s"
    finally:
        for w in workers:
            w.send_signal(signal.SIGINT)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()

    async def check() -> tuple[Counter[str], list[object], list[object]]:
        async with Engine(url, settings=settings) as engine:
            done: Counter[str] = Counter()
            outputs = []
            leases = []
            for run_id in run_ids:
                state = await engine.get_run(run_id)
                outputs.append(state.output)
                for r in await engine.ledger(run_id):
                    if r.kind == StepKind.NODE and r.status == StepStatus.COMPLETED:
                        done[f"{run_id}/{r.node_id}"] += 1
                lease = await engine.store.get_lease(run_id)
                if lease is not None:
                    leases.append(lease)
            return done, outputs, leases

    done, outputs, leases = asyncio.run(check())
    assert len(done) == RUNS * 5
    assert set(done.values()) == {1}, [k for k, v in done.items() if v > 1][:5]
    assert outputs == [50] * RUNS
    assert leases == []
    # Every worker took part (the runs were shared out, not driven by one).
    claimed = [log.read_text().count(" claimed") for log in logs]
    assert all(n > 0 for n in claimed), claimed
