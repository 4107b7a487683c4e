"""Durable sub-steps per second: ctx.astep / ctx.step / ctx.amap / ctx.map vs raw sqlite3.

Run: ``python benchmarks/substeps.py [--steps 2000] [--repeat 3] [--concurrency 8]``

One node makes N no-op sub-steps, each committed to the ledger before it
returns. Measured in the same run, interleaved round by round so a noisy
neighbour on the machine skews a round rather than one case:

* the floor: a raw ``sqlite3`` loop of BEGIN IMMEDIATE; INSERT one ledger-sized
  row; COMMIT, in WAL mode, with ``synchronous=NORMAL`` (spindle's default
  durability) and ``synchronous=FULL`` (``durability="full"``);
* spindle on SQLite at both levels: an ``async def`` task awaiting
  ``ctx.astep(noop)`` N times; a sync task in its worker thread calling
  ``ctx.step(noop)`` N times (each commit hops to the event loop and back);
  ``ctx.amap`` and ``ctx.map`` over N items, ``--concurrency`` at a time;
* the same on ``memory://``, for reference (no file, no fsync);
* DBOS, when the ``dbos`` package is importable (it is not a dependency): the
  same workload as N ``@DBOS.step`` calls in one ``@DBOS.workflow``, on a SQLite
  file in a temp directory, in a child process (DBOS is a process-wide
  singleton with background threads) that refuses any network connection but
  loopback. Rows: DBOS's own SQLite settings (rollback journal, FULL), and
  WAL with NORMAL / FULL through a custom engine, so the file settings match.

A run's time covers its start and end commits as well (3 records besides the
N sub-steps). Ratios are taken per round against the raw loop of the same
round, then the median is shown; the target is the async case at the default
level reaching >= 0.4x the raw loop.

Nothing unchecked is timed: in every timed run the step function must have
run N times, and the run must end with its N sub-steps in the ledger as
completed ``call`` records, read back from the file through a separate
sqlite3 connection (for DBOS: N rows in ``operation_outputs`` under a
workflow id never used before); an untimed probe checks that each sub-step's
commit (each DBOS step's output) is in the file before the next one starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spindle import Settings, TaskContext, Workflow
from spindle.core.engine import Engine
from spindle.core.model import StepKind, StepRecord, StepStatus, call_key, utcnow

TARGET = 0.4  # async sub-steps at the default durability, as a fraction of the raw loop
LEVELS = {"normal": "NORMAL", "full": "FULL"}


def cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the raw floor -------------------------------------------------------------------


def ledger_body() -> str:
    """The JSON text a store keeps for one completed no-op sub-step."""
    now = utcnow()
    rec = StepRecord(
        "run-0123456789abcdef",
        0,
        "work",
        StepKind.CALL,
        StepStatus.COMPLETED,
        call_key("run-0123456789abcdef", "work", 0),
        1,
        None,
        None,
        now,
        now,
        name="noop",
    )
    return rec.canonical_body()


def raw_loop(path: Path, n: int, synchronous: str) -> tuple[float, float]:
    """(wall, cpu) seconds for ``n`` BEGIN IMMEDIATE; INSERT; COMMIT on a fresh file."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute(
        "CREATE TABLE t (run_id TEXT, seq INTEGER, hash TEXT, body TEXT, PRIMARY KEY (run_id, seq))"
    )
    body, digest = ledger_body(), "ab" * 32
    t0, c0 = time.perf_counter(), cpu_time()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES (?, ?, ?, ?)", ("run", i, digest, body))
        con.execute("COMMIT")
    took = time.perf_counter() - t0, cpu_time() - c0
    if con.execute("SELECT count(*) FROM t").fetchone()[0] != n:
        raise SystemExit("raw loop: rows missing")
    con.close()
    return took


# --- spindle ---------------------------------------------------------------------------


# Every call of a step function, so a run whose steps were answered from a ledger
# instead of run is caught (list.append is atomic: ctx.map calls from threads).
CALLS: list[None] = []


async def anoop() -> None:
    CALLS.append(None)


def noop() -> None:
    CALLS.append(None)


async def anoop_item(item: int) -> None:
    CALLS.append(None)


