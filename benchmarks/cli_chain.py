"""``spindle run`` of a chain file through the CLI, end to end, vs a raw sqlite3 commit loop.

Run: ``python benchmarks/cli_chain.py [--nodes 1000] [--repeat 3]``

Writes a chain workflow of N ``python`` nodes calling an ``async def`` no-op
from a module beside the file (the inline executor runs it on the event loop:
the cheapest real node kind a file can name; ``--kind python_code`` uses
``code: pass``, which runs in a worker thread) and a 1-node file, then
runs ``spindle run FILE --store sqlite:///fresh.db --quiet`` in a subprocess,
as a user would, on a fresh SQLite file each time, and times the
whole command: process start, imports, loading, every durable step and the
exit (with bytecode written by a first run, as an installed spindle has it).
Nothing is subtracted; the 1-node run shows the fixed cost. In the same
run it measures

* the raw loop: ``sqlite3`` BEGIN IMMEDIATE / INSERT / COMMIT of a
  ledger-sized row, WAL and ``synchronous=NORMAL`` (spindle's default
  durability), as ``benchmarks/durable_steps.py`` does;
* ``load_workflow(FILE)`` + ``definition_id()`` in this process, best of
  ``--repeat`` x 5: the load alone.

It also runs the command with the interpreter already started and spindle's
CLI imported (``spindle.cli.main`` timed inside the subprocess): the
command's own work -- the engine's and loader's imports, which the CLI puts
off until a command needs them, opening the store, loading, validating and
hashing the file, running every node, committing every step, reporting.

Prints steps/s end to end and for the command's own work, their ratios to
the raw commit rate (target >= 0.25x) and the load alone (target <= 50 ms
for 1,000 nodes). Rounds are interleaved
and the best of each is kept (the machine is noisy).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import raw_sqlite

from spindle import load_workflow

RATIO_TARGET = 0.25
LOAD_TARGET_MS = 50.0


RUNTIMES = {
    "python": "{kind: python, function: 'chain_steps:noop'}",
    "python_code": "{kind: python_code, code: pass}",
}

# Times spindle.cli.main in the subprocess once it is imported: the command's own work.
TIMED = """
import sys, time
from spindle.cli import main
start = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(f"{time.perf_counter() - start:.6f}", file=sys.stderr)
sys.exit(code)
"""


def write_chain(path: Path, n: int, kind: str) -> None:
    (path.parent / "chain_steps.py").write_text("async def noop():\n    return None\n", "utf-8")
    lines = [f"name: chain{n}", "nodes:"]
    for i in range(n):
        lines.append(f"  s{i}:")
        lines.append(f"    runtime: {RUNTIMES[kind]}")
        if i:
            lines.append(f"    after: [s{i - 1}]")
    path.write_text("\n".join(lines) + "\n", "utf-8")


def spindle_run(workdir: Path, name: str, db: Path, *, timed: bool = False) -> float:
    """Seconds for ``spindle run NAME`` on a fresh SQLite file: the whole command, or
    (``timed``) its own work once the interpreter runs and the CLI is imported."""
    env = dict(os.environ)
    env.pop("SPINDLE_STORE", None)
    # an installed spindle has its bytecode compiled (pip does it); without it
    # every run compiles each module it imports again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    args = ["run", name, "--store", f"sqlite:///{db}", "--quiet"]
    cmd = (
        [sys.executable, "-c", TIMED, *args] if timed else [sys.executable, "-m", "spindle", *args]
    )
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"spindle run {name} exited {proc.returncode}: {proc.stderr[-2000:]}")
    if timed:
        return float(proc.stderr.strip().splitlines()[-1])
    return took


def load_alone(path: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        load_workflow(path).definition_id()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kind", choices=sorted(RUNTIMES), default="python")
    args = parser.parse_args()
    n = args.nodes
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_chain(d / "chain.yaml", n, args.kind)
        write_chain(d / "one.yaml", 1, args.kind)
        load_workflow(d / "chain.yaml")  # warm-up: imports, plugin kinds
        spindle_run(d, "one.yaml", d / "warm.db")  # and bytecode written for the subprocesses
        raws, runs, works, ones, loads = [], [], [], [], []
        for r in range(args.repeat):
            raws.append(raw_sqlite(d / f"raw{r}.db", n))
            runs.append(spindle_run(d, "chain.yaml", d / f"chain{r}.db"))
            works.append(spindle_run(d, "chain.yaml", d / f"work{r}.db", timed=True))
            ones.append(spindle_run(d, "one.yaml", d / f"one{r}.db"))
            loads.append(load_alone(d / "chain.yaml", 5))
    raw, run, work, one, load = min(raws), min(runs), min(works), min(ones), min(loads)
    ratio, work_ratio = raw * n / run, raw * n / work
    print(f"{'case':<52}{'seconds':>10}{'steps/s':>10}{'vs raw':>9}")
    label = "raw sqlite3 INSERT+COMMIT loop (WAL, NORMAL)"
    print(f"{label:<52}{raw * n:>10.3f}{1 / raw:>10,.0f}{'1.00x':>9}")
    label = f"spindle run: {n}-node {args.kind} chain, end to end"
    print(f"{label:<52}{run:>10.3f}{n / run:>10,.0f}{ratio:>8.2f}x")
    label = "  the command's own work (load, validate, run)"
    print(f"{label:<52}{work:>10.3f}{n / work:>10,.0f}{work_ratio:>8.2f}x")
    print(f"{'spindle run: 1-node file (the fixed cost)':<52}{one:>10.3f}")
    print(f"{f'load_workflow + hash of the {n}-node file':<52}{load:>10.4f}")
    for what, value in (("end to end", ratio), ("the command's own work", work_ratio)):
        verdict = "met" if value >= RATIO_TARGET else "NOT met"
        print(f"target: {what} >= {RATIO_TARGET}x the raw commit rate: {value:.2f}x, {verdict}")
    verdict = "met" if load * 1e3 <= LOAD_TARGET_MS else "NOT met"
    print(
        f"target: load <= {LOAD_TARGET_MS:.0f} ms for {n:,} nodes: {load * 1e3:.1f} ms, {verdict}"
    )


if __name__ == "__main__":
    main()
