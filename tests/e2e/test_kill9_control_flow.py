"""Fault injection inside control flow: kill -9 ``spindle run`` mid-map and mid-loop.

Each trial runs the real CLI on a SQLite file, SIGKILLs it once the items (or
iterations) it executed reach a random count, then ``spindle resume RUN_ID``
finishes the run in a new process. Every item must have exactly one
completed record, no item recorded before the kill may run again, and the
output must equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ITEMS = 80

MODULE = """
import os, time

def measure(item, index):
    with open(os.environ["SIDE_LOG"], "a") as log:
        log.write(f"{index}\\n")
    time.sleep(0.01)
    return {"i": index, "sq": item * item}

def step(previous=None, iteration=0):
    with open(os.environ["SIDE_LOG"], "a") as log:
        log.write(f"{iteration}\\n")
    time.sleep(0.15)
    return (previous or 0) + 1
"""

MAP_WF = f"""
name: crashmap
nodes:
  each:
    map:
      over: {{range: {ITEMS}}}
      concurrency: 4
      node:
        runtime: {{kind: python, function: "work:measure"}}
  total:
    inputs: {{xs: each}}
    runtime: {{kind: python_code, code: "result = sum(x['sq'] for x in inputs['xs'])"}}
output: each
"""

LOOP_WF = """
name: crashloop
nodes:
  grow:
    loop:
      body:
        - id: b
          inputs: {previous: previous.b, iteration: iteration}
          runtime: {kind: python, function: "work:step"}
      until: {ge: [b, 6]}
      max_iterations: 20
output: grow
"""


def _setup(tmp_path: Path, name: str, text: str) -> tuple[Path, dict[str, str]]:
    (tmp_path / "work.py").write_text(MODULE, "utf-8")
    wf = tmp_path / name
    wf.write_text(textwrap.dedent(text).lstrip(), "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SPINDLE_STORE"}
    env["SIDE_LOG"] = str(tmp_path / "side.log")
    return wf, env


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "spindle", *args, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout)


def _lines(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(x) for x in path.read_text().split()]


def _kill_when(
    tmp_path: Path, env: dict[str, str], store: str, at: int, *command: str
) -> subprocess.Popen[bytes]:
    """Start ``spindle COMMAND`` and SIGKILL it once the side log has ``at`` lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "spindle", *command, "--store", store, "-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    side = Path(env["SIDE_LOG"])
    deadline = time.monotonic() + 60
    while len(_lines(side)) < at:
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc


def _kill_run_when(tmp_path: Path, env: dict[str, str], wf: Path, store: str, at: int) -> str:
    """Start ``spindle run`` and SIGKILL it once the side log has ``at`` lines; the run id."""
    _kill_when(tmp_path, env, store, at, "run", str(wf))
    code, listing = _cli(tmp_path, env, "runs", "--store", store)
    assert code == 0
    (run,) = listing["runs"]
    assert run["status"] != "completed"
    return str(run["run_id"])


def _verified(tmp_path: Path, env: dict[str, str], store: str, run_id: str) -> None:
    """``spindle ledger verify`` accepts the run's ledger: chain, head and state digest."""
    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "ledger", "verify", run_id, "--store", store],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _completed(tmp_path: Path, env: dict[str, str], store: str, run_id: str) -> Counter[str]:
    code, doc = _cli(tmp_path, env, "ledger", run_id, "--store", store)
    assert code == 0, doc
    records = doc["records"] if isinstance(doc, dict) else doc
    return Counter(
        r["node_id"] for r in records if r["kind"] == "node" and r["status"] == "completed"
    )


def _baseline(tmp_path: Path, name: str, text: str) -> Any:
    clean = tmp_path / "clean"
    clean.mkdir()
    wf, env = _setup(clean, name, text)
    code, doc = _cli(clean, env, "run", str(wf), "--store", f"sqlite:///{clean / 'db'}")
    assert code == 0, doc
    return doc["output"]


