"""Retention: how fast ``Store.prune`` deletes runs, and what a prune costs live runs.

Run: ``python benchmarks/prune.py [--runs 5000] [--records 10] [--batch 500]``

Prints, for the memory and the SQLite store, the runs pruned per second by
``apply_retention`` (batch after batch until done) over ``--runs`` finished
runs of ``--records`` ledger records and one artifact each (half of them
sharing one content), and the same as a ratio to SQLite's own commit rate
for creating those runs (a prune deletes what those commits wrote). Between
batches ``apply_retention`` leaves the store to others for as long as the
batch took (at most 0.1 s), so a prune runs at about half its raw speed.

Then, on SQLite, a live run commits steps from another thread, on its own
connection to the same file, while the prune runs, and once more while
nothing else writes: the ratio of its median and its longest commit during
the prune to the idle ones, beside the longest batch. A batch is one short
transaction, so the live run's longest commit stays about one batch, not
the whole prune.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spindle.core.engine import apply_retention
from spindle.core.model import RunState, RunStatus, StepKind, StepRecord, StepStatus
from spindle.core.store import Commit, PruneResult, Store
from spindle.plugins.stores.memory import MemoryStore
from spindle.plugins.stores.sqlite import SQLiteStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _records(run_id: str, count: int, start: int = 0, head: str = "") -> list[StepRecord]:
    out = []
    for seq in range(start, start + count):
        digest = hashlib.sha256(f"{run_id}:{seq}:{head}".encode()).hexdigest()
        out.append(
            StepRecord(
                run_id=run_id,
                seq=seq,
                node_id=f"n{seq}",
                kind=StepKind.NODE,
                status=StepStatus.COMPLETED,
                idempotency_key=f"{run_id}:n{seq}:0",
                result={"seq": seq},
                prev_hash=head,
                record_hash=digest,
            )
        )
        head = digest
    return out


async def seed(store: Store, runs: int, records: int) -> float:
    """Create ``runs`` finished runs; seconds per run created."""
    start = time.perf_counter()
    for n in range(runs):
        run_id = f"r{n}"
        state = RunState(
            run_id=run_id,
            workflow="wf",
            status=RunStatus.COMPLETED,
            created_at=T0,
            updated_at=T0,
        )
        await store.commit(Commit(state, _records(run_id, records), create=True))
        data = b"shared" if n % 2 else f"own {n}".encode()
        await store.put_artifact(run_id, data)
    return (time.perf_counter() - start) / runs


class _Timed:
    """A store whose ``prune`` calls are timed (what ``apply_retention`` calls)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.longest = 0.0

    async def prune(self, **kw: Any) -> PruneResult:
        began = time.perf_counter()
        try:
            return await self.store.prune(**kw)
        finally:
            self.longest = max(self.longest, time.perf_counter() - began)


async def prune_all(store: Store, batch: int) -> tuple[PruneResult, float, float]:
    """Prune everything: the result, seconds in all, and the longest batch."""
    timed = _Timed(store)
    start = time.perf_counter()
    result = await apply_retention(
        timed,  # type: ignore[arg-type]  # only prune is called
        timedelta(days=1),
        now=T0 + timedelta(days=2),
        batch=batch,
    )
    return result, time.perf_counter() - start, timed.longest


def live_commits(url: str, stop: threading.Event, latencies: list[float]) -> None:
    """Commit one step at a time to a live run on its own connection until ``stop``."""

    async def main() -> None:
        async with SQLiteStore.from_url(url) as store:
            run_id = f"live-{uuid.uuid4().hex}"
            state = RunState(run_id=run_id, workflow="wf", status=RunStatus.RUNNING)
            await store.commit(Commit(state, create=True))
            head, seq = "", 0
            while not stop.is_set():
                (record,) = _records(run_id, 1, start=seq, head=head)
                began = time.perf_counter()
                await store.commit(Commit(state, [record], state_changed=False))
                latencies.append(time.perf_counter() - began)
                head, seq = record.record_hash, seq + 1
                time.sleep(0.0005)  # a step's work between commits

    asyncio.run(main())


def measure_live(url: str, during: Callable[[], None]) -> list[float]:
    stop = threading.Event()
    latencies: list[float] = []
    thread = threading.Thread(target=live_commits, args=(url, stop, latencies))
    thread.start()
    try:
        time.sleep(0.05)  # the live run is committing before the work starts
        during()
    finally:
        stop.set()
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    print(f"{args.runs} finished runs of {args.records} records, batch {args.batch}\n")
    header = f"{'store':<10}{'created/s':>12}{'pruned/s':>12}{'prune/create':>14}"
    print(f"{header}{'longest batch':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'prune.db'}"
        for name, make in (
            ("memory", lambda: MemoryStore.from_url("memory://")),
            ("sqlite", lambda: SQLiteStore.from_url(url)),
        ):

            async def one(
                make: Callable[[], Store] = make, name: str = name
            ) -> tuple[float, float, float]:
                async with make() as store:
                    per_run = await seed(store, args.runs, args.records)
                    result, took, longest = await prune_all(store, args.batch)
                    if result.runs != args.runs:
                        raise SystemExit(f"{name}: pruned {result.runs} of {args.runs} runs")
                    return per_run, took, longest

            per_run, took, longest = asyncio.run(one())
            print(
                f"{name:<10}{1 / per_run:>12,.0f}{args.runs / took:>12,.0f}"
                f"{(args.runs / took) * per_run:>13.1f}x{longest * 1000:>13.1f} ms"
            )

        idle = measure_live(url, lambda: time.sleep(0.5))
        longest_batch = [0.0]

        async def reseed() -> None:
            async with SQLiteStore.from_url(url) as store:
                await seed(store, args.runs, args.records)

        asyncio.run(reseed())

        def prune_meanwhile() -> None:
            async def go() -> None:
                async with SQLiteStore.from_url(url) as store:
                    _, _, longest_batch[0] = await prune_all(store, args.batch)

            asyncio.run(go())

        during = measure_live(url, prune_meanwhile)

    def summary(values: list[float]) -> tuple[float, float]:
        return statistics.median(values), max(values)

    idle_median, idle_max = summary(idle)
    busy_median, busy_max = summary(during)
    print("\na live run's commits on SQLite while a prune runs (on another connection)")
    print(f"  commits: {len(idle)} idle, {len(during)} meanwhile")
    print(f"  median commit meanwhile / idle:   {busy_median / idle_median:>6.1f}x")
    print(f"  longest commit meanwhile / idle:  {busy_max / idle_max:>6.1f}x")
    print(f"  longest commit / longest batch:   {busy_max / longest_batch[0]:>6.2f}")
    print("  (a batch holds the write lock once: the longest commit waits about one batch)")
    print(f"\npython {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
