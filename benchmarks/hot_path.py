"""Where a durable step's time goes: one run of N chained no-op nodes, profiled.

Run: ``python benchmarks/hot_path.py [--steps 1000] [--store memory|sqlite]``

Times one warm run unprofiled (µs per step, best of ``--repeat``), then runs
it again under ``cProfile`` and shares the step's time out among what the
engine does per step, by the module each function's own time is spent in:

* ``hash chain``   -- the record's canonical JSON and its SHA-256 (tamper
  evidence: ``spindle ledger verify``), and the state digest;
* ``record``       -- building the ledger record, numbering it, replaying it
  into the journal and the ready set (what the next node may start from);
* ``store``        -- the store's commit (memory: copies kept apart from the
  caller's objects; SQLite: the transaction);
* ``attempt``      -- the node's inputs and its task context;
* ``runtime``      -- the ``python`` runtime binding the call's arguments;
* ``executor``     -- the ``inline`` executor: calling the function, keeping
  what it prints in the node's log (so ``--json`` stdout stays clean);
* ``drive loop``   -- choosing the next node, the outcome handling, the
  journal's commit path and its lock;
* ``asyncio``, ``other``.

Profiling inflates every function call by about the same amount, so the
shares (not the profiled times) are applied to the unprofiled step time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

from _common import chain

from spindle import Settings
from spindle.core.engine import Engine

GROUPS = [
    ("hash chain", ("core/model/_chain.py", "core/model/_ledger.py", "_hashlib", "isoformat")),
    ("hash chain", ("core/model/_time.py:_iso", "encode_basestring", "hexdigest", "encode")),
    ("record", ("_journal.py:record", "_journal.py:_replay", "core/engine/_ready.py")),
    ("record", ("_ledger.StepRecord", "core/engine/_results.py", "_secrets.py", "heapq")),
    ("record", ("method now", "core/model/_time.py:utcnow")),
    ("store", ("plugins/stores/", "sqlite3", "core/store/", "LedgerHead")),
    ("attempt", ("core/engine/_attempt.py", "core/engine/_steps.py", "plugin._context")),
    ("attempt", ("core/engine/_tasks.py", "_attempt.Finished", "get_running_loop")),
    ("runtime", ("plugins/runtimes/", "core/plugin/_bases.py:62", "payloads")),
    ("executor", ("plugins/executors/", "core/plugin/_bases.py:140", "perf_counter")),
    ("executor", ("contextvar", "_bases.Outcome", "thread.lock")),
    ("drive loop", ("core/engine/_driver.py", "core/engine/_outcomes.py", "_journal.py")),
    ("drive loop", ("core/engine/_hold.py", "core/engine/_gate.py", "_journal.Pending")),
    ("drive loop", ("_contract.Commit", "_workflow.py:dependencies")),
    ("asyncio", ("asyncio/",)),
]


async def measure(url: str, runs_dir: Path, steps: int, repeat: int) -> tuple[float, pstats.Stats]:
    wf = chain(steps)
    async with Engine(url, settings=Settings(runs_dir=str(runs_dir))) as engine:
        await engine.run(wf)
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            await engine.run(wf)
            best = min(best, time.perf_counter() - t)
        # Several profiled runs summed: one run's shares move with the machine's load.
        profile = cProfile.Profile()
        for _ in range(3):
            profile.enable()
            await engine.run(wf)
            profile.disable()
    return best / steps, pstats.Stats(profile)


def group_of(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    where = f"{filename}:{name}"
    where_line = f"{filename}:{line}"
    for group, needles in GROUPS:
        for needle in needles:
            if needle in where or needle in where_line:
                return group
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        url = "memory://" if args.store == "memory" else f"sqlite:///{d / 's.db'}"
        per_step, stats = asyncio.run(measure(url, d / "runs", args.steps, args.repeat))
    totals: dict[str, float] = {}
    calls = 0
    for key, (_cc, nc, tottime, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[group_of(key)] = totals.get(group_of(key), 0.0) + tottime
        calls += nc
    whole = sum(totals.values())
    print(f"one run of {args.steps:,} chained no-op nodes, {args.store} store")
    print(
        f"{'per step (unprofiled, best of ' + str(args.repeat) + ')':<40}{per_step * 1e6:>8.1f} us"
    )
    print(f"{'function calls per step':<40}{calls / args.steps / 3:>8.0f}")
    print(f"\n{'what the time buys':<40}{'us/step':>8}{'share':>8}")
    for group in [*dict.fromkeys(g for g, _ in GROUPS), "other"]:
        share = totals.get(group, 0.0) / whole
        print(f"{group:<40}{share * per_step * 1e6:>8.1f}{share:>8.0%}")
    print(f"\npython {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
