"""What a step on SQLite costs below the engine: the store's own statements, replayed raw.

Run: ``python benchmarks/sqlite_floor.py [--steps 5000] [--repeat 7]``

The target "one run of 1,000 chained no-op nodes on SQLite >= 0.4x the raw
INSERT+COMMIT loop" splits a step's time between SQLite and the engine. This
script measures the SQLite part on its own, in one process, rounds
interleaved (the median round is kept):

* ``raw``: the baseline of ``durable_steps.py``, BEGIN IMMEDIATE / INSERT /
  COMMIT of a ledger-sized row (WAL, ``synchronous=NORMAL``);
* ``statements``: a step exactly as the SQLite store writes it for a run it
  committed last (BEGIN IMMEDIATE, the fenced UPDATE of the run's ledger head
  row into the record, the INSERT of the new head, COMMIT), with the store's
  own SQL text, on a file with spindle's schema made by spindle, and a
  record body of the size a no-op node's record has; no Python of spindle's;
* ``statements, no key index``: the same on a copy of the file without the
  ``ledger_key`` index (what the index that keeps ``find_step`` a lookup costs
  each record: a second b-tree page written per commit);
* ``engine``: one run of ``--steps`` chained no-op nodes through ``Engine.run``
  on the SQLite store (as ``durable_steps.py``).

Then it prints what 0.4x of the raw loop leaves for spindle's Python per step
once the statements are paid, against what the engine spends now.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import chain, raw_sqlite
from durable_steps import spindle_steps

from spindle import Settings
from spindle.core.engine import Engine
from spindle.plugins.stores._sqlite_head import INSERT_RECORD
from spindle.plugins.stores._sqlite_known import _STEP_OVER_HEAD
from spindle.plugins.stores._sqlite_schema import HEAD_KIND, SEQ_BITS


async def spindle_file(path: Path, runs_dir: Path) -> None:
    """A store file with spindle's schema and one finished 3-node run in it."""
    async with Engine(f"sqlite:///{path}", settings=Settings(runs_dir=str(runs_dir))) as engine:
        await engine.run(chain(3))


def statements(template: Path, path: Path, steps: int, *, key_index: bool) -> float:
    """Seconds per step: the store's step statements on a copy of ``template``."""
    shutil.copy(template, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if not key_index:
        conn.execute("DROP INDEX ledger_key")
    run_no, run_id = conn.execute("SELECT run_no, run_id FROM runs").fetchone()
    base = run_no << SEQ_BITS
    # The run starts again from an empty ledger: its head row at seq 0, leased to us.
    conn.execute("DELETE FROM ledger WHERE id >= ? AND id < ?", (base, base + (1 << SEQ_BITS)))
    conn.execute("UPDATE runs SET lease_token = 1, event_seq = 0 WHERE run_no = ?", (run_no,))
    digest = "d" * 64
    conn.execute(INSERT_RECORD, (base, "", -1, "", HEAD_KIND, "", "", 0, digest, "", ""))
    head = ""
    stamp = "2026-12-03T14:09:08.131491+00:00"
    start = time.perf_counter()
    for seq in range(steps):
        key = f"{run_id}:s{seq}"
        body = (
            f'{{"attempt":1,"error":null,"finished_at":"{stamp}","idempotency_key":"{key}",'
            f'"kind":"node","node_id":"s{seq}","result":null,"run_id":"{run_id}",'
            f'"seq":{seq},"started_at":"{stamp}","status":"completed"}}'
        )
        record_hash = f"{seq:064x}"
        record = (run_id, seq, f"s{seq}", "node", "completed", key, 1, head, record_hash, body)
        fence = (base | seq, seq, head, run_no, 0, 1)
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute(_STEP_OVER_HEAD, (*record, *fence)).rowcount != 1:
            raise SystemExit("the fenced head UPDATE matched nothing: the replay is wrong")
        conn.execute(
            INSERT_RECORD,
            (base | (seq + 1), "", -1, "", HEAD_KIND, "", "", seq + 1, digest, record_hash, ""),
        )
        conn.execute("COMMIT")
        head = record_hash
    took = time.perf_counter() - start
    conn.close()
    return took / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--chain", type=int, default=1000, help="nodes of the engine's run")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    cases = ("raw", "statements", "statements, no key index", "engine")
    times: dict[str, list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        template = d / "template.db"
        asyncio.run(spindle_file(template, d / "runs"))
        for r in range(args.repeat):
            times["raw"].append(raw_sqlite(d / f"raw{r}.db", args.steps))
            times["statements"].append(
                statements(template, d / f"s{r}.db", args.steps, key_index=True)
            )
            times["statements, no key index"].append(
                statements(template, d / f"n{r}.db", args.steps, key_index=False)
            )
            url = f"sqlite:///{d / f'e{r}.db'}"
            took, _cpu = asyncio.run(spindle_steps(url, d / "runs", args.chain, 1))
            times["engine"].append(took)
            print(f"round {r + 1}/{args.repeat} done", file=sys.stderr)
    per = {case: statistics.median(values) for case, values in times.items()}
    raw = per["raw"]
    print(f"{'case':<28}{'us/step':>9}{'vs raw':>8}")
    for case in cases:
        print(f"{case:<28}{per[case] * 1e6:>9.1f}{raw / per[case]:>7.2f}x")
    budget = raw / 0.4
    python_now = per["engine"] - per["statements"]
    print(
        f"\n0.4x the raw loop is {budget * 1e6:.1f} us a step; the store's statements take "
        f"{per['statements'] * 1e6:.1f} of it ({per['statements, no key index'] * 1e6:.1f} "
        f"without the key index), leaving {(budget - per['statements']) * 1e6:.1f} us for "
        f"spindle's Python, which spends {python_now * 1e6:.1f} us now"
    )
    print(f"median of {args.repeat} interleaved rounds, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
