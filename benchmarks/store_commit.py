"""How fast a store commits one durable step, against raw sqlite3 on the same settings.

Run ``python benchmarks/store_commit.py [--n 5000] [--rounds 5] [--durability normal]``.

Three loops, each appending one ledger step per transaction:

* ``raw sqlite3``: BEGIN; INSERT one row (the same JSON text a store writes
  for a step record); COMMIT -- in WAL mode with the same ``synchronous``
  setting. It is the floor: the least any durable append can cost.
* ``SQLiteStore.commit``: a one-record commit under a lease token (the run's
  state and its record in one transaction), as the engine does per step.
* ``MemoryStore.commit``: the same commit in memory.

The loops run interleaved for several rounds and the best round of each is
kept, so a noisy neighbour on the machine skews one round, not the result.
CPU time (user + system) per op is shown too: on a shared machine it moves
less than wall time.
The targets (docs/performance): SQLiteStore at least 40% of raw (the whole
engine step must reach 25%), MemoryStore at least 20k commits/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from spindle.core.model import (
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    converter,
    utcnow,
)
from spindle.core.store import Commit, Store
from spindle.plugins.stores.memory import MemoryStore
from spindle.plugins.stores.sqlite import SQLiteStore


def make_records(run_id: str, n: int, start: int, head: str) -> list[StepRecord]:
    now = utcnow()
    records = []
    for seq in range(start, start + n):
        record_hash = f"{seq:064x}"
        records.append(
            StepRecord(
                run_id=run_id,
                seq=seq,
                node_id=f"node{seq % 50}",
                kind=StepKind.NODE,
                status=StepStatus.COMPLETED,
                idempotency_key=f"{run_id}:node{seq % 50}:{seq}",
                result={"value": seq, "text": "ok"},
                started_at=now,
                finished_at=now,
                prev_hash=head,
                record_hash=record_hash,
            )
        )
        head = record_hash
    return records


def cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_loop(path: Path, n: int, synchronous: str, body: str, start: int) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, run_id TEXT, seq INTEGER,"
        " body TEXT)"
    )
    t0, cpu0 = time.perf_counter(), cpu_time()
    for seq in range(start, start + n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO raw (run_id, seq, body) VALUES (?, ?, ?)", ("r1", seq, body))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0, cpu_time() - cpu0
    conn.close()
    return elapsed


async def store_loop(store: Store, n: int, *, hot: bool = False) -> tuple[float, float]:
    """Commit ``n`` one-record steps; ``hot`` marks them counters-only, as the engine
    does for a completed node (``Commit.state_changed=False``)."""
    count, head = await store.ledger_head("r1")
    state = await store.load_run("r1")
    lease = await store.acquire_lease("r1", owner="bench", host="h", pid=0, ttl=3600, now=utcnow())
    assert lease is not None
    records = make_records("r1", n, count, head)
    t0, cpu0 = time.perf_counter(), cpu_time()
    for record in records:
        state.step_count += 1
        await store.commit(Commit(state, [record], token=lease.token, state_changed=not hot))
    elapsed = time.perf_counter() - t0, cpu_time() - cpu0
    await store.release_lease("r1", owner="bench", token=lease.token)
    return elapsed


async def prepare(store: Store) -> None:
    await store.open()
    state = RunState("r1", "bench", status=RunStatus.RUNNING, inputs={"who": "world"})
    await store.commit(Commit(state, create=True))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="commits per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--durability", choices=["normal", "full"], default="normal")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    args = parser.parse_args()
    synchronous = "FULL" if args.durability == "full" else "NORMAL"
    body = json.dumps(converter.unstructure(make_records("r1", 1, 0, "")[0]))

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        sqlite_store = SQLiteStore(path=f"{tmp}/store.db", durability=args.durability)
        memory_store = MemoryStore()
        await prepare(sqlite_store)
        await prepare(memory_store)
        names = ("raw", "sqlite", "sqlite-hot", "memory", "memory-hot")
        best = {name: (float("inf"), float("inf")) for name in names}
        for i in range(args.rounds):
            results = {
                "raw": raw_loop(Path(tmp, "raw.db"), args.n, synchronous, body, i * args.n),
                "sqlite": await store_loop(sqlite_store, args.n),
                "sqlite-hot": await store_loop(sqlite_store, args.n, hot=True),
                "memory": await store_loop(memory_store, args.n),
                "memory-hot": await store_loop(memory_store, args.n, hot=True),
            }
            for name, (wall, cpu) in results.items():
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        await sqlite_store.aclose()

    titles = {
        "raw": "raw sqlite3 INSERT+COMMIT",
        "sqlite": "SQLiteStore.commit (1 record)",
        "sqlite-hot": "SQLiteStore.commit (hot path)",
        "memory": "MemoryStore.commit (1 record)",
        "memory-hot": "MemoryStore.commit (hot path)",
    }
    raw_wall, raw_cpu = best["raw"]
    print(f"durability={args.durability}, {args.n} commits x {args.rounds} rounds (best round)")
    print(f"{'loop':32} {'ops/s':>9} {'us/op':>7} {'vs raw':>7} {'cpu us/op':>10} {'vs raw':>7}")
    for name, (wall, cpu) in best.items():
        print(
            f"{titles[name]:32} {args.n / wall:>9,.0f} {wall / args.n * 1e6:>7.1f}"
            f" {raw_wall / wall:>7.0%} {cpu / args.n * 1e6:>10.1f} {raw_cpu / cpu:>7.0%}"
        )


if __name__ == "__main__":
    asyncio.run(main())
