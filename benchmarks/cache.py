"""What result caching costs and saves: runs of a one-node workflow, cached or not.

Run: ``python benchmarks/cache.py [--runs 300] [--repeat 3]``

For the memory and SQLite stores, runs/s of M runs of one Python node that

* is not cached (the engine's path without caching: one lookup of ``cache:``);
* is cached and misses every time (a new input each run: fingerprint, lookup,
  the node runs, its result is kept);
* is cached and hits every time (the same input: fingerprint, lookup, the
  reused result recorded with its ``cache`` record; the node never runs);
* is not cached and takes ``--work`` ms (what a hit saves when the node does work).

The rounds interleave the cases (after a warm-up round) and the median round is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from spindle import Engine, Settings, Workflow


def workflow(cache: Any, work: float = 0.0) -> Workflow:
    wf = Workflow(f"bench-{cache is not None}-{work}", inputs={"n": 0})

    @wf.node(cache=cache)
    def step(n: int) -> int:
        if work:
            time.sleep(work)
        return n + 1

    return wf


async def rate(url: str, runs_dir: str, wf: Workflow, runs: int, vary: bool) -> float:
    async with Engine(url, settings=Settings(runs_dir=runs_dir)) as engine:
        await engine.run(wf, {"n": -1})  # the definition (and a first entry) kept once
        started = time.perf_counter()
        for i in range(runs):
            await engine.run(wf, {"n": i if vary else -1})
        return runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=float, default=10.0, help="ms of work in the last case")
    args = parser.parse_args()
    cases = {
        "not cached": (None, False, 0.0),
        "cached, every run a miss": (True, True, 0.0),
        "cached, every run a hit": (True, False, 0.0),
        f"not cached, {args.work:g} ms of work": (None, False, args.work / 1000),
    }
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(-1, args.repeat):  # round -1 warms up (imports, first engines): not kept
        for store in ("memory", "sqlite"):
            for name, (cache, vary, work) in cases.items():
                with tempfile.TemporaryDirectory() as tmp:
                    url = "memory://" if store == "memory" else f"sqlite:///{tmp}/b.db"
                    runs = args.runs if not work else max(20, args.runs // 10)
                    got = asyncio.run(
                        rate(url, str(Path(tmp) / "runs"), workflow(cache, work), runs, vary)
                    )
                    if r >= 0:
                        results.setdefault((store, name), []).append(got)
        print(f"round {r + 1}/{args.repeat} done" if r >= 0 else "warm-up done")
    print(f"{'store':8} {'case':32} {'runs/s':>9}  vs not cached")
    for store in ("memory", "sqlite"):
        base = statistics.median(results[(store, "not cached")])
        for name in cases:
            value = statistics.median(results[(store, name)])
            print(f"{store:8} {name:32} {value:9,.0f}  {value / base:.2f}x")


if __name__ == "__main__":
    main()
