"""What the benchmark scripts share: the raw sqlite3 baseline and the no-op workflows.

Each script in this folder is run as ``python benchmarks/NAME.py``, which puts
this folder first on ``sys.path``, so they import this module as ``_common``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from spindle import Workflow

# A ledger-sized row: what a store writes for one step record, about.
_BODY = '{"kind":"node","status":"completed","result":null}' * 3


async def noop() -> None:
    """A no-op step. ``async def`` so the measurement is the engine, not a thread hop
    (the inline executor runs a sync function in a worker thread)."""
    return


def chain(n: int, fn=noop) -> Workflow:
    """A workflow of ``n`` nodes calling ``fn``, each after the one before."""
    wf = Workflow(f"chain{n}")
    prev = None
    for i in range(n):
        wf.node(fn, name=f"s{i}", after=[prev] if prev else [])
        prev = f"s{i}"
    return wf


def raw_sqlite(path: Path, n: int, *, synchronous: str = "NORMAL") -> float:
    """Seconds per BEGIN IMMEDIATE / INSERT / COMMIT of a ledger-sized row, in WAL mode
    with ``synchronous`` as given (spindle's default durability is NORMAL; FULL
    fsyncs every commit): the least any durable append can cost."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute(
        "CREATE TABLE IF NOT EXISTS t (run_id TEXT, seq INTEGER, body TEXT,"
        " PRIMARY KEY (run_id, seq))"
    )
    start = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES (?, ?, ?)", ("run", i, _BODY))
        con.execute("COMMIT")
    took = time.perf_counter() - start
    con.close()
    return took / n
