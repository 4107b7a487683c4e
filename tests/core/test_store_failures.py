"""The engine when its store fails mid-drive: the drive stops, the run stays as it was
last committed, and it resumes once the store works again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from spindle import RunStatus, Workflow
from spindle.core.errors import StoreBusy
from spindle.core.model import StepKind

from .conftest import run


def test_a_sub_step_the_store_cannot_commit_stops_the_drive_and_fails_no_node(
    tmp_path: Path, make_engine: Any
) -> None:
    """A sub-step whose commit meets a lock held past busy_timeout raises StoreBusy out of
    the drive — even when the lock is gone by the time the node ends — instead of
    recording the node as failed; the run resumes to the end, its first sub-step kept."""
    path = tmp_path / "spindle.db"
    url = f"sqlite:///{path}?busy_timeout=0.05"
    wf = Workflow("locked")
    calls: list[str] = []
    locked: list[bool] = []

    @wf.node
    def work(ctx: Any) -> list[str]:
        first = ctx.step(lambda: calls.append("one") or "one", name="one")
        if not locked:  # the first drive: hold the store's lock over step two
            locked.append(True)
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                ctx.step(lambda: "two", name="two")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
        second = ctx.step(lambda: calls.append("two") or "two", name="two")
        return [first, second]

    async def first_drive() -> str:
        async with make_engine(url) as engine:
            with pytest.raises(StoreBusy, match=rf"{path} is locked"):
                await engine.run(wf, run_id="r1")
            state = await engine.store.load_run("r1")
            assert state.status == RunStatus.RUNNING  # not failed: left as committed
            records = await engine.store.ledger("r1")
            assert [r.name for r in records if r.kind == StepKind.CALL] == ["one"]
            return state.run_id

    async def resumed(run_id: str) -> Any:
        async with make_engine(url) as engine:
            return await engine.resume(run_id, workflow=wf)

    run_id = run(first_drive())
    state = run(resumed(run_id))
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"work": ["one", "two"]}
    assert calls == ["one", "two"]  # step one ran once: its record was kept
