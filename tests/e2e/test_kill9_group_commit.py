"""Fault injection for group commit: kill -9 a process with many commits in flight.

A child process runs RUNS coroutines on one SQLite store with group commit
on; each appends one ledger record per commit and, as soon as its ``await
store.commit`` returns, prints the run and the record's seq. The parent kills
the child at a random point, then opens the file afresh: every commit the
child was told was made must be there, and each run's ledger must still be
one unbroken chain (a batch is written whole or not at all).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spindle.plugins.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.slow

RUNS = 30
TRIALS = 4

CHILD = textwrap.dedent(
    """
    import asyncio, hashlib, sys
    from spindle.core.model import RunState, RunStatus, StepKind, StepRecord, StepStatus
    from spindle.core.store import Commit
    from spindle.plugins.stores.sqlite import SQLiteStore

    def record(run_id, seq, head):
        digest = hashlib.sha256(f"{run_id}:{seq}:{head}".encode()).hexdigest()
        return StepRecord(run_id=run_id, seq=seq, node_id=f"n{seq}", kind=StepKind.NODE,
                          status=StepStatus.COMPLETED, idempotency_key=f"{run_id}:{seq}",
                          result={"seq": seq}, prev_hash=head, record_hash=digest)

    async def run(store, run_id):
        head = ""
        state = RunState(run_id, "wf", status=RunStatus.RUNNING)
        for seq in range(100_000):
            rec = record(run_id, seq, head)
            head = rec.record_hash
            state.step_count = seq + 1
            await store.commit(Commit(state, [rec], create=seq == 0, state_changed=seq == 0))
            print(run_id, seq, flush=True)

    async def main(url, runs):
        async with SQLiteStore.from_url(url) as store:
            await asyncio.gather(*(run(store, f"r{i}") for i in range(runs)))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def chained(run_id: str, count: int) -> str:
    """The record_hash of the child's record ``count - 1`` of ``run_id``."""
    head = ""
    for seq in range(count):
        head = hashlib.sha256(f"{run_id}:{seq}:{head}".encode()).hexdigest()
    return head


async def check(db: Path, returned: dict[str, int]) -> None:
    """Every run holds at least the records its caller was told of, in one chain."""
    async with SQLiteStore.from_url(f"sqlite:///{db}") as store:
        for run_id, seq in returned.items():
            count, head = await store.ledger_head(run_id)
            assert count >= seq + 1, (run_id, count, seq)
            assert head == chained(run_id, count)
            records = await store.ledger(run_id)
            assert [r.seq for r in records] == list(range(count))


def kill_midway(tmp_path: Path, query: str, runs: int) -> None:
    """TRIALS times: start the child with ``runs`` runs on a fresh store, kill it at a
    random point, and check that every commit it was told of survived."""
    rng = random.Random(query if runs == RUNS else f"{query}/{runs}")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    for trial in range(TRIALS):
        db = tmp_path / f"t{trial}.db"
        url = f"sqlite:///{db}?{query}"
        child = subprocess.Popen(
            [sys.executable, str(script), url, str(runs)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        returned: dict[str, int] = {}
        wanted = rng.randint(runs * 2, runs * 20) if runs > 1 else rng.randint(20, 400)
        deadline = time.monotonic() + 60
        lines = 0
        while lines < wanted and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            run_id, seq = line.split()
            returned[run_id] = max(returned.get(run_id, -1), int(seq))
            lines += 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert lines == wanted, f"the child stopped after {lines} commits"
        asyncio.run(check(db, returned))


@pytest.mark.parametrize("query", ["durability=full", "group_commit=on"])
def test_every_commit_whose_caller_returned_survives_kill_9(tmp_path: Path, query: str) -> None:
    """After kill -9 mid-flight, each run's ledger holds every record its caller was told
    was committed, and continues the chain unbroken (at most the batch in flight is lost)."""
    kill_midway(tmp_path, query, RUNS)


def test_every_lone_commit_whose_caller_returned_survives_kill_9(tmp_path: Path) -> None:
    """One run alone at durability=full, whose commits are written in its caller rather
    than by the writer thread: after kill -9, every commit it was told of is there."""
    kill_midway(tmp_path, "durability=full", 1)
