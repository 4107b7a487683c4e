"""Group commit's scheduling, outside spindle: can a COMMIT overlap with the loop's Python?

Run: ``python benchmarks/commit_overlap.py [--runs 100] [--steps 20] [--work 45] [--repeat 5]``

spindle's group commit (the SQLite store at ``durability=full``) has its
writer thread and the event loop take turns: the loop runs every caller's
next step, then the writer writes the batch and commits it, one fsync for
all. The writer needs the interpreter lock between statements, and a busy
loop only gives it up every switch interval (5 ms), so the two do not run
at once. This script measures, with plain ``sqlite3`` and asyncio and no
spindle code, what another schedule would gain. ``--runs`` coroutines each
do ``--steps`` steps of ``--work`` µs of pure-Python work followed by a
durable write (a row in the run's own key range and an index entry: two
b-tree pages, as a spindle step writes), at ``synchronous=FULL``:

* ``turn-taking``: what spindle does now -- once every caller waits, a
  thread writes the batch's rows and commits;
* ``overlapped``: the loop writes each row into the open transaction as it
  comes, and a thread runs only the ``COMMIT`` (the WAL write and the fsync,
  one call that releases the interpreter lock throughout), started once
  half the runs have written, so that the other half computes meanwhile;
  rows that arrive during a ``COMMIT`` go into the next transaction. The
  loop yields the interpreter lock (``time.sleep(0)``) as it hands over the
  ``COMMIT``, or the thread would wait for the switch interval to start it;
* ``overlapped, no yield``: the same without that yield.

Prints µs per step and the ratio to ``turn-taking`` (the median of
``--repeat`` interleaved rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

BODY = "x" * 300


def busy(seconds: float) -> None:
    """Pure-Python work that holds the interpreter lock, as an engine step does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, k TEXT)")
    conn.execute("CREATE INDEX t_k ON t (k)")
    return conn


def row(run: int, seq: int) -> tuple[int, str, str]:
    # The run's own key range (as spindle's ledger), and a key scattered across runs.
    return (run << 20) | seq, BODY, f"{(run * 7919) % 1000:04d}:{seq}"


INSERT = "INSERT INTO t (id, body, k) VALUES (?, ?, ?)"


async def timed(run: Callable[[int], Awaitable[None]], runs: int, steps: int) -> float:
    """Seconds a step while ``runs`` coroutines ``run(r)`` of ``steps`` steps run at once."""
    start = time.perf_counter()
    await asyncio.gather(*(run(r) for r in range(runs)))
    return (time.perf_counter() - start) / (runs * steps)


async def turn_taking(path: Path, runs: int, steps: int, work: float) -> float:
    conn = open_db(path)
    loop = asyncio.get_running_loop()
    queue: list[tuple[int, int, asyncio.Future[None]]] = []
    wake = asyncio.Event()

    async def writer() -> None:
        while True:
            await asyncio.sleep(0)  # every runnable caller submits first
            if not queue:
                await wake.wait()
                wake.clear()
                continue
            batch = queue[:]
            queue.clear()

            rows = [row(r, s) for r, s, _ in batch]

            def write(rows: list[tuple[int, str, str]] = rows) -> None:
                conn.execute("BEGIN IMMEDIATE")
                for values in rows:  # a statement a write, as spindle's writer runs them
                    conn.execute(INSERT, values)
                conn.execute("COMMIT")

            await loop.run_in_executor(None, write)
            for *_, future in batch:
                future.set_result(None)

    async def run(r: int) -> None:
        for s in range(steps):
            busy(work)
            future = loop.create_future()
            queue.append((r, s, future))
            wake.set()
            await future

    task = asyncio.ensure_future(writer())
    per_step = await timed(run, runs, steps)
    task.cancel()
    conn.close()
    return per_step


