"""Three ``spindle worker`` processes share one store with a schedule whose slots are
due: each slot fires exactly once across them -- one run per slot, driven once.

On SQLite (one file) and on PostgreSQL. No waiting for the clock: the schedule is
added with ``--since`` an hour back and ``--catch-up all``, so its past slots are
all due at once and the workers race to fire them. Which slots are due depends on
when the test runs, so the fired set is checked between the slots due before the
workers started and those due after they stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spindle.core.model import parse_cron, schedule_run_id

pytestmark = pytest.mark.slow

WORKERS = 3
CRON = "*/10 * * * *"

WF = """
name: tick
inputs: {log: fired.txt}
nodes:
  note: {runtime: {kind: command, command: "echo {run.id} >> {inputs.log}"}}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    from tests.pg import postgres_url

    return postgres_url()


def _spindle(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spindle", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _slots(since: datetime, until: datetime) -> set[str]:
    cron = parse_cron(CRON)
    out, slot = set(), cron.next_after(since - timedelta(microseconds=1))
    while slot <= until:
        out.add(schedule_run_id("tick", slot))
        slot = cron.next_after(slot)
    return out


def _runs(tmp_path: Path, env: dict[str, str], url: str) -> list[dict[str, Any]]:
    proc = _spindle(tmp_path, env, "runs", "--store", url, "--json")
    assert proc.returncode == 0, proc.stderr
    runs: list[dict[str, Any]] = json.loads(proc.stdout)["runs"]
    return runs


def test_three_workers_fire_each_due_slot_exactly_once(url: str, tmp_path: Path) -> None:
    """Every slot due is one run, completed, its node run once; nothing twice."""
    (tmp_path / "tick.yaml").write_text(WF, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
    env["SPINDLE_RUNS_DIR"] = str(tmp_path / "runs")
    since = datetime.now(UTC) - timedelta(hours=1)
    log = tmp_path / "fired.txt"
    added = _spindle(
        tmp_path,
        env,
        *("schedule", "add", "tick.yaml", "--store", url, "--cron", CRON),
        *("--catch-up", "all", "--since", since.isoformat(), "--input", f"log={log}"),
    )
    assert added.returncode == 0, added.stderr
    before = datetime.now(UTC)
    must = _slots(since, before)
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    workers = []
    for path in logs:
        with path.open("w") as out:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "spindle", "worker", "--store", url, "--poll", "0.05"],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                )
            )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), [x.read_text() for x in logs]
            done = {r["run_id"] for r in _runs(tmp_path, env, url) if r["status"] == "completed"}
            if must <= done:
                break
            time.sleep(0.3)
    finally:
        for w in workers:
            w.send_signal(signal.SIGINT)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    after = datetime.now(UTC)
    runs = _runs(tmp_path, env, url)
    ids = [r["run_id"] for r in runs]
    assert len(ids) == len(set(ids))
    assert must <= set(ids) <= _slots(since, after), (sorted(ids), sorted(must))
    assert all(r["status"] == "completed" for r in runs if r["run_id"] in must), runs
    fired = Counter(log.read_text().split())
    assert set(fired) == {r["run_id"] for r in runs if r["status"] == "completed"}
    assert set(fired.values()) == {1}, fired
    listed = _spindle(tmp_path, env, "schedule", "list", "--store", url, "--json")
    [kept] = json.loads(listed.stdout)
    assert datetime.fromisoformat(kept["next_slot"]) > before
    assert schedule_run_id("tick", datetime.fromisoformat(kept["last_slot"])) == max(ids)
