"""``spindle worker`` processes as an operator runs them: SIGTERM, kill -9, SIGSTOP,
queue limits across workers, and ``spindle workers``.

Each test starts real worker processes on a shared store (a SQLite file, or the
PostgreSQL server ``.ci/run`` starts) and checks what the ledgers recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SLEEPY = """
name: sleepy
inputs:
  seconds: 0.3
nodes:
  nap:
    runtime: {kind: command, command: "sleep {inputs.seconds}"}
  done:
    after: [nap]
    runtime: {kind: python_code, code: "result = 'ok'"}
output: done
"""

# Sleeps long on its first attempt only (a marker file tells), so a run handed back
# by a stopping worker completes quickly when another worker drives it again.
SLOW_ONCE = """
name: slow_once
inputs:
  marker: ""
nodes:
  nap:
    runtime:
      kind: python_code
      code: |
        import pathlib, time
        marker = pathlib.Path(inputs["marker"])
        if not marker.exists():
            marker.write_text("first")
            time.sleep(60)
        result = "second"
output: nap
"""


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    from tests.pg import postgres_url

    return postgres_url()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
    env["SPINDLE_RUNS_DIR"] = str(tmp_path / "runs")
    env.update(extra)
    return env


def spindle(tmp_path: Path, url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spindle", *args, "--store", url],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Workers:
    """Worker processes started for one test; whatever is left is killed at the end."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"worker{len(self.procs)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spindle", "worker", "--store", self.url, *args],
                cwd=self.tmp_path,
                env=_env(self.tmp_path, **env),
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        self.procs.append((proc, log))
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return next(log for p, log in self.procs if p is proc).read_text()

    def wait_for(self, proc: subprocess.Popen[bytes], text: str, count: int = 1) -> None:
        deadline = time.monotonic() + 60
        while self.log(proc).count(text) < count:
            assert proc.poll() is None or self.log(proc).count(text) >= count, self.log(proc)
            assert time.monotonic() < deadline, f"no {text!r} x{count} in: {self.log(proc)}"
            time.sleep(0.05)

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def workers(tmp_path: Path, url: str) -> Iterator[Workers]:
    pool = Workers(tmp_path, url)
    yield pool
    pool.close()


def start_runs(tmp_path: Path, url: str, text: str, count: int, *args: str) -> list[str]:
    path = tmp_path / "wf.yaml"
    path.write_text(text, "utf-8")
    return [
        as_json(spindle(tmp_path, url, "run", str(path), "--detach", "--json", *args))["run_id"]
        for _ in range(count)
    ]


def wait_until_done(tmp_path: Path, url: str, run_ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        runs = as_json(spindle(tmp_path, url, "runs", "--json"))
        runs = runs["runs"] if isinstance(runs, dict) else runs
        status = {r["run_id"]: r["status"] for r in runs}
        if all(status.get(r) == "completed" for r in run_ids):
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def ledger(tmp_path: Path, url: str, run_id: str) -> list[dict[str, Any]]:
    return list(as_json(spindle(tmp_path, url, "ledger", run_id, "--json"))["records"])


def test_sigterm_lets_the_run_in_flight_finish_and_exits_0(
    tmp_path: Path, url: str, workers: Workers
) -> None:
    (run_id,) = start_runs(tmp_path, url, SLEEPY, 1, "--input", "seconds=1.5")
    proc = workers.start("--poll", "0.1")
    workers.wait_for(proc, f"run {run_id} claimed")
    listed = as_json(spindle(tmp_path, url, "workers", "--json"))["workers"]
    assert [w["holds"] for w in listed] == [[run_id]] and listed[0]["live"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, workers.log(proc)
    log = workers.log(proc)
    assert "stopping: no new runs are claimed" in log and f"run {run_id} completed" in log
    assert as_json(spindle(tmp_path, url, "show", run_id, "--json"))["status"] == "completed"
    # A worker that stopped cleanly is gone from the roster.
    assert as_json(spindle(tmp_path, url, "workers", "--all", "--json"))["workers"] == []
    worker_ids = {r.get("worker") for r in ledger(tmp_path, url, run_id)}
    assert len(worker_ids) == 1 and None not in worker_ids


def test_sigterm_past_the_grace_hands_the_run_back_to_another_worker(
    tmp_path: Path, url: str, workers: Workers
) -> None:
    marker = tmp_path / "marker"
    (run_id,) = start_runs(tmp_path, url, SLOW_ONCE, 1, "--input", f"marker={marker}")
    proc = workers.start("--poll", "0.1", "--grace", "0.5")
    workers.wait_for(proc, f"run {run_id} claimed")
    while not marker.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, workers.log(proc)
    assert f"run {run_id} handed back" in workers.log(proc)
    # Due at once (not after the 30 s lease): a worker run once picks it up and ends it.
    done = spindle(tmp_path, url, "worker", "--once", "--poll", "0.1")
    assert done.returncode == 0, done.stderr
    shown = as_json(spindle(tmp_path, url, "show", run_id, "--json"))
    assert (shown["status"], shown["output"]) == ("completed", "second")


def test_kill_9_a_worker_and_another_on_the_host_takes_its_runs_at_once(
    tmp_path: Path, url: str, workers: Workers
) -> None:
    # Leases of 10 minutes: only the same-host takeover (the holder's pid is gone) can
    # let the second worker finish within the test's time.
    ttl = {"SPINDLE_LEASE_TTL": "600"}
    markers = [tmp_path / f"marker{i}" for i in range(3)]
    run_ids = [
        start_runs(tmp_path, url, SLOW_ONCE, 1, "--input", f"marker={m}")[0] for m in markers
    ]
    first = workers.start("--poll", "0.1", "--concurrency", "3", **ttl)
    while not all(m.exists() for m in markers):  # all three are mid-nap
        assert first.poll() is None, workers.log(first)
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    listed = as_json(spindle(tmp_path, url, "workers", "--all", "--json", **ttl))["workers"]
    assert [(sorted(w["holds"]), w["live"]) for w in listed] == [(sorted(run_ids), False)]
    second = workers.start("--poll", "0.1", "--concurrency", "3", **ttl)
    wait_until_done(tmp_path, url, run_ids, timeout=120)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0
    for run_id in run_ids:
        shown = as_json(spindle(tmp_path, url, "show", run_id, "--json"))
        assert shown["output"] == "second"  # the nap ran again, under the second worker
    ids = {r.get("worker") for run_id in run_ids for r in ledger(tmp_path, url, run_id)}
    assert len(ids) == 1 and None not in ids  # the first recorded nothing: killed mid-nap


def test_a_worker_paused_past_its_lease_cannot_write_when_it_resumes(
    tmp_path: Path, url: str, workers: Workers
) -> None:
    ttl = {"SPINDLE_LEASE_TTL": "1.5"}
    (run_id,) = start_runs(tmp_path, url, SLEEPY, 1, "--input", "seconds=2")
    paused = workers.start("--poll", "0.1", "--concurrency", "1", **ttl)
    workers.wait_for(paused, f"run {run_id} claimed")
    paused.send_signal(signal.SIGSTOP)
    try:
        other = workers.start("--poll", "0.1", **ttl)
        wait_until_done(tmp_path, url, [run_id])
    finally:
        paused.send_signal(signal.SIGCONT)
    workers.wait_for(paused, f"run {run_id} was taken over by another worker")
    records = ledger(tmp_path, url, run_id)
    nodes = [r for r in records if r["kind"] == "node" and r["status"] == "completed"]
    assert sorted(r["node_id"] for r in nodes) == ["done", "nap"]
    assert len({r["worker"] for r in nodes}) == 1
    verify = spindle(tmp_path, url, "ledger", "verify", run_id)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for proc in (paused, other):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_a_queue_limit_holds_across_four_workers(
    tmp_path: Path, url: str, workers: Workers
) -> None:
    """Never more than the limit running at once, measured from the ledgers' times."""
    limit = spindle(
        tmp_path, url, "queue", "set", "tight", "--concurrency", "2", "--per-worker", "1"
    )
    assert limit.returncode == 0, limit.stderr
    run_ids = start_runs(tmp_path, url, SLEEPY, 12, "--queue", "tight")
    procs = [workers.start("--poll", "0.05", "--concurrency", "3") for _ in range(4)]
    wait_until_done(tmp_path, url, run_ids, timeout=120)
    spans = []
    for run_id in run_ids:
        records = ledger(tmp_path, url, run_id)
        start = min(datetime.fromisoformat(r["started_at"]) for r in records if r["started_at"])
        end = max(datetime.fromisoformat(r["finished_at"]) for r in records if r["finished_at"])
        spans.append((start, end))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2, spans  # the limit, reached but never passed
    drivers = {r.get("worker") for run_id in run_ids for r in ledger(tmp_path, url, run_id)}
    assert len(drivers) >= 2  # one run per worker at a time: shared out between them
    listed = as_json(spindle(tmp_path, url, "queue", "list", "--json"))["queues"]
    assert [(q["name"], q["concurrency"], q["waiting"]) for q in listed] == [("tight", 2, 0)]
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=60) == 0


def test_postgres_restarting_mid_run_workers_reconnect_and_every_run_completes(
    tmp_path: Path,
) -> None:
    """The database server restarts under two busy workers: they reconnect (retrying
    what failed meanwhile), and every run completes with each node recorded once."""
    from tests.pg import postgres_url, require_server

    require_server()
    root = Path(__file__).resolve().parents[2]
    cluster = Path(os.environ.get("SPINDLE_PG_DIR", "/tmp/spindle-ci-pg"))
    if not (cluster / "bin").exists():
        reason = f"no throwaway cluster of .ci/postgres.sh in {cluster} to restart"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    url = postgres_url(retry_for="60")
    run_ids = start_runs(tmp_path, url, SLEEPY, 16, "--input", "seconds=0.2")
    pool = Workers(tmp_path, url)
    try:
        procs = [pool.start("--poll", "0.05", "--concurrency", "2") for _ in range(2)]
        for proc in procs:
            pool.wait_for(proc, " claimed")
        restart = subprocess.run(
            ["bash", str(root / ".ci" / "postgres.sh"), "restart"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restart.returncode == 0, restart.stderr
        wait_until_done(tmp_path, url, run_ids, timeout=180)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=60) == 0, pool.log(proc)
    finally:
        pool.close()

    async def check() -> None:
        from spindle.core.engine import Engine

        async with Engine(url) as engine:
            for run_id in run_ids:
                assert (await engine.get_run(run_id)).status.value == "completed"
                done = [
                    r.node_id
                    for r in await engine.ledger(run_id)
                    if r.kind.value == "node" and r.status.value == "completed"
                ]
                assert sorted(done) == ["done", "nap"], run_id  # each node once
                assert (await engine.verify_ledger(run_id)).ok, run_id

    asyncio.run(check())
