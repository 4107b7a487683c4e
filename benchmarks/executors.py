"""Executor overhead: the built-in runtimes + executors vs the plain Python equivalent.

Run: ``python benchmarks/executors.py [--calls 1000] [--commands 100] [--repeat 5]``

Prints one row per comparison with µs per item for spindle and for the
baseline, and their ratio (best of ``--repeat`` rounds each, the two run in
turn so a change in machine load does not favour one):

* ``inline async``  — N trivial ``async def`` calls through ``python`` runtime +
  ``inline`` executor, gathered, vs ``asyncio.gather`` of the plain coroutines;
* ``inline sync``   — N trivial sync calls (which inline runs in a worker thread
  so the loop never blocks) vs ``asyncio.gather`` of ``asyncio.to_thread``;
* ``process_pool``  — N trivial calls on a warm pool vs
  ``concurrent.futures.ProcessPoolExecutor.map`` on a warm pool, same start method;
* ``subprocess sh`` — M shell ``true`` commands through ``command`` runtime +
  ``subprocess`` executor, one after another, vs a plain ``subprocess.run`` loop
  (target: ratio <= 2.0);
* ``subprocess py`` — a few Python calls in a fresh interpreter vs
  ``subprocess.run([python, "-c", ...])``.

Only the runtime + executor are measured: each task context is built before
the clock starts. The engine's own per-node cost is measured by
``durable_steps.py``; :func:`rows` is the one place to add engine-level rows.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import posixpath
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spindle import Engine, Settings, Workflow
from spindle.core.plugin import TaskContext
from spindle.core.workflow import NodeSpec
from spindle.plugins.executors.inline import InlineExecutor
from spindle.plugins.executors.process_pool import ProcessPoolExecutor, _default_start_method
from spindle.plugins.executors.subprocess import SubprocessExecutor
from spindle.plugins.runtimes.command import CommandRuntime
from spindle.plugins.runtimes.python import PythonRuntime

# A trivial function importable by reference from any process (the pool and
# fresh interpreters import it by name; this script's own functions live in
# __main__, which they cannot).
TRIVIAL = posixpath.isabs


async def trivial_async(s: str) -> bool:
    return s.startswith("/")


def make_tasks(runtime: Any, executor: Any, n: int, run_dir: Path, **inputs: Any) -> list:
    node = NodeSpec(id="bench", runtime=runtime, executor=executor)
    return [
        TaskContext(
            run_id="bench",
            node_id=f"n{i}",
            node=node,
            inputs=dict(inputs),
            outputs={},
            run_dir=run_dir,
            runtime=runtime,
            executor=executor,
        )
        for i in range(n)
    ]


async def through_spindle(task: TaskContext) -> Any:
    payload = await task.runtime.setup_runtime(task)
    return (await task.executor.execute(payload, task)).value


def duel(repeat: int, *contenders: Callable[[], Any]) -> list[float]:
    """Best wall time of each contender over ``repeat`` rounds, run in turn.

    Alternating the contenders round by round keeps a change in machine load
    from favouring whichever ran first.
    """
    times = [[] for _ in contenders]
    for _ in range(repeat):
        for spent, fn in zip(times, contenders, strict=True):
            spent.append(timed(fn))
    return [min(t) for t in times]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- comparisons: each returns (name, n, spindle seconds, baseline seconds, target) ----------


def inline_async(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    tasks = make_tasks(PythonRuntime(function=trivial_async), InlineExecutor(), n, run_dir, s="x")

    async def ours() -> None:
        await asyncio.gather(*(through_spindle(t) for t in tasks))

    async def plain() -> None:
        await asyncio.gather(*(trivial_async("x") for _ in range(n)))

    ours_s, plain_s = duel(repeat, lambda: asyncio.run(ours()), lambda: asyncio.run(plain()))
    return [("inline async", n, ours_s, plain_s, None)]


def inline_sync(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    tasks = make_tasks(PythonRuntime(function=TRIVIAL), InlineExecutor(), n, run_dir, s="x")

    async def ours() -> None:
        await asyncio.gather(*(through_spindle(t) for t in tasks))

    async def plain() -> None:
        await asyncio.gather(*(asyncio.to_thread(TRIVIAL, "x") for _ in range(n)))

    ours_s, plain_s = duel(repeat, lambda: asyncio.run(ours()), lambda: asyncio.run(plain()))
    return [("inline sync (thread)", n, ours_s, plain_s, None)]


def process_pool(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    method = _default_start_method()
    ex = ProcessPoolExecutor(start_method=method)
    tasks = make_tasks(PythonRuntime(function=TRIVIAL), ex, n, run_dir, s="x")

    async def ours() -> float:
        await asyncio.gather(*(through_spindle(t) for t in tasks[:50]))  # warm the workers
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await asyncio.gather(*(through_spindle(t) for t in tasks))
            times.append(time.perf_counter() - t0)
        await ex.aclose()
        return min(times)

    ours_s = asyncio.run(ours())
    ctx = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(mp_context=ctx) as pool:
        list(pool.map(TRIVIAL, ["x"] * 50))  # warm
        (plain_s,) = duel(repeat, lambda: list(pool.map(TRIVIAL, ["x"] * n)))
    return [(f"process_pool ({method})", n, ours_s, plain_s, None)]


def subprocess_shell(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    tasks = make_tasks(CommandRuntime(command="true"), SubprocessExecutor(), n, run_dir)

    async def ours() -> None:
        for t in tasks:
            await through_spindle(t)

    def plain(**options: Any) -> None:
        for _ in range(n):
            subprocess.run("true", shell=True, check=True, **options)

    ours_s, plain_s, captured_s = duel(
        repeat, lambda: asyncio.run(ours()), plain, lambda: plain(capture_output=True)
    )
    return [
        ("subprocess sh true", n, ours_s, plain_s, 2.0),
        ("subprocess sh true vs capture_output", n, ours_s, captured_s, 2.0),
    ]


def subprocess_python(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    tasks = make_tasks(PythonRuntime(function=TRIVIAL), SubprocessExecutor(), n, run_dir, s="x")

    async def ours() -> None:
        for t in tasks:
            await through_spindle(t)

    def plain() -> None:
        for _ in range(n):
            subprocess.run(
                [sys.executable, "-c", "import posixpath; posixpath.isabs('x')"], check=True
            )

    ours_s, plain_s = duel(repeat, lambda: asyncio.run(ours()), plain)
    return [("subprocess python call", n, ours_s, plain_s, None)]


# --- whole workflows through the engine, durable on SQLite ---------------------------------


def _engine_run(run_dir: Path, wf: Workflow, concurrency: int) -> float:
    """Seconds for one run of ``wf`` on a fresh SQLite store (after one warm-up run)."""

    async def go() -> float:
        settings = Settings(runs_dir=str(run_dir / "runs"), concurrency=concurrency)
        url = f"sqlite:///{run_dir / f'bench-{time.monotonic_ns()}.db'}"
        async with Engine(url, settings=settings) as engine:
            await engine.run(wf)
            t0 = time.perf_counter()
            state = await engine.run(wf)
            took = time.perf_counter() - t0
            if state.status.value != "completed":
                raise SystemExit(f"benchmark run ended {state.status.value}: {state.error}")
            return took

    return asyncio.run(go())


def workflow_fanout(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    """n independent trivial Python nodes, inline and in a process pool."""
    inline = Workflow("fanout-inline")
    pool = Workflow("fanout-pool")
    for i in range(n):
        inline.task(
            f"n{i}", {"kind": "python", "function": trivial_async}, inputs={"s": {"value": "x"}}
        )
        pool.task(
            f"n{i}",
            {"kind": "python", "function": TRIVIAL},
            executor={"kind": "process_pool"},
            inputs={"s": {"value": "x"}},
        )
    workers = os.cpu_count() or 2

    async def gather() -> None:
        await asyncio.gather(*(trivial_async("x") for _ in range(n)))

    def pool_map() -> None:
        ctx = multiprocessing.get_context(_default_start_method())
        with concurrent.futures.ProcessPoolExecutor(mp_context=ctx) as p:
            list(p.map(TRIVIAL, ["x"] * n))

    ours_inline = min(_engine_run(run_dir, inline, 64) for _ in range(repeat))
    ours_pool = min(_engine_run(run_dir, pool, workers * 4) for _ in range(repeat))
    (plain_gather,) = duel(repeat, lambda: asyncio.run(gather()))
    (plain_pool,) = duel(repeat, pool_map)
    return [
        ("workflow: fan-out, inline", n, ours_inline, plain_gather, None),
        ("workflow: fan-out, process_pool", n, ours_pool, plain_pool, None),
    ]


def workflow_commands(n: int, run_dir: Path, repeat: int) -> list[tuple]:
    """n sequential `true` command nodes vs a subprocess.run loop (target <= 2x)."""
    wf = Workflow("commands")
    for i in range(n):
        wf.task(f"c{i}", {"kind": "command", "command": "true"}, after=[f"c{i - 1}"] if i else [])

    def plain() -> None:
        for _ in range(n):
            subprocess.run("true", shell=True, check=True)

    ours = min(_engine_run(run_dir, wf, 1) for _ in range(repeat))
    (plain_s,) = duel(repeat, plain)
    return [("workflow: sh true nodes (durable)", n, ours, plain_s, 2.0)]


def rows(args: argparse.Namespace, run_dir: Path) -> list[tuple]:
    """Every comparison to print as (name, n, spindle s, baseline s, target ratio or None)."""
    return [
        *workflow_fanout(args.calls, run_dir, min(args.repeat, 3)),
        *workflow_commands(args.commands, run_dir, min(args.repeat, 3)),
        *inline_async(args.calls, run_dir, args.repeat),
        *inline_sync(args.calls, run_dir, args.repeat),
        *process_pool(args.calls, run_dir, args.repeat),
        *subprocess_shell(args.commands, run_dir, args.repeat),
        *subprocess_python(max(args.commands // 10, 3), run_dir, args.repeat),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = rows(args, Path(tmp))
    print(f"{'comparison':<38} {'n':>5} {'spindle µs':>11} {'plain µs':>10} {'ratio':>6}  target")
    failed = False
    for name, n, ours_s, plain_s, target in table:
        ratio = ours_s / plain_s
        verdict = ""
        if target is not None:
            ok = ratio <= target
            failed |= not ok
            verdict = f"<= {target:.1f} {'ok' if ok else 'MISSED'}"
        print(
            f"{name:<38} {n:>5} {ours_s / n * 1e6:>11.1f} {plain_s / n * 1e6:>10.1f} "
            f"{ratio:>6.2f}  {verdict}"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
