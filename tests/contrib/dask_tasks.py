"""Task functions the Dask tests run on workers (importable there by module name).

Kept apart from the test module so a worker process imports only this.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def where(text: str) -> dict[str, Any]:
    """Which worker ran it, in which process."""
    from distributed import get_worker

    return {"text": text.upper(), "pid": os.getpid(), "worker": get_worker().address}


def granted() -> dict[str, float]:
    """The resources the scheduler gave this task (its restrictions, as the worker sees them)."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()
    return dict(worker.state.tasks[key].resource_restrictions or {})


def _note_pid(path: Path) -> None:
    """Write this process's pid to ``path`` whole (the test reads it as soon as it exists)."""
    part = path.with_name(path.name + ".part")
    part.write_text(str(os.getpid()))
    part.replace(path)


def _hold(release: Path, limit: float) -> None:
    """Sleep until ``release`` exists (the test is done with us) or ``limit`` seconds pass."""
    end = time.monotonic() + limit
    while not release.exists() and time.monotonic() < end:
        time.sleep(0.05)


def wait_for_release(started: str, release: str) -> str:
    """Note this worker's pid in ``started``, then hold until the test releases it."""
    _note_pid(Path(started))
    _hold(Path(release), 30)
    return "released"


def dies_once(started: str) -> int:
    """The first call notes its pid in ``started`` and holds (the test kills its worker);
    a later call returns at once."""
    path = Path(started)
    if path.exists():
        return os.getpid()
    _note_pid(path)
    _hold(path.with_suffix(".never"), 30)
    return -1


def big(size: int) -> str:
    """A result of ``size`` characters."""
    return "x" * size


def record(log: str, value: str) -> str:
    """A step: note in ``log`` that it ran."""
    with open(log, "a") as f:
        f.write(value + "\n")
    return value


def steps_then_fail(ctx: Any, log: str) -> list[str]:
    """Two durable sub-steps; the first attempt fails after them."""
    first = ctx.step(record, log, "a", name="first")
    second = ctx.step(record, log, "b", name="second")
    if ctx.attempt == 1:
        raise ValueError("the first attempt fails after its steps")
    return [first, second]


def small_cluster() -> Any:
    """A cluster factory (as a dask-jobqueue one would be): one worker thread in-process."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address="127.0.0.1:0",
    )


def not_a_cluster() -> str:
    """A cluster factory that returns something else."""
    return "tcp://127.0.0.1:8786"
