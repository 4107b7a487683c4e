"""What the progress display costs: a wide fan-out run with the live display on a
terminal vs ``--quiet`` (no display at all).

Run it from a checkout where spindle is installed (``pip install -e .``)::

    python benchmarks/progress.py                    # 10,000 nodes, 5 rounds
    python benchmarks/progress.py --nodes 2000 --rounds 3 --strict

The workflow is N independent no-op nodes (``async def`` Python functions, run
inline on the event loop) plus one ``join`` node after all of them, on a fresh
SQLite store per run. Each measurement is a fresh process whose stderr is a
pseudo-terminal (or a pipe), in four modes, interleaved round by round:

* ``quiet``: no observer (``--quiet``) — the baseline;
* ``observer`` (engine table only): a no-op observer, so the engine builds and
  sends every lifecycle event but nothing is drawn — what any observer costs;
* ``terminal``: the live display drawing on the terminal;
* ``terminal -v``: the same with a line per node (``spindle -v run``);
* ``piped``: stderr to a pipe (a plain line per node event, as before).

Two tables:

1. **engine** — the run as ``spindle run`` drives it (the same ``Progress``
   observer, ``begin`` and ``Engine.run``), timed inside the process: the run,
   without interpreter start-up or workflow loading;
2. **CLI** — ``spindle run FILE`` end to end (process start to exit) on a JSON
   file of ``min(N, 5000)`` nodes: a workflow file holds at most 50,000 values,
   which a 10,000-node fan-out exceeds.

Prints median and best wall seconds per mode and each median's ratio to the
quiet median; the engine table adds the best CPU seconds of the process (all
its threads, rich's refresh thread included), which the other processes of a
busy machine disturb less than wall time. Last, what ``Progress.on_event``
itself costs per node event, timed in this process (no noise from a run).
Target: the terminal display within 1.25x of quiet in best CPU seconds in
the engine table (it redraws a few
times a second from rich's own thread; events only update counters).
``--strict`` exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

TARGET = 1.25
MODES = ["quiet", "terminal", "terminal -v", "piped"]
ENGINE_MODES = ["quiet", "observer", "terminal", "terminal -v", "piped"]
#: The widest fan-out a workflow file can hold (its 50,000-value limit).
FILE_NODES = 5000

MODULE = "async def noop():\n    return None\n\n\nasync def join():\n    return 'done'\n"


async def _noop() -> None:
    return None


async def _join() -> str:
    return "done"


class _Null:
    async def on_event(self, event: object) -> None:
        return None


def child(nodes: int, mode: str, store: str) -> None:
    """In the measured process: drive the fan-out as ``spindle run`` does; print seconds."""
    from spindle import Workflow
    from spindle._cli._progress import Progress
    from spindle.core.engine import Engine

    wf = Workflow(f"fanout{nodes}")
    for i in range(nodes):
        wf.node(_noop, name=f"s{i}")
    wf.node(_join, name="join", after=[f"s{i}" for i in range(nodes)])
    observer: object = None
    progress = None
    if mode == "observer":
        observer = _Null()
    elif mode != "quiet":
        observer = progress = Progress(verbose=mode == "terminal -v")

    async def main() -> float:
        engine = Engine.from_config(
            overrides={"store": store}, observers=[observer] if observer else ()
        )
        async with engine:
            began = time.perf_counter()
            cpu = time.process_time()
            run_id = uuid.uuid4().hex  # named up front, as spindle run does
            if progress is not None:
                progress.begin(run_id, total=len(wf.nodes))
            state = await engine.run(wf, run_id=run_id)
            took = time.perf_counter() - began, time.process_time() - cpu
        if state.status.value != "completed":
            raise SystemExit(f"run {state.status.value}: {state.error}")
        return took

    took = asyncio.run(main())
    if progress is not None:
        progress.close()
    print(f"{took[0]:.6f} {took[1]:.6f}")


def write_workflow(folder: Path, nodes: int) -> None:
    """The fan-out as a JSON workflow file (and its module) in ``folder``."""
    (folder / "fanmod.py").write_text(MODULE)
    table: dict[str, object] = {
        f"s{i}": {"runtime": {"kind": "python", "function": "fanmod:noop"}} for i in range(nodes)
    }
    table["join"] = {
        "runtime": {"kind": "python", "function": "fanmod:join"},
        "after": [f"s{i}" for i in range(nodes)],
    }
    spec = {"name": f"fanout{nodes}", "nodes": table, "output": "join"}
    (folder / "fanout.json").write_text(json.dumps(spec))


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:  # EIO once the command has exited
            return


def measure(args: list[str], cwd: Path, mode: str) -> tuple[float, str]:
    """Run ``args`` with stderr on a pseudo-terminal (a pipe for ``piped``);
    return the wall seconds and what it printed on stdout."""
    import pty

    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty() if mode != "piped" else (-1, -1)
    began = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower if follower >= 0 else subprocess.PIPE,
        text=True,
    )
    reader = None
    if leader >= 0:
        os.close(follower)
        reader = threading.Thread(target=_drain, args=(leader,))
        reader.start()
    out, err = proc.communicate()
    took = time.perf_counter() - began
    if reader is not None:
        reader.join(timeout=30)
        os.close(leader)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[2:])} ({mode}) exited {proc.returncode}: {err}")
    return took, out


def engine_round(folder: Path, nodes: int, mode: str) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of the run in a fresh process."""
    store = f"sqlite:///{tempfile.mkdtemp(dir=folder)}/bench.db"
    script = [sys.executable, __file__, "--child", mode, "--nodes", str(nodes), "--store", store]
    _, out = measure(script, folder, mode)
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def cli_round(folder: Path, mode: str) -> float:
    store = f"sqlite:///{tempfile.mkdtemp(dir=folder)}/bench.db"
    args = [sys.executable, "-m", "spindle", *(["-v"] if mode == "terminal -v" else [])]
    args += ["run", "fanout.json", "--store", store, *(["--quiet"] if mode == "quiet" else [])]
    return measure(args, folder, mode)[0]


