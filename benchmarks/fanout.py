"""A wide fan-out: N independent inline no-op nodes and one join after them all.

Run: ``python benchmarks/fanout.py [--nodes 10000] [--store memory|sqlite] [--repeat 3]``

Prints, for one run of the fan-out on an engine already open (imports, the
store's schema and the first run's setup are not counted):

* the time to build the workflow in Python and to validate it (``validate``
  checks every node and the graph once; a definition is then remembered);
* the time of ``engine.run`` (the definition kept and hashed, every node run
  with ``concurrency`` at a time, every outcome committed, the join run last);
* peak memory per node during the run, from ``tracemalloc`` (what Python
  allocates: the nodes' contexts, records, tasks and the store's copies), in a
  separate round so tracing does not slow the timed one;
* as a same-run baseline, the per-step time of one run of 1,000 chained nodes
  on the same store (the fan-out should cost no more per node than a chain).

Target (issue 10): 10,000 nodes plus a join in <= 1.5 s, <= 4 KB peak per node.
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


def fan(n: int) -> Workflow:
    wf = Workflow(f"fan{n}")
    for i in range(n):
        wf.node(noop, name=f"n{i}")
    wf.node(noop, name="join", after=[f"n{i}" for i in range(n)])
    return wf


async def one_round(url: str, runs_dir: Path, n: int, *, trace: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    t = time.perf_counter()
    wf = fan(n)
    out["build"] = time.perf_counter() - t
    t = time.perf_counter()
    wf.validate()
    out["validate"] = time.perf_counter() - t
    base = chain(1000)
    async with Engine(url, settings=Settings(runs_dir=str(runs_dir))) as engine:
        await engine.run(fan(3))  # warm-up: imports, schema
        await engine.run(base)
        t = time.perf_counter()
        await engine.run(base)
        out["chain_step"] = (time.perf_counter() - t) / 1000
        if trace:
            tracemalloc.start()
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
        t = time.perf_counter()
        state = await engine.run(wf)
        out["run"] = time.perf_counter() - t
        if trace:
            out["peak"] = tracemalloc.get_traced_memory()[1] - before
            tracemalloc.stop()
        if state.status.value != "completed":
            raise SystemExit(f"the fan-out ended {state.status.value}: {state.error}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.nodes
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for r in range(args.repeat + 1):
            url = "memory://" if args.store == "memory" else f"sqlite:///{d / f's{r}.db'}"
            trace = r == args.repeat  # the last round measures memory
            rounds.append(asyncio.run(one_round(url, d / "runs", n, trace=trace)))
            print(f"round {r + 1}/{args.repeat + 1} done", file=sys.stderr)
    timed = rounds[:-1]

    def med(key: str) -> float:
        return statistics.median(x[key] for x in timed)

    run, step = med("run"), med("chain_step")
    per_node = run / (n + 1)
    peak = rounds[-1]["peak"] / (n + 1)
    print(f"fan-out of {n:,} inline no-op nodes plus a join, {args.store} store")
    print(f"{'build the Workflow':<34}{med('build'):>9.3f} s")
    print(f"{'validate':<34}{med('validate'):>9.3f} s")
    print(f"{'engine.run':<34}{run:>9.3f} s   target <= 1.5 s (10,000 nodes)")
    print(f"{'per node':<34}{per_node * 1e6:>9.1f} us")
    print(f"{'chain of 1,000, per step':<34}{step * 1e6:>9.1f} us   (baseline, same run)")
    print(f"{'fan-out per node / chain per step':<34}{per_node / step:>9.2f}x")
    print(f"{'peak memory per node':<34}{peak:>9,.0f} B   target <= 4,096 B")
    print(f"\ncpu count {os.cpu_count()}, python {sys.version.split()[0]}, median of {args.repeat}")


if __name__ == "__main__":
    main()
