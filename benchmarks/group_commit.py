"""Group commit: many runs in flight in one engine, against one fsync per commit.

Run: ``python benchmarks/group_commit.py [--runs 100] [--steps 20] [--rounds 3]``

Prints durable steps/s for

* the physical baseline: a raw ``sqlite3`` loop of one INSERT + COMMIT per
  transaction in WAL mode with ``synchronous=FULL`` (one fsync a commit), in
  this process, on the same disk;
* ``--runs`` concurrent runs (``asyncio.gather`` of ``Engine.run``) of
  ``--steps`` chained no-op ``async def`` nodes in one engine, on
  ``sqlite:///...?durability=full`` with group commit (the default there),
  and the same with ``group_commit=off`` (each commit its own transaction and
  fsync, in the event loop);
* the same workload at ``durability=normal``, with group commit off (the
  default there) and on, to show what it does without an fsync to share.

with the ratio of each to the raw loop (target: ``durability=full`` with group
commit >= 3x), and with group commit the CPU time the writer thread spends a
step (writing the batches and handing their outcomes back, and checkpointing
the log between batches): the event loop and the writer take turns, so a
step costs about the engine's step plus that. ``checkpoints`` counts the
writer's own checkpoints of the write-ahead log in the measured runs (made
between batches while the runs compute, instead of inside a COMMIT).
Then one run at a time (``--steps`` x 10 chained nodes, ``durability=full``,
three runs once the store has committed ~1,600 times), with group commit (the
default) and without: a lone run's commits have no other commit to share a
transaction with, and are written in its own thread (``written alone``), so
group commit should cost it next to nothing.

The cases run interleaved, for several rounds, and the median round of each
is kept: a noisy neighbour skews a round, not the result.
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


async def concurrent_runs(
    url: str, runs_dir: Path, runs: int, steps: int
) -> tuple[float, float, float, int]:
    """Seconds per durable step for ``runs`` concurrent runs of ``steps`` chained nodes,
    the mean number of commits per transaction (1.0 without group commit), the
    writer thread's CPU seconds per step (0.0 without group commit) and the writer's
    checkpoints (0 without it)."""
    wf = chain(steps)
    async with Engine(url, settings=Settings(runs_dir=str(runs_dir))) as engine:
        # Warm-up: imports, schema, the one-time validation and hashing of the definition.
        await engine.run(wf)
        writer = getattr(engine.store, "_group", None)
        batches0, jobs0 = (writer.batches, writer.jobs) if writer is not None else (0, 0)
        cpu0 = writer.cpu if writer is not None else 0.0
        checkpoints0 = writer.log.made if writer is not None else 0
        start = time.perf_counter()
        states = await asyncio.gather(*(engine.run(wf) for _ in range(runs)))
        took = time.perf_counter() - start
        for state in states:
            if state.status.value != "completed":
                raise SystemExit(f"benchmark run ended {state.status.value}: {state.error}")
        per_batch, writer_cpu, checkpoints = 1.0, 0.0, 0
        if writer is not None and writer.batches > batches0:
            per_batch = (writer.jobs - jobs0) / (writer.batches - batches0)
            writer_cpu = writer.cpu - cpu0
            checkpoints = writer.log.made - checkpoints0
    return took / (runs * steps), per_batch, writer_cpu / (runs * steps), checkpoints


async def lone_run(url: str, runs_dir: Path, steps: int) -> tuple[float, int]:
    """Seconds per durable step of one run of ``steps`` chained nodes, alone in its engine
    (the median of three), and how many of their writes were made in their own thread
    (0 without group commit).

    Measured once the store has committed about 1,600 times: until then the log file
    grows with each commit (each fsync then flushes its new size too), and how long that
    lasts depends on when the first checkpoint comes, not on group commit.
    """
    wf = chain(steps)
    async with Engine(url, settings=Settings(runs_dir=str(runs_dir))) as engine:
        for _ in range(max(1, 1600 // steps)):
            await engine.run(wf)
        writer = getattr(engine.store, "_group", None)
        alone0 = writer.alone if writer is not None else 0
        took: list[float] = []
        for _ in range(3):
            start = time.perf_counter()
            state = await engine.run(wf)
            took.append(time.perf_counter() - start)
            if state.status.value != "completed":
                raise SystemExit(f"benchmark run ended {state.status.value}: {state.error}")
        alone = writer.alone - alone0 if writer is not None else 0
    return statistics.median(took) / steps, alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw", type=int, default=1000, help="commits of the raw loop a round")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    args = parser.parse_args()
    cases = [
        ("durability=full, group commit (default)", "durability=full"),
        ("durability=full, group_commit=off", "durability=full&group_commit=off"),
        ("durability=normal (default, group off)", "durability=normal"),
        ("durability=normal, group_commit=on", "durability=normal&group_commit=on"),
    ]
    raws: list[float] = []
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    batches: dict[str, list[float]] = {label: [] for label, _ in cases}
    writer_cpus: dict[str, list[float]] = {label: [] for label, _ in cases}
    checkpoints: dict[str, list[int]] = {label: [] for label, _ in cases}
    lone_cases = [
        ("group commit (default)", "durability=full"),
        ("group_commit=off", "durability=full&group_commit=off"),
    ]
    lone_times: dict[str, list[float]] = {label: [] for label, _ in lone_cases}
    lone_alone: dict[str, list[int]] = {label: [] for label, _ in lone_cases}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        for r in range(args.rounds):
            raws.append(raw_sqlite(d / f"raw{r}.db", args.raw, synchronous="FULL"))
            for i, (label, query) in enumerate(cases):
                url = f"sqlite:///{d / f'spindle{i}_{r}.db'}?{query}"
                per_step, per_batch, writer_cpu, made = asyncio.run(
                    concurrent_runs(url, d / "runs", args.runs, args.steps)
                )
                times[label].append(per_step)
                batches[label].append(per_batch)
                writer_cpus[label].append(writer_cpu)
                checkpoints[label].append(made)
            for i, (label, query) in enumerate(lone_cases):
                url = f"sqlite:///{d / f'lone{i}_{r}.db'}?{query}"
                per_step, alone = asyncio.run(lone_run(url, d / "runs", args.steps * 10))
                lone_times[label].append(per_step)
                lone_alone[label].append(alone)
    raw = statistics.median(raws)
    print(
        f"{args.runs} concurrent runs x {args.steps} chained no-op nodes, one engine; "
        f"median of {args.rounds} interleaved rounds"
    )
    header = f"{'case':<44}{'steps/s':>10}{'us/step':>9}{'vs raw':>8}{'commits/txn':>13}"
    print(f"{header}{'writer cpu us/step':>20}{'checkpoints':>13}")
    print(f"{'raw sqlite3 INSERT+COMMIT, synchronous=FULL':<44}{1 / raw:>10,.0f}")
    for label, _ in cases:
        per = statistics.median(times[label])
        per_batch = statistics.median(batches[label])
        cpu = statistics.median(writer_cpus[label]) * 1e6
        made = statistics.median(checkpoints[label])
        shown = f"{cpu:>20.1f}{made:>13g}" if cpu else f"{'':>20}"
        print(
            f"{label:<44}{1 / per:>10,.0f}{per * 1e6:>9.1f}{raw / per:>7.1f}x{per_batch:>13.1f}"
            f"{shown}"
        )
    print(f"\none run at a time ({args.steps * 10} chained no-op nodes), durability=full")
    print(f"{'case':<44}{'us/step':>9}{'vs off':>8}{'written alone':>15}")
    off = statistics.median(lone_times["group_commit=off"])
    for label, _ in lone_cases:
        per = statistics.median(lone_times[label])
        alone = statistics.median(lone_alone[label])
        print(f"{label:<44}{per * 1e6:>9.1f}{per / off:>7.2f}x{alone:>15g}")
    print("\ntarget: durability=full with group commit >= 3x the raw fsync-per-commit loop")
    print(f"cpu count {os.cpu_count()}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
