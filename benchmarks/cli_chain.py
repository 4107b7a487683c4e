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

Then the fixed cost, next to ``python -c pass`` (the interpreter alone):
``spindle --version``, ``spindle --help`` (answered from the help cache),
``spindle runs`` (listing a store's runs), and where the 1-node run's time
goes: the interpreter starting, importing ``spindle.cli`` (the front door),
the modules the command imports, the command's own work (settings, opening
the store, loading, running, reporting: timed again in a process that
imported those modules first) and the interpreter's exit. Each is the best
over the rounds, with the median CPU time (user + system) of the whole
command beside the wall times, as CPU time moves less when other work
shares the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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

# The phases of one command: started, spindle.cli imported, main() returned (the
# command's own work is the last two apart; main() reads sys.argv, as the console
# script calls it). perf_counter is the system-wide monotonic clock on Linux and
# macOS, so the parent compares it with its own readings (start, exit).
PHASES = """
import json, sys, time
started = time.perf_counter()
sys.argv = ["spindle", *sys.argv[1:]]
from spindle.cli import main
imported = time.perf_counter()
try:
    main()
except SystemExit as exc:
    code = exc.code
ended = time.perf_counter()
print(json.dumps([started, imported, ended, sorted(sys.modules)]), file=sys.stderr)
sys.exit(code)
"""

# The command again, in a process that first imports every module the command
# imported (their names on stdin): what is left is the command's work.
PRELOADED = """
import importlib, json, sys, time
names = json.load(sys.stdin)
sys.argv = ["spindle", *sys.argv[1:]]
try:
    from spindle._cli import _collector
except ImportError:  # a spindle without it
    pass
else:
    _collector.own()  # as main() does first: start-up imports run without collections
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
from spindle.cli import main
start = time.perf_counter()
try:
    main()
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
    env = _env()
    args = ["run", name, "--store", f"sqlite:///{db}", "--quiet"]
    cmd = (
        [sys.executable, "-c", PHASES, *args] if timed else [sys.executable, "-m", "spindle", *args]
    )
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"spindle run {name} exited {proc.returncode}: {proc.stderr[-2000:]}")
    if timed:
        _started, imported, ended, _modules = json.loads(proc.stderr.strip().splitlines()[-1])
        return float(ended - imported)
    return took


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SPINDLE_STORE", None)
    # an installed spindle has its bytecode compiled (pip does it); without it
    # every run compiles each module it imports again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed_cpu(cmd: list[str], workdir: Path, stdin: str | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return its wall seconds, CPU seconds (user + system) and stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=_env(), input=stdin, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu, proc.stderr


class FixedCost:
    """Where a 1-node ``spindle run`` spends its time, and the cheapest commands."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def add(self, what: str, seconds: float) -> None:
        self.samples.setdefault(what, []).append(seconds)

    def round(self, workdir: Path, db: Path, listed: Path) -> None:
        py = sys.executable
        wall, cpu, _ = timed_cpu([py, "-c", "pass"], workdir)
        self.add("python", wall)
        self.add("python cpu", cpu)
        for flag in ("--version", "--help"):
            wall, cpu, _ = timed_cpu([py, "-m", "spindle", flag], workdir)
            self.add(flag, wall)
            self.add(f"{flag} cpu", cpu)
        wall, cpu, _ = timed_cpu(
            [py, "-m", "spindle", "runs", "--store", f"sqlite:///{listed}"], workdir
        )
        self.add("runs", wall)
        self.add("runs cpu", cpu)
        args = ["run", "one.yaml", "--store", f"sqlite:///{db}", "--quiet"]
        spawned = time.perf_counter()
        wall, cpu, err = timed_cpu([py, "-c", PHASES, *args], workdir)
        exited = spawned + wall
        started, imported, ended, modules = json.loads(err.strip().splitlines()[-1])
        self.add("run", wall)
        self.add("run cpu", cpu)
        self.add("start", started - spawned)
        self.add("front door", imported - started)
        self.add("main", ended - imported)
        self.add("exit", exited - ended)
        names = [m for m in modules if not m.endswith("__main__")]
        db.unlink()
        for leftover in db.parent.glob(f"{db.name}-*"):
            leftover.unlink()
        _, _, err = timed_cpu([py, "-c", PRELOADED, *args], workdir, json.dumps(names))
        self.add("work", float(err.strip().splitlines()[-1]))

    def best(self, what: str) -> float:
        return min(self.samples[what])

    def median(self, what: str) -> float:
        return statistics.median(self.samples[what])

    def report(self) -> None:
        print()
        print(f"{'fixed cost (best wall; median CPU)':<52}{'seconds':>10}{'cpu':>9}")
        for label, key in (
            ("python -c pass (the interpreter alone)", "python"),
            ("spindle --version", "--version"),
            ("spindle --help (from the help cache)", "--help"),
            ("spindle runs (a store's runs, listed)", "runs"),
            ("spindle run: 1-node file", "run"),
        ):
            print(f"{label:<52}{self.best(key):>10.3f}{self.median(key + ' cpu'):>9.3f}")
        work = self.best("work")
        imports = max(self.best("main") - work, 0.0)
        for label, value in (
            ("  the interpreter starting", self.best("start")),
            ("  importing spindle.cli (the front door)", self.best("front door")),
            ("  the modules the command imports", imports),
            ("  the command's work (settings, store, load, run)", work),
            ("  the interpreter exiting", self.best("exit")),
        ):
            print(f"{label:<52}{value:>10.3f}")


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
        spindle_help = [sys.executable, "-m", "spindle", "--help"]
        timed_cpu(spindle_help, d)  # the help cache written, as a first --help leaves it
        raws, runs, works, ones, loads = [], [], [], [], []
        fixed = FixedCost()
        for r in range(args.repeat):
            raws.append(raw_sqlite(d / f"raw{r}.db", n))
            runs.append(spindle_run(d, "chain.yaml", d / f"chain{r}.db"))
            works.append(spindle_run(d, "chain.yaml", d / f"work{r}.db", timed=True))
            ones.append(spindle_run(d, "one.yaml", d / f"one{r}.db"))
            loads.append(load_alone(d / "chain.yaml", 5))
            fixed.round(d, d / f"phases{r}.db", d / f"chain{r}.db")
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
    fixed.report()


if __name__ == "__main__":
    main()