class Overlapped:
    """Rows written by the loop into the open transaction; COMMIT in a thread."""

    def __init__(self, conn: sqlite3.Connection, runs: int, *, yield_lock: bool) -> None:
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        self.cohort = max(1, runs // 2)
        self.yield_lock = yield_lock
        self.open = False
        self.committing = False
        self.stopping = False
        self.waiting: list[asyncio.Future[None]] = []  # in the open transaction
        self.batch: list[asyncio.Future[None]] = []  # in the COMMIT in flight
        self.queued: list[tuple[int, int, asyncio.Future[None]]] = []  # for the next one
        self.scheduled = False
        self.go = threading.Event()
        self.thread = threading.Thread(target=self._committer, daemon=True)
        self.thread.start()

    def _committer(self) -> None:
        while True:
            self.go.wait()
            self.go.clear()
            if self.stopping:
                return
            self.conn.execute("COMMIT")
            self.loop.call_soon_threadsafe(self._committed)

    def _write(self, r: int, s: int, future: asyncio.Future[None]) -> None:
        if not self.open:
            self.conn.execute("BEGIN IMMEDIATE")
            self.open = True
        self.conn.execute(INSERT, row(r, s))
        self.waiting.append(future)

    def _start_commit(self) -> None:
        self.committing, self.open = True, False
        self.batch, self.waiting = self.waiting, []
        self.go.set()
        if self.yield_lock:
            time.sleep(0)  # let the committer take the interpreter lock and start

    def _committed(self) -> None:
        batch, self.committing = self.batch, False
        if self.queued:
            for r, s, future in self.queued:
                self._write(r, s, future)
            self.queued.clear()
            self._start_commit()
        for future in batch:
            future.set_result(None)

    def _maybe_commit(self) -> None:
        self.scheduled = False
        if self.open and not self.committing:
            self._start_commit()

    def submit(self, r: int, s: int) -> asyncio.Future[None]:
        future = self.loop.create_future()
        if self.committing:
            self.queued.append((r, s, future))
        else:
            self._write(r, s, future)
            if len(self.waiting) >= self.cohort:
                self._start_commit()
            elif not self.scheduled:
                self.scheduled = True
                self.loop.call_soon(self._maybe_commit)
        return future

    def stop(self) -> None:
        self.stopping = True
        self.go.set()
        self.thread.join()


async def overlapped(path: Path, runs: int, steps: int, work: float, yield_lock: bool) -> float:
    conn = open_db(path)
    writer = Overlapped(conn, runs, yield_lock=yield_lock)

    async def run(r: int) -> None:
        for s in range(steps):
            busy(work)
            await writer.submit(r, s)

    per_step = await timed(run, runs, steps)
    writer.stop()
    conn.close()
    return per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--work", type=float, default=45.0, help="µs of Python a step")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = args.work / 1e6
    cases = ("turn-taking", "overlapped", "overlapped, no yield")
    times: dict[str, list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for r in range(args.repeat):
            times["turn-taking"].append(
                asyncio.run(turn_taking(d / f"t{r}.db", args.runs, args.steps, work))
            )
            times["overlapped"].append(
                asyncio.run(overlapped(d / f"o{r}.db", args.runs, args.steps, work, True))
            )
            times["overlapped, no yield"].append(
                asyncio.run(overlapped(d / f"n{r}.db", args.runs, args.steps, work, False))
            )
            print(f"round {r + 1}/{args.repeat} done", file=sys.stderr)
    per = {case: statistics.median(values) for case, values in times.items()}
    base = per["turn-taking"]
    print(
        f"{args.runs} coroutines x {args.steps} steps, {args.work:g} us of Python a step,"
        " synchronous=FULL"
    )
    print(f"{'schedule':<24}{'us/step':>9}{'vs turn-taking':>16}")
    for case in cases:
        print(f"{case:<24}{per[case] * 1e6:>9.1f}{per[case] / base:>15.2f}x")
    print(f"median of {args.repeat} interleaved rounds, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
