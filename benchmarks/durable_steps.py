"""Durable step throughput: spindle on memory and SQLite vs a raw sqlite3 loop.

Run: ``python benchmarks/durable_steps.py [--steps 1000] [--runs 1000] [--repeat 5]``

Prints steps/s, runs/s and per-step µs for

* the physical baseline: a raw ``sqlite3`` INSERT + COMMIT loop in this process,
  same file settings as spindle's default (WAL, synchronous=NORMAL);
* one run of N chained no-op Python steps;
* M runs of 3 chained no-op steps (each run started with ``engine.run``: its
  creation shares the first step's commit and its end the last step's, so a
  run costs 3 commits), one after the other;
* the same M runs with 100 in flight at once in one engine (``asyncio.gather``
  under a semaphore): the throughput a server or a worker sees, where commits
  that arrive together may share a transaction (group commit);

on the memory and SQLite stores, with the ratio of each to the raw loop
measured in the same rounds (the rounds interleave the cases, and the median
round is kept, so a change in machine load does not favour one).

Targets (issue 10): one 1,000-step run on SQLite >= 0.4x the raw loop; the
memory store >= 60,000 steps/s (1.05x the raw loop on the machine that figure
was measured on: the ratio is the portable form); 1,000 runs of 3 steps on
SQLite >= 5,000 runs/s (0.5x the raw loop's rate divided by 3 commits there);
the table says which of the two ways to run them (sequential, 100 in flight)
meets it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import chain, raw_sqlite

from spindle import Settings
from spindle.core.engine import Engine


async def spindle_steps(
    url: str, runs_dir: Path, steps: int, runs: int, in_flight: int = 1
) -> tuple[float, float]:
    """Seconds per durable step for ``runs`` runs of ``steps`` sequential no-op nodes,
    started one after the other (``in_flight`` 1) or that many at a time, and the CPU
    seconds this process spent per step (every thread: the SQLite store's writer too)."""
    wf = chain(steps)
    settings = Settings(runs_dir=str(runs_dir))
    async with Engine(url, settings=settings) as engine:
        # Warm-up with the same workflow: imports, schema, and the one-time validation
        # and hashing of the definition (loading cost, not step cost).
        await engine.run(wf)
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with gate:
                state = await engine.run(wf)
            if state.status.value != "completed":
                raise SystemExit(f"benchmark run ended {state.status.value}: {state.error}")

        start, cpu = time.perf_counter(), time.process_time()
        if in_flight == 1:
            for _ in range(runs):
                await one()
        else:
            await asyncio.gather(*(one() for _ in range(runs)))
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
    return took / (steps * runs), cpu / (steps * runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=100)
    args = parser.parse_args()
    many = f"{args.runs} runs x 3 steps"
    flying = f"{many}, {args.in_flight} in flight"
    cases = [
        ("memory", f"1 run x {args.steps} steps", "memory://", args.steps, 1, 1),
        ("memory", many, "memory://", 3, args.runs, 1),
        ("memory", flying, "memory://", 3, args.runs, args.in_flight),
        ("sqlite", f"1 run x {args.steps} steps", None, args.steps, 1, 1),
        ("sqlite", many, None, 3, args.runs, 1),
        ("sqlite", flying, None, 3, args.runs, args.in_flight),
    ]
    raws: list[float] = []
    times: list[list[float]] = [[] for _ in cases]
    cpus: list[list[float]] = [[] for _ in cases]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for r in range(args.repeat):
            # One round measures the baseline and every case in turn.
            raws.append(raw_sqlite(d / f"raw{r}.db", args.steps))
            for i, (_store, _label, url, steps, runs, in_flight) in enumerate(cases):
                u = url or f"sqlite:///{d / f'spindle{i}_{r}.db'}"
                took, cpu = asyncio.run(spindle_steps(u, d / "runs", steps, runs, in_flight))
                times[i].append(took)
                cpus[i].append(cpu)
            print(f"round {r + 1}/{args.repeat} done", file=sys.stderr)
    raw = statistics.median(raws)
    width = max(len(f"{store}: {label}") for store, label, *_ in cases) + 2
    print(
        f"{'case':<{width}}{'steps/s':>10}{'runs/s':>9}{'us/step':>9}{'cpu us':>8}{'vs raw':>8}"
        "  target"
    )
    label = "raw sqlite3 INSERT+COMMIT (WAL)"
    print(f"{label:<{width}}{1 / raw:>10,.0f}{'':>9}{raw * 1e6:>9.1f}{'':>8}{'1.00x':>8}")
    targets = {
        ("memory", 1): ">= 60,000 steps/s (~1.05x raw)",
        ("sqlite", 1): ">= 0.40x raw",
        ("sqlite", 3): ">= 5,000 runs/s",
    }
    for (store, label, _url, steps, _runs, _fly), samples, spent in zip(
        cases, times, cpus, strict=True
    ):
        per, cpu = statistics.median(samples), statistics.median(spent)
        runs_s = f"{1 / (per * steps):,.0f}" if steps == 3 else ""
        target = targets.get((store, 1 if steps != 3 else 3), "")
        if target and steps == 3:
            target += " (met)" if 1 / (per * steps) >= 5000 else " (not met)"
        print(
            f"{store + ': ' + label:<{width}}{1 / per:>10,.0f}{runs_s:>9}{per * 1e6:>9.1f}"
            f"{cpu * 1e6:>8.1f}{raw / per:>7.2f}x  {target}".rstrip()
        )
    print(
        f"\ncpu count {os.cpu_count()}, python {sys.version.split()[0]}, median of {args.repeat}"
        " (cpu us: CPU time of this process per step, every thread)"
    )


if __name__ == "__main__":
    main()
