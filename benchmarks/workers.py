"""Worker scaling: runs/s and durable steps/s with 1, 2 and 4 ``spindle worker`` processes.

Run: ``python benchmarks/workers.py [--runs 200] [--sleep 0.01] [--store sqlite|postgres|both]``

For each store and worker count, ``--runs`` runs of a 5-node workflow are
recorded (``engine.start``, as ``spindle run --detach`` does) and that many
``spindle worker --concurrency 1`` processes drive them; the time is from the
first run recorded to the last one completed, once every worker has started
(it is in the store's roster, ``spindle workers``). Each node sleeps ``--sleep``
seconds (I/O-bound work: what more workers are for) and is one durable step.
One run in flight per worker, so the ratio against one worker measures what
the processes and the store give, not the threads inside one worker.

PostgreSQL needs a server: ``SPINDLE_TEST_POSTGRES_URL`` (``eval "$(.ci/postgres.sh
start)"`` starts a throwaway one). Target (issue 12): on PostgreSQL, 4 workers
>= 3x one worker with nodes that sleep 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from spindle import Settings
from spindle.core.engine import Engine
from spindle.core.workflow import load_workflow_text

NODES = 5


def workflow_text(sleep: float) -> str:
    """A 5-node chain whose nodes each sleep ``sleep`` seconds."""
    code = f"import time; time.sleep({sleep}); result = 1"
    lines = ["name: sleepy", "nodes:"]
    for i in range(NODES):
        after = f", after: [n{i - 1}]" if i else ""
        lines.append(f'  n{i}: {{runtime: {{kind: python_code, code: "{code}"}}{after}}}')
    return "\n".join(lines) + "\n"


def postgres_schema_url(base: str) -> str:
    """A URL of a fresh schema on ``base`` (so rounds do not see each other's runs)."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


async def timed_round(url: str, runs_dir: Path, text: str, runs: int, workers: int) -> float:
    """Once ``workers`` workers are in the store's roster (started, imports done),
    record ``runs`` runs and wait until all completed: the seconds that took."""
    async with Engine(url, settings=Settings(runs_dir=str(runs_dir))) as engine:
        deadline = time.monotonic() + 120
        while len(await engine.store.list_workers()) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{workers} workers did not announce themselves ({url})")
            await asyncio.sleep(0.05)
        wf = load_workflow_text(text)
        start = time.perf_counter()
        ids = [await engine.start(wf) for _ in range(runs)]
        deadline = time.monotonic() + 600
        # Runs are claimed oldest first, so the last one recorded ends among the last:
        # watch it alone (one cheap read a look, not every run's state on a busy
        # machine), then the rest.
        for run_id in [ids[-1], *ids]:
            while not (await engine.get_run(run_id)).status.terminal:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the runs did not finish ({url})")
                await asyncio.sleep(0.02)
        return time.perf_counter() - start


def measure(url: str, workdir: Path, text: str, runs: int, workers: int) -> float:
    """Seconds for ``workers`` worker processes to drive ``runs`` recorded runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
    command = [sys.executable, "-m", "spindle", "worker", "--store", url]
    procs = [
        subprocess.Popen(
            [*command, "--concurrency", "1", "--poll", "0.05"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        took = asyncio.run(timed_round(url, workdir / "runs", text, runs, workers))
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"a worker exited ({url})")
        return took
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.01)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    text = workflow_text(args.sleep)
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    pg = os.environ.get("SPINDLE_TEST_POSTGRES_URL", "")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for store in stores:
            if store == "postgres" and not pg:
                print("postgres: skipped (set SPINDLE_TEST_POSTGRES_URL)", file=sys.stderr)
                continue
            base = None
            for n in counts:
                workdir = Path(tmp) / f"{store}{n}"
                workdir.mkdir()
                url = (
                    f"sqlite:///{workdir / 'bench.db'}"
                    if store == "sqlite"
                    else postgres_schema_url(pg)
                )
                took = measure(url, workdir, text, args.runs, n)
                base = base or took
                rows.append((store, n, took, base / took))
                print(f"{store}: {n} worker(s) done", file=sys.stderr)
    print(f"{args.runs} runs x {NODES} nodes, each sleeping {args.sleep * 1000:g} ms\n")
    print(f"{'store':<10}{'workers':>8}{'seconds':>9}{'runs/s':>9}{'steps/s':>9}{'scaling':>9}")
    for store, n, took, ratio in rows:
        steps = args.runs * NODES / took
        print(f"{store:<10}{n:>8}{took:>9.2f}{args.runs / took:>9.1f}{steps:>9.0f}{ratio:>8.2f}x")
    print(
        f"\ncpu count {os.cpu_count()}; target: postgres 4 workers >= 3.00x one worker"
        " (scaling: one worker's time / this row's)"
    )


if __name__ == "__main__":
    main()