def noop_item(item: int) -> None:
    CALLS.append(None)


def workflow(shape: str, n: int, concurrency: int) -> Workflow:
    """One node ``work`` making ``n`` no-op sub-steps the ``shape`` way."""
    wf = Workflow(f"substeps-{shape}-{n}")
    if shape == "astep":

        @wf.node
        async def work(ctx: TaskContext) -> int:
            for _ in range(n):
                await ctx.astep(anoop)
            return n

    elif shape == "step":

        @wf.node
        def work(ctx: TaskContext) -> int:  # a sync task: runs in a worker thread
            for _ in range(n):
                ctx.step(noop)
            return n

    elif shape == "amap":

        @wf.node
        async def work(ctx: TaskContext) -> int:
            await ctx.amap(anoop_item, range(n), concurrency=concurrency)
            return n

    else:

        @wf.node
        def work(ctx: TaskContext) -> int:
            ctx.map(noop_item, range(n), concurrency=concurrency)
            return n

    return wf


SHAPES = {
    "astep": "async task, await ctx.astep",
    "step": "sync task, ctx.step (thread hop)",
    "amap": "async task, ctx.amap",
    "map": "sync task, ctx.map (threads)",
}


def committed_calls(db: Path, run_id: str, node_id: str = "work") -> int:
    """Completed sub-step records of a node in the file, through a connection of our own."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(
            con.execute(
                "SELECT count(*) FROM ledger WHERE run_id = ? AND node_id = ?"
                " AND kind = 'call' AND status = 'completed'",
                (run_id, node_id),
            ).fetchone()[0]
        )
    finally:
        con.close()


async def check_run(engine: Engine, db: Path | None, state: Any, n: int, what: str) -> None:
    """Refuse a timed run whose N sub-steps are not all in the ledger."""
    if state.status.value != "completed":
        raise SystemExit(f"{what}: the run ended {state.status.value}: {state.error}")
    records = await engine.ledger(state.run_id)
    keys = {
        r.idempotency_key
        for r in records
        if r.kind == StepKind.CALL and r.status == StepStatus.COMPLETED
    }
    expected = {call_key(state.run_id, "work", i) for i in range(n)}
    if keys != expected:
        raise SystemExit(f"{what}: the ledger holds {len(keys)} of {n} sub-steps")
    if db is not None and (found := committed_calls(db, state.run_id)) != n:
        raise SystemExit(f"{what}: the file holds {found} of {n} sub-step records")


async def probe(engine: Engine, db: Path, n: int = 25) -> None:
    """Untimed: each sub-step sees every earlier one already committed in the file."""
    wf = Workflow("substeps-probe")

    def seen(run_id: str) -> int:
        return committed_calls(db, run_id, "sync_work")

    async def aseen(run_id: str) -> int:
        return committed_calls(db, run_id, "work")

    @wf.node
    async def work(ctx: TaskContext) -> list[int]:
        return [await ctx.astep(aseen, ctx.run_id, name="seen") for _ in range(n)]

    @wf.node
    def sync_work(ctx: TaskContext) -> list[int]:
        return [ctx.step(seen, ctx.run_id, name="seen") for _ in range(n)]

    state = await engine.run(wf)
    if state.status.value != "completed":
        raise SystemExit(f"probe: the run ended {state.status.value}: {state.error}")
    records = await engine.ledger(state.run_id)
    for node in ("work", "sync_work"):
        (rec,) = [r for r in records if r.node_id == node and r.kind == StepKind.NODE]
        # Sub-step i of a node must find the node's i earlier ones in the file.
        if rec.result != list(range(n)):
            raise SystemExit(f"probe: a sub-step of {node} was not in the file yet: {rec.result}")


async def spindle_round(
    url: str, db: Path | None, runs_dir: Path, durability: str, n: int, concurrency: int
) -> dict[str, tuple[float, float]]:
    """(wall, cpu) seconds per case, on one engine."""
    settings = Settings(runs_dir=str(runs_dir), durability=durability)
    out = {}
    async with Engine(url, settings=settings) as engine:
        store_durability = getattr(engine.store, "durability", durability)
        if db is not None and store_durability != durability:
            raise SystemExit(f"the store runs at durability={store_durability}, not {durability}")
        if db is not None:
            await probe(engine, db)
        empty = workflow("astep", 0, concurrency)
        await engine.run(empty)
        t0, c0 = time.perf_counter(), cpu_time()
        await engine.run(empty)
        out["empty"] = (time.perf_counter() - t0, cpu_time() - c0)
        for shape in SHAPES:
            await engine.run(workflow(shape, 20, concurrency))  # warm-up: threads, statements
            wf = workflow(shape, n, concurrency)
            CALLS.clear()
            t0, c0 = time.perf_counter(), cpu_time()
            state = await engine.run(wf)
            out[shape] = (time.perf_counter() - t0, cpu_time() - c0)
            if len(CALLS) != n:
                raise SystemExit(f"{url} {shape}: the step ran {len(CALLS)} times, not {n}")
            await check_run(engine, db, state, n, f"{url} {shape}")
    return out


# --- DBOS (optional, in a child process) ------------------------------------------------

DBOS_CONFIGS = {
    # name: (journal_mode or None for DBOS's own default, synchronous or None)
    "dbos-default": (None, None),
    "dbos-normal": ("WAL", "NORMAL"),
    "dbos-full": ("WAL", "FULL"),
}


def dbos_missing() -> str | None:
    """Why the DBOS rows cannot run, or None."""
    if importlib.util.find_spec("dbos") is None:
        return "the 'dbos' package is not installed (it is not a dependency; pip install dbos)"
    return None


def guard_network() -> list[str]:
    """Refuse every socket connection but loopback and Unix sockets; record what was tried."""
    tried: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else None
            if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
                tried.append(f"connect {address}")
                raise PermissionError(f"substeps benchmark: no network ({address})")
        elif event == "socket.getaddrinfo" and args[0] not in (None, "localhost", "127.0.0.1"):
            tried.append(f"getaddrinfo {args[0]}")
            raise PermissionError(f"substeps benchmark: no network ({args[0]})")

    sys.addaudithook(hook)
    return tried


def dbos_child(config: str, n: int, directory: Path, tag: str) -> dict[str, Any]:
    """Run in the child: N ``@DBOS.step`` calls in a ``@DBOS.workflow``, async then sync."""
    tried = guard_network()
    for var in [v for v in os.environ if v.startswith("DBOS")]:
        del os.environ[var]  # no cloud or conductor settings from the environment
    import sqlalchemy as sa
    from dbos import DBOS, DBOSConfig, SetWorkflowID

    # A new file and new workflow ids each round: DBOS answers a workflow id it has
    # already run from its records, without running its steps again.
    db = directory / f"{config}-{tag}.sqlite"
    url = f"sqlite:///{db}"
    journal, synchronous = DBOS_CONFIGS[config]
    dbos_config: DBOSConfig = {
        "name": "substeps-bench",
        "system_database_url": url,
        "enable_otlp": False,
        "log_level": "WARNING",
    }
    if journal is not None:
        # DBOS's own engine, plus the file settings spindle uses (WAL, synchronous).
        engine = sa.create_engine(url, pool_size=2, max_overflow=0, pool_timeout=30)

        @sa.event.listens_for(engine, "connect")
        def settings(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = "IMMEDIATE"
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute(f"PRAGMA journal_mode={journal}")
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

        dbos_config["system_database_engine"] = engine
    DBOS(config=dbos_config)

    @DBOS.step()
    async def astep() -> None:
        CALLS.append(None)

    @DBOS.step()
    def step() -> None:
        CALLS.append(None)

    @DBOS.workflow()
    async def aworkflow(count: int) -> int:
        for _ in range(count):
            await astep()
        return count

    @DBOS.workflow()
    def sync_workflow(count: int) -> int:
        for _ in range(count):
            step()
        return count

    def outputs(wid: str) -> int:
        """Step outputs of workflow ``wid`` in the file, through a connection of our own."""
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            sql = "SELECT count(*) FROM operation_outputs WHERE workflow_uuid = ?"
            return int(con.execute(sql, (wid,)).fetchone()[0])
        finally:
            con.close()

    @DBOS.step()
    def seen(wid: str) -> int:
        return outputs(wid)

    @DBOS.workflow()
    def probe(wid: str, count: int) -> list[int]:
        return [seen(wid) for _ in range(count)]

    DBOS.launch()
    out: dict[str, Any] = {}
    try:
        wid = f"probe-{tag}"
        with SetWorkflowID(wid):
            if (saw := probe(wid, 25)) != list(range(25)):
                raise RuntimeError(f"DBOS: a step was not in the file before the next: {saw}")
        for shape, run in (
            ("astep", lambda c: asyncio.run(aworkflow(c))),
            ("step", sync_workflow),
        ):
            with SetWorkflowID(f"warm-{shape}-{tag}"):
                run(20)
            wid = f"timed-{shape}-{tag}"
            CALLS.clear()
            t0, c0 = time.perf_counter(), cpu_time()
            with SetWorkflowID(wid):
                if run(n) != n:
                    raise RuntimeError(f"DBOS {shape}: the workflow returned the wrong count")
            out[shape] = (time.perf_counter() - t0, cpu_time() - c0)
            if len(CALLS) != n:
                raise RuntimeError(f"DBOS {shape}: the step ran {len(CALLS)} times, not {n}")
            if (found := outputs(wid)) != n:
                raise RuntimeError(f"DBOS {shape}: the file holds {found} of {n} step outputs")
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        out["journal_mode"] = con.execute("PRAGMA journal_mode").fetchone()[0]
        con.close()
    finally:
        DBOS.destroy()
    out["network"] = tried
    return out


def dbos_round(config: str, n: int, directory: Path, tag: str) -> dict[str, Any]:
    """One child process's measurements, or ``{"error": why}``."""
    cmd = [sys.executable, __file__, "--dbos-child", config, "--steps", str(n)]
    cmd += ["--dir", str(directory), "--tag", tag]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "the DBOS child timed out after 600 s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the DBOS child failed (exit {done.returncode}): {tail}"}
    return dict(json.loads(lines[-1]))