@pytest.mark.parametrize("trial", range(3))
def test_a_map_killed_at_a_random_item_resumes_without_redoing_done_items(
    tmp_path: Path, trial: int
) -> None:
    expected = _baseline(tmp_path, "map.yaml", MAP_WF)
    at = random.Random(1000 + trial).randrange(5, ITEMS - 10)
    crash = tmp_path / "crash"
    crash.mkdir()
    wf, env = _setup(crash, "map.yaml", MAP_WF)
    store = f"sqlite:///{crash / 'db'}"
    run_id = _kill_run_when(crash, env, wf, store, at)
    before = _completed(crash, env, store, run_id)
    done_before = {int(n[len("each[") : -1]) for n in before if n.startswith("each[")}
    assert 0 < len(done_before) < ITEMS, (at, sorted(done_before))

    code, doc = _cli(crash, env, "resume", run_id, "--store", store)
    assert code == 0, doc
    assert doc["status"] == "completed"
    assert doc["output"] == expected

    after = _completed(crash, env, store, run_id)
    items = {n for n in after if n.startswith("each[")}
    assert items == {f"each[{i}]" for i in range(ITEMS)}
    assert all(after[f"each[{i}]"] == 1 for i in range(ITEMS)), after
    assert after["each"] == 1 and after["total"] == 1
    runs = Counter(_lines(Path(env["SIDE_LOG"])))
    assert set(runs) == set(range(ITEMS))
    # An item recorded before the kill never ran again; one in flight ran at most twice.
    assert all(runs[i] == 1 for i in done_before), {i: runs[i] for i in done_before}
    assert max(runs.values()) <= 2
    _verified(crash, env, store, run_id)


def test_a_map_killed_again_during_its_resume_finishes_on_the_second_resume(
    tmp_path: Path,
) -> None:
    """Two crashes (one in ``run``, one in ``resume``): each item still completes once,
    none recorded before either crash runs again, the output is the uninterrupted one."""
    expected = _baseline(tmp_path, "map.yaml", MAP_WF)
    rng = random.Random(2024)
    first = rng.randrange(5, ITEMS // 2)
    second = rng.randrange(first + 10, ITEMS - 5)
    crash = tmp_path / "crash"
    crash.mkdir()
    wf, env = _setup(crash, "map.yaml", MAP_WF)
    store = f"sqlite:///{crash / 'db'}"
    run_id = _kill_run_when(crash, env, wf, store, first)
    done_first = set(_completed(crash, env, store, run_id))
    side = Path(env["SIDE_LOG"])
    runs_first = Counter(_lines(side))

    _kill_when(crash, env, store, second, "resume", run_id)
    done_second = set(_completed(crash, env, store, run_id))
    assert done_first < done_second, "the first resume recorded nothing before its kill"
    assert "each" not in done_second
    # What the first resume ran: nothing recorded before the first kill.
    runs_between = Counter(_lines(side)) - runs_first
    assert not {f"each[{i}]" for i in runs_between} & done_first

    code, doc = _cli(crash, env, "resume", run_id, "--store", store)
    assert code == 0, doc
    assert doc["output"] == expected
    after = _completed(crash, env, store, run_id)
    assert {n for n in after if n.startswith("each[")} == {f"each[{i}]" for i in range(ITEMS)}
    assert all(count == 1 for count in after.values()), after
    runs = Counter(_lines(side))
    assert set(runs) == set(range(ITEMS))
    assert max(runs.values()) <= 3
    recorded = {int(n[len("each[") : -1]) for n in done_second if n.startswith("each[")}
    runs_last = runs - runs_first - runs_between
    assert not set(runs_last) & recorded, sorted(set(runs_last) & recorded)
    _verified(crash, env, store, run_id)


def test_a_loop_killed_mid_iteration_resumes_at_that_iteration(tmp_path: Path) -> None:
    expected = _baseline(tmp_path, "loop.yaml", LOOP_WF)
    assert expected == {"b": 6}
    crash = tmp_path / "crash"
    crash.mkdir()
    wf, env = _setup(crash, "loop.yaml", LOOP_WF)
    store = f"sqlite:///{crash / 'db'}"
    run_id = _kill_run_when(crash, env, wf, store, 4)  # iteration 3 started
    before = _completed(crash, env, store, run_id)
    done_before = {n for n in before if n.startswith("grow#") and "/" not in n}
    assert done_before <= {f"grow#{k}" for k in range(4)} and len(done_before) >= 2

    code, doc = _cli(crash, env, "resume", run_id, "--store", store)
    assert code == 0, doc
    assert doc["output"] == expected

    after = _completed(crash, env, store, run_id)
    iterations = [f"grow#{k}" for k in range(6)]
    assert all(after[i] == 1 for i in iterations), after
    assert all(after[f"{i}/b"] == 1 for i in iterations), after
    assert "grow#6" not in after
    runs = Counter(_lines(Path(env["SIDE_LOG"])))
    assert sorted(runs) == list(range(6))
    assert all(runs[int(i[len("grow#") :])] == 1 for i in done_before)
    _verified(crash, env, store, run_id)
