"""What a run leaves behind and what is shared between runs (issue 10: the fixed cost
of a run): nothing for the garbage collector, caches that never go stale, and the
same records, hashes and state as computing everything afresh would give."""

from __future__ import annotations

import gc
from typing import Any

from spindle import RunStatus, Workflow

from .conftest import run


async def _noop() -> None:
    return None


def chain(n: int, name: str = "chain") -> Workflow:
    wf = Workflow(f"{name}{n}")
    prev = None
    for i in range(n):
        wf.node(_noop, name=f"s{i}", after=[prev] if prev else [])
        prev = f"s{i}"
    return wf


def test_a_finished_run_leaves_no_reference_cycle(store_url, make_engine):
    """A run's objects are freed when it ends, not left to the cycle collector (which
    would be run every few runs, and scan the whole heap now and then)."""

    async def go() -> int:
        async with make_engine(store_url) as engine:
            wf = chain(3)
            await engine.run(wf)  # imports, schema, the definition kept once
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    state = await engine.run(wf)
                    assert state.status is RunStatus.COMPLETED
                return gc.collect()
            finally:
                gc.enable()

    found: Any = run(go())
    assert found == 0