# --- the table -------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def row(label: str, n: int, walls: list[float], cpus: list[float], note: str = "") -> str:
    wall, cpu = med(walls) / n, med(cpus) / n
    return f"{label:<56}{1 / wall:>10,.0f}{wall * 1e6:>9.1f}{cpu * 1e6:>9.1f}  {note}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="sub-steps per run (N)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the median is shown)")
    parser.add_argument("--concurrency", type=int, default=8, help="for ctx.amap / ctx.map")
    parser.add_argument("--no-dbos", action="store_true", help="skip the DBOS rows")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    parser.add_argument("--dbos-child", choices=list(DBOS_CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.steps
    if args.dbos_child:
        print(json.dumps(dbos_child(args.dbos_child, n, args.dir, args.tag)))
        return

    skip_dbos = "--no-dbos was given" if args.no_dbos else dbos_missing()
    # results[(store, level, case)] = list of (wall, cpu) per round
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    dbos_errors: dict[str, str] = {}
    dbos_notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        for r in range(args.repeat):
            for level, synchronous in LEVELS.items():
                raw = raw_loop(d / f"raw-{level}-{r}.db", n, synchronous)
                results.setdefault(("raw", level, "raw"), []).append(raw)
                db = d / f"spindle-{level}-{r}.db"
                got = asyncio.run(
                    spindle_round(f"sqlite:///{db}", db, d / "runs", level, n, args.concurrency)
                )
                for case, took in got.items():
                    results.setdefault(("sqlite", level, case), []).append(took)
            got = asyncio.run(
                spindle_round("memory://", None, d / "runs", "normal", n, args.concurrency)
            )
            for case, took in got.items():
                results.setdefault(("memory", "-", case), []).append(took)
            if skip_dbos is None:
                for config in DBOS_CONFIGS:
                    if config in dbos_errors:
                        continue
                    out = dbos_round(config, n, d, str(r))
                    if "error" in out:
                        dbos_errors[config] = out["error"]
                        continue
                    if out["network"]:
                        dbos_notes[config] = f"refused network: {out['network']}"
                    dbos_notes.setdefault(config, f"journal_mode={out['journal_mode']}")
                    for case in ("astep", "step"):
                        results.setdefault((config, "-", case), []).append(tuple(out[case]))

    def walls(key: tuple[str, str, str]) -> list[float]:
        return [w for w, _ in results[key]]

    def cpus(key: tuple[str, str, str]) -> list[float]:
        return [c for _, c in results[key]]

    def overhead(key: tuple[str, str, str]) -> str:
        ms = med(walls(key)) * 1e3
        return f"(included above: the run's own start and end, {ms:.2f} ms with no sub-steps)"

    def ratio(key: tuple[str, str, str], base: tuple[str, str, str]) -> float:
        """Median over rounds of (base time / case time): how many times as fast."""
        return med([b / k for k, b in zip(walls(key), walls(base), strict=True)])

    print(
        f"sub-steps: {n} no-op sub-steps per run, {args.repeat} rounds (median), "
        f"concurrency {args.concurrency} for map/amap"
    )
    print(
        f"cpu count {os.cpu_count()}, python {sys.version.split()[0]}, "
        f"sqlite {sqlite3.sqlite_version}"
    )
    header = f"{'case':<56}{'steps/s':>10}{'us/step':>9}{'cpu us':>9}  vs raw sqlite3 loop"
    met = None
    for level, synchronous in LEVELS.items():
        print(f"\ndurability={level} (WAL, synchronous={synchronous})")
        print(header)
        base = ("raw", level, "raw")
        print(row("raw sqlite3 INSERT+COMMIT loop", n, walls(base), cpus(base), "1.00x"))
        for case, label in SHAPES.items():
            key = ("sqlite", level, case)
            x = ratio(key, base)
            note = f"{x:.2f}x"
            if level == "normal" and case == "astep":
                met = x >= TARGET
                note += f"  target >= {TARGET}x: {'met' if met else 'MISSED'}"
            print(row(f"spindle sqlite: {label}", n, walls(key), cpus(key), note))
        print(overhead(("sqlite", level, "empty")))
    print("\nmemory:// (reference: no file, nothing to fsync)")
    print(header.replace("vs raw sqlite3 loop", "vs raw loop (normal)"))
    for case, label in SHAPES.items():
        key = ("memory", "-", case)
        note = f"{ratio(key, ('raw', 'normal', 'raw')):.2f}x"
        print(row(f"spindle memory: {label}", n, walls(key), cpus(key), note))
    print(overhead(("memory", "-", "empty")))

    print("\nDBOS on SQLite: N @DBOS.step calls in one @DBOS.workflow (a child process)")
    if skip_dbos is not None:
        print(f"skipped: {skip_dbos}")
    else:
        import importlib.metadata

        print(f"dbos {importlib.metadata.version('dbos')}")
        print(header.replace("vs raw sqlite3 loop", "spindle sqlite is ... as fast"))
        labels = {
            "dbos-default": ("DBOS's own settings", "full"),
            "dbos-normal": ("WAL, NORMAL", "normal"),
            "dbos-full": ("WAL, FULL", "full"),
        }
        for config, (settings, level) in labels.items():
            if config in dbos_errors:
                print(f"dbos ({settings}): not measured: {dbos_errors[config]}")
                continue
            for case in ("astep", "step"):
                key = (config, "-", case)
                mine = ("sqlite", level, case)
                x = ratio(mine, key)
                what = "async workflow, await step" if case == "astep" else "sync workflow, step"
                note = f"{x:.1f}x (spindle {SHAPES[case].split(',')[0]}, durability={level})"
                print(row(f"dbos ({settings}): {what}", n, walls(key), cpus(key), note))
            print(f"  {dbos_notes[config]}")
    print(
        "\nchecked: in every timed run the step function ran N times and the ledger holds its N"
        "\ncompleted sub-steps, read back from the file through a separate connection (DBOS: N"
        "\nrows in operation_outputs); an untimed probe saw each sub-step's commit (each DBOS"
        "\nstep's output) in the file before the next one began."
    )
    if met is False:
        print(f"target MISSED: async sub-steps below {TARGET}x the raw loop")


if __name__ == "__main__":
    main()
