"""Map fan-out: durable map items per second and memory per item, against plain steps.

Run: ``python benchmarks/map_items.py [--items 10000] [--repeat 3] [--concurrency 100]``

Compares, in the same rounds (interleaved, median kept):

* **sequential durable steps**: one run of N chained no-op Python nodes (the
  ``durable_steps.py`` figure: a record and a commit per step);
* **map**: one run of a single map node over ``{range: N}`` whose template is the
  same no-op function on the inline executor (each item ``m[i]`` its own ledger
  record), with ``concurrency`` items in flight;
* the map run's **peak Python memory** (tracemalloc) and **store bytes** (the
  SQLite file's size after the run), each divided by N: what one item costs.

on the memory and SQLite stores. Target (issue 11): the map is not slower per
item than sequential durable steps (ratio >= 1.00x), and holds no coroutine or
task per waiting item (the memory per item stays flat as N grows: try
``--items 1000`` and ``--items 20000``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import chain, noop

from spindle import Settings, Workflow
from spindle.core.engine import Engine


def mapped(n: int, concurrency: int) -> Workflow:
    """A workflow of one map node running the no-op ``n`` times."""
    wf = Workflow(f"map{n}")
    wf.map(
        "m",
        over=n,
        node={"runtime": {"kind": "python", "function": noop}},
        concurrency=concurrency,
    )
    return wf


async def _timed(url: str, runs_dir: Path, wf: Workflow, warm: Workflow) -> float:
    async with Engine(url, settings=Settings(runs_dir=str(runs_dir))) as engine:
        await engine.run(warm)  # imports, schema, validation: not what is measured
        start = time.perf_counter()
        state = await engine.run(wf)
        took = time.perf_counter() - start
    if state.status.value != "completed":
        raise SystemExit(f"benchmark run ended {state.status.value}: {state.error}")
    return took


def measure(url: str, runs_dir: Path, wf: Workflow, warm: Workflow) -> float:
    """Seconds one run of ``wf`` takes (after a warm-up run of ``warm``)."""
    return asyncio.run(_timed(url, runs_dir, wf, warm))


def peak_bytes(url: str, runs_dir: Path, wf: Workflow, warm: Workflow) -> int:
    """Peak Python memory allocated while ``wf`` runs, above what was live before it."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        asyncio.run(_timed(url, runs_dir, wf, warm))
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    n = args.items
    steps_wf, map_wf = chain(n), mapped(n, args.concurrency)
    warm_steps, warm_map = chain(3), mapped(3, args.concurrency)
    stores = ("memory", "sqlite")
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for r in range(args.repeat):
            for store in stores:
                for case, wf, warm in (("steps", steps_wf, warm_steps), ("map", map_wf, warm_map)):
                    url = "memory://" if store == "memory" else f"sqlite:///{d / f'{case}{r}.db'}"
                    took = measure(url, d / "runs", wf, warm)
                    times.setdefault((store, case), []).append(took)
            print(f"round {r + 1}/{args.repeat} done", file=sys.stderr)
        db = d / "size.db"
        measure(f"sqlite:///{db}", d / "runs", map_wf, warm_map)
        db_bytes = db.stat().st_size + sum(
            p.stat().st_size for p in d.glob("size.db-*") if p.is_file()
        )
        mem = peak_bytes("memory://", d / "runs", map_wf, warm_map)
        mem_sqlite = peak_bytes(f"sqlite:///{d / 'mem.db'}", d / "runs", map_wf, warm_map)
    print(f"{n:,} no-op items, map concurrency {args.concurrency}, inline executor\n")
    head = f"{'store':<8}{'steps/s':>10}{'items/s':>10}{'us/step':>9}{'us/item':>9}"
    print(f"{head}{'ratio':>8}  target")
    for store in stores:
        steps = statistics.median(times[(store, "steps")]) / n
        items = statistics.median(times[(store, "map")]) / n
        ratio = steps / items
        verdict = "met" if ratio >= 1.0 else "not met"
        print(
            f"{store:<8}{1 / steps:>10,.0f}{1 / items:>10,.0f}{steps * 1e6:>9.1f}"
            f"{items * 1e6:>9.1f}{ratio:>7.2f}x  map >= 1.00x steps ({verdict})"
        )
    print(
        f"\npeak Python memory of the map run: {mem / n:,.0f} bytes/item on memory, "
        f"{mem_sqlite / n:,.0f} bytes/item on sqlite (total {mem / 2**20:.1f} / "
        f"{mem_sqlite / 2**20:.1f} MiB)"
    )
    print(f"sqlite store after the map run: {db_bytes / n:,.0f} bytes/item on disk")
    print(
        f"cpu count {os.cpu_count()}, python {sys.version.split()[0]}, median of {args.repeat}"
        " (ratio: sequential steps' time per step / the map's time per item)"
    )


if __name__ == "__main__":
    main()
