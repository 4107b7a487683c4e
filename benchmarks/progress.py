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
* ``terminal``: the live display drawing on the terminal;
* ``terminal -v``: the same with a line per node (``spindle -v run``);
* ``piped``: stderr to a pipe (a plain line per node event, as before).

Two tables:

1. **engine** — the run as ``spindle run`` drives it (the same ``Progress``
   observer, ``begin`` and drive), timed inside the process: start + drive,
   without interpreter start-up or workflow loading;
2. **CLI** — ``spindle run FILE`` end to end (process start to exit) on a JSON
   file of ``min(N, 5000)`` nodes: a workflow file holds at most 50,000 values,
   which a 10,000-node fan-out exceeds.

Prints median and best seconds per mode and each median's ratio to the quiet
median. Target: the terminal display within 1.25x of quiet in the engine
table (it redraws a few times a second from rich's own thread; events only
update counters). ``--strict`` exits 1 when it is missed.
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
from pathlib import Path

TARGET = 1.25
MODES = ["quiet", "terminal", "terminal -v", "piped"]
#: The widest fan-out a workflow file can hold (its 50,000-value limit).
FILE_NODES = 5000

MODULE = "async def noop():\n    return None\n\n\nasync def join():\n    return 'done'\n"


async def _noop() -> None:
    return None


async def _join() -> str:
    return "done"


def child(nodes: int, mode: str, store: str) -> None:
    """In the measured process: drive the fan-out as ``spindle run`` does; print seconds."""
    from spindle import Workflow
    from spindle._cli._progress import Progress
    from spindle.core.engine import Engine

    wf = Workflow(f"fanout{nodes}")
    for i in range(nodes):
        wf.node(_noop, name=f"s{i}")
    wf.node(_join, name="join", after=[f"s{i}" for i in range(nodes)])
    progress = None if mode == "quiet" else Progress(verbose=mode == "terminal -v")

    async def main() -> float:
        engine = Engine.from_config(
            overrides={"store": store}, observers=[progress] if progress else ()
        )
        async with engine:
            began = time.perf_counter()
            run_id = await engine.start(wf)
            if progress is not None:
                progress.begin(run_id, total=len(wf.nodes))
            state = await engine.drive(run_id, workflow=wf)
            took = time.perf_counter() - began
        if state.status.value != "completed":
            raise SystemExit(f"run {state.status.value}: {state.error}")
        return took

    took = asyncio.run(main())
    if progress is not None:
        progress.close()
    print(f"{took:.6f}")


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


def engine_round(folder: Path, nodes: int, mode: str) -> float:
    store = f"sqlite:///{tempfile.mkdtemp(dir=folder)}/bench.db"
    script = [sys.executable, __file__, "--child", mode, "--nodes", str(nodes), "--store", store]
    _, out = measure(script, folder, mode)
    return float(out.strip().splitlines()[-1])


def cli_round(folder: Path, mode: str) -> float:
    store = f"sqlite:///{tempfile.mkdtemp(dir=folder)}/bench.db"
    args = [sys.executable, "-m", "spindle", *(["-v"] if mode == "terminal -v" else [])]
    args += ["run", "fanout.json", "--store", store, *(["--quiet"] if mode == "quiet" else [])]
    return measure(args, folder, mode)[0]


def table(title: str, times: dict[str, list[float]]) -> float:
    base = statistics.median(times["quiet"])
    print(title)
    print(f"  {'mode':<14}{'median s':>10}{'best s':>10}{'ratio':>8}")
    for mode in MODES:
        med = statistics.median(times[mode])
        print(f"  {mode:<14}{med:>10.3f}{min(times[mode]):>10.3f}{med / base:>7.2f}x")
    return statistics.median(times["terminal"]) / base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="fan-out width")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per mode")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
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
        engine: dict[str, list[float]] = {m: [] for m in MODES}
        cli: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(args.rounds):
            for mode in MODES:  # interleaved: noise hits every mode alike
                engine[mode].append(engine_round(folder, args.nodes, mode))
                cli[mode].append(cli_round(folder, mode))
    ratio = table(
        f"engine: one run of {args.nodes:,} independent inline nodes + a join, SQLite "
        f"(start + drive, {args.rounds} rounds)",
        engine,
    )
    table(
        f"CLI: spindle run of a {file_nodes:,}-node fan-out file + a join, SQLite "
        f"(process start to exit, {args.rounds} rounds)",
        cli,
    )
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"terminal display vs quiet (engine): {ratio:.2f}x (target <= {TARGET}x): {verdict}")
    return 1 if args.strict and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