def table(
    title: str, times: dict[str, list[float]], cpu: dict[str, list[float]] | None = None
) -> float:
    """Print one table; return the terminal/quiet ratio of medians (CPU when given)."""
    base = statistics.median(times["quiet"])
    print(title)
    head = f"  {'mode':<14}{'median s':>10}{'best s':>10}{'ratio':>8}"
    print(head + (f"{'best CPU s':>12}{'ratio':>8}" if cpu else ""))
    for mode in times:
        med = statistics.median(times[mode])
        row = f"  {mode:<14}{med:>10.3f}{min(times[mode]):>10.3f}{med / base:>7.2f}x"
        if cpu:
            used, cbase = min(cpu[mode]), min(cpu["quiet"])
            row += f"{used:>12.3f}{used / cbase:>7.2f}x"
        print(row)
    if cpu:
        return min(cpu["terminal"]) / min(cpu["quiet"])
    return statistics.median(times["terminal"]) / base


def per_event(nodes: int) -> dict[str, float]:
    """Microseconds ``Progress.on_event`` takes per node event, in this process: the
    live display (drawing into a buffer, at its own pace) and the plain lines
    (written to a buffer)."""
    import io

    from rich.console import Console

    from spindle._cli._progress import Progress
    from spindle.core.model import LifecycleEventType, RunLifecycleEvent, utcnow

    started = LifecycleEventType.RUN_STARTED
    events = []
    for i in range(nodes):
        for kind in (LifecycleEventType.NODE_STARTED, LifecycleEventType.NODE_COMPLETED):
            events.append(RunLifecycleEvent("e", "r", kind, 0, utcnow(), f"s{i}", {}))
    out: dict[str, float] = {}
    for name in ("terminal", "piped"):
        buffer = io.StringIO()
        if name == "terminal":
            console = Console(file=buffer, force_terminal=True, width=120)
            progress = Progress(console=console, verbose=False)
        else:
            progress = Progress(color=False)
        progress.begin("r", total=nodes)

        async def feed(progress: Progress = progress) -> float:
            # The live display starts (rich imported, its thread started) before the clock.
            await progress.on_event(RunLifecycleEvent("e", "r", started, 0, utcnow()))
            began = time.perf_counter()
            for event in events:
                await progress.on_event(event)
            return time.perf_counter() - began

        saved, sys.stderr = sys.stderr, buffer  # the plain lines go to stderr
        try:
            took = asyncio.run(feed())
        finally:
            sys.stderr = saved
        progress.close()
        out[name] = took * 1e6 / len(events)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="fan-out width")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per mode")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--child", choices=ENGINE_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.nodes, args.child, args.store)
        return 0
    file_nodes = min(args.nodes, FILE_NODES)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_workflow(folder, file_nodes)
        engine_round(folder, min(args.nodes, 500), "quiet")  # warm-up: bytecode, caches
        engine: dict[str, list[float]] = {m: [] for m in ENGINE_MODES}
        engine_cpu: dict[str, list[float]] = {m: [] for m in ENGINE_MODES}
        cli: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(args.rounds):
            for mode in ENGINE_MODES:  # interleaved: noise hits every mode alike
                wall, used = engine_round(folder, args.nodes, mode)
                engine[mode].append(wall)
                engine_cpu[mode].append(used)
                if mode in cli:
                    cli[mode].append(cli_round(folder, mode))
    ratio = table(
        f"engine: one run of {args.nodes:,} independent inline nodes + a join, SQLite "
        f"(Engine.run, {args.rounds} rounds)",
        engine,
        engine_cpu,
    )
    table(
        f"CLI: spindle run of a {file_nodes:,}-node fan-out file + a join, SQLite "
        f"(process start to exit, {args.rounds} rounds)",
        cli,
    )
    cost = per_event(args.nodes)
    print(
        f"Progress.on_event per node event, in process: terminal {cost['terminal']:.2f} µs, "
        f"piped {cost['piped']:.2f} µs (the plain line written)"
    )
    own = min(engine_cpu["terminal"]) / min(engine_cpu["observer"])
    print(
        f"the display's own cost, terminal vs a no-op observer (best CPU seconds): {own:.2f}x; "
        f"the rest is the engine building events for any observer"
    )
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(
        f"terminal display vs quiet (engine, best CPU seconds): {ratio:.2f}x "
        f"(target <= {TARGET}x): {verdict}"
    )
    return 1 if args.strict and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
