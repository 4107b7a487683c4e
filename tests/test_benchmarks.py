"""Every script in ``benchmarks/`` still runs to its table, with tiny arguments.

The scripts are what users run to check the performance figures in the docs;
nothing else imports them, so one that no longer matches the code would go
unnoticed. These runs measure nothing (the sizes are far too small): they
only check that each script starts, does its work and prints its result.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# Each script's smallest useful arguments, and a line its result table prints.
TINY: dict[str, tuple[list[str], str]] = {
    "cache": (["--runs", "5", "--repeat", "1", "--work", "1"], "runs/s"),
    "cli_chain": (["--nodes", "5", "--repeat", "1"], "the interpreter exiting"),
    "cold_start": (["--runs", "1", "--warmup", "0", "--plugins", "2"], "spindle --help"),
    "commit_overlap": (
        ["--runs", "4", "--steps", "3", "--work", "1", "--repeat", "1"],
        "overlapped, no yield",
    ),
    "durable_steps": (
        ["--steps", "5", "--runs", "5", "--repeat", "1", "--in-flight", "2"],
        "raw sqlite3 INSERT+COMMIT",
    ),
    "executors": (["--calls", "2", "--commands", "1", "--repeat", "1"], "inline async"),
    "fanout": (["--nodes", "10", "--store", "sqlite", "--repeat", "1"], "per node"),
    "group_commit": (
        ["--runs", "3", "--steps", "2", "--rounds", "1", "--raw", "5"],
        "durability=full, group commit",
    ),
    "hot_path": (["--steps", "5", "--repeat", "1"], "per step"),
    "loading": (["--sizes", "5", "--repeat", "1", "--python-repeat", "1"], "load_workflow"),
    "map_items": (["--items", "10", "--repeat", "1"], "items/s"),
    "observers": (["--nodes", "3", "--runs", "1", "--repeat", "1"], "prometheus"),
    "progress": (["--nodes", "5", "--rounds", "1"], "quiet"),
    "prune": (["--runs", "5", "--records", "2", "--batch", "2"], "pruned/s"),
    "sqlite_floor": (["--steps", "5", "--chain", "5", "--repeat", "1"], "statements"),
    "store_commit": (["--n", "5", "--rounds", "1"], "SQLiteStore.commit"),
    "substeps": (["--steps", "3", "--repeat", "1", "--no-dbos"], "sub-step"),
    "workers": (
        ["--runs", "2", "--sleep", "0", "--store", "sqlite", "--workers", "1"],
        "sqlite",
    ),
}

# Scripts that exit 1 when a target is missed (tiny runs miss them by design).
EXIT_ON_MISS = {"executors"}


def test_every_benchmark_is_smoke_tested() -> None:
    """A new script in benchmarks/ needs its tiny arguments here."""
    scripts = {p.stem for p in BENCHMARKS.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_benchmark_runs(name: str, tmp_path: Path) -> None:
    args, expected = TINY[name]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    allowed = {0, 1} if name in EXIT_ON_MISS else {0}
    assert done.returncode in allowed, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout + done.stderr
