"""Durable step throughput: spindle on memory and SQLite vs a raw sqlite3 loop.

Run: ``python benchmarks/durable_steps.py [--steps 1000] [--runs 1000]``

Prints steps/s and per-step µs for

* the physical baseline: a raw ``sqlite3`` INSERT + COMMIT loop in this process,
  same file settings as spindle's default (WAL, synchronous=NORMAL);
* one run of N sequential no-op Python steps;
* M runs of 3 sequential no-op steps;

on the memory and SQLite stores, with the ratio of SQLite steps to the raw
loop (target: >= 25%) and memory steps/s (target: >= 20,000).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from spindle import Settings, Workflow
from spindle.core.engine import Engine


async def noop() -> None:
    """A no-op step. ``async def`` so the measurement is the engine, not a thread hop
    (sync functions run in a worker thread; see the last row)."""
    return


def sync_noop() -> None:
    return None


def chain(n: int, fn=noop) -> Workflow:
    wf = Workflow(f"chain{n}")
    prev = None
    for i in range(n):
        wf.node(fn, name=f"s{i}", after=[prev] if prev else [])
        prev = f"s{i}"
    return wf


def raw_sqlite(path: Path, n: int) -> float:
    """Seconds per INSERT+COMMIT of a ledger-sized row."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS t (run_id TEXT, seq INTEGER, body TEXT,"
        " PRIMARY KEY (run_id, seq))"
    )
    body = '{"kind":"node","status":"completed","result":null}' * 3
    start = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES (?, ?, ?)", ("run", i, body))
        con.execute("COMMIT")
    took = time.perf_counter() - start
    con.close()
    return took / n


async def spindle_steps(url: str, runs_dir: Path, steps: int, runs: int) -> float:
    """Seconds per durable step for ``runs`` runs of ``steps`` sequential no-op nodes."""
    wf = chain(steps)
    settings = Settings(runs_dir=str(runs_dir))
    async with Engine(url, settings=settings) as engine:
        # Warm-up with the same workflow: imports, schema, and the one-time validation
        # and hashing of the definition (loading cost, not step cost).
        await engine.run(wf)
        start = time.perf_counter()
        for _ in range(runs):
            state = await engine.run(wf)
            if state.status.value != "completed":
                raise SystemExit(f"benchmark run ended {state.status.value}: {state.error}")
        took = time.perf_counter() - start
    return took / (steps * runs)


def best_of(repeat: int, fn, *args) -> float:
    return min(fn(*args) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        raws = []
        rows = []
        for r in range(args.repeat):
            raws.append(raw_sqlite(d / f"raw{r}.db", args.steps))
        raw = statistics.median(raws)
        cases = [
            ("memory", f"1 run x {args.steps} steps", "memory://", args.steps, 1),
            ("memory", f"{args.runs} runs x 3 steps", "memory://", 3, args.runs),
            ("sqlite", f"1 run x {args.steps} steps", None, args.steps, 1),
            ("sqlite", f"{args.runs} runs x 3 steps", None, 3, args.runs),
        ]
        for i, (store, label, url, steps, runs) in enumerate(cases):
            times = []
            for r in range(args.repeat):
                u = url or f"sqlite:///{d / f'spindle{i}_{r}.db'}"
                times.append(asyncio.run(spindle_steps(u, d / "runs", steps, runs)))
            rows.append((store, label, statistics.median(times)))
    print(f"{'case':<34}{'steps/s':>12}{'us/step':>10}{'vs raw sqlite':>15}")
    print(f"{'raw sqlite3 INSERT+COMMIT (WAL)':<34}{1 / raw:>12,.0f}{raw * 1e6:>10.1f}{'100%':>15}")
    for store, label, per in rows:
        ratio = f"{raw / per:.0%}" if store == "sqlite" else "-"
        print(f"{store + ': ' + label:<34}{1 / per:>12,.0f}{per * 1e6:>10.1f}{ratio:>15}")
    print("\ntargets: sqlite >= 25% of raw (aim 50%), memory >= 20,000 steps/s")
    print(f"cpu count {os.cpu_count()}, python {os.sys.version.split()[0]}")


if __name__ == "__main__":
    main()
