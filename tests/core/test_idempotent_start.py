"""Starting a run is idempotent by run id: a retried request never starts the work twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from spindle.core.engine import Engine
from spindle.core.errors import StoreError
from spindle.core.workflow import Workflow

from .conftest import run

CALLS: list[str] = []


def _wf(name: str = "pay") -> Workflow:
    wf = Workflow(name, inputs={"amount": 1})

    @wf.node
    def charge(amount: int) -> int:
        CALLS.append(f"charge {amount}")
        return amount

    return wf


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def test_a_second_start_with_the_same_id_returns_the_first_run(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> tuple[str, str, list[Any]]:
        async with make_engine(store_url) as engine:
            first = await engine.start(_wf(), {"amount": 5}, run_id="order-42")
            second = await engine.start(_wf(), {"amount": 7}, run_id="order-42")
            state = await engine.drive(first)
            runs = await engine.list_runs()
            return first, second, [(r.run_id, r.inputs, state.output) for r in runs]

    first, second, runs = run(main())
    assert first == second == "order-42"
    assert runs == [("order-42", {"amount": 5}, {"charge": 5})]
    assert CALLS == ["charge 5"]


def test_starts_racing_with_one_id_make_one_run(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """Many starts at once (threads of a server, say): one run, every caller gets its id."""

    async def main() -> tuple[list[str], int]:
        async with make_engine(store_url) as engine:
            ids = await asyncio.gather(*(engine.start(_wf(), run_id="same") for _ in range(8)))
            return list(ids), len(await engine.list_runs())

    ids, count = run(main())
    assert ids == ["same"] * 8 and count == 1


def test_a_run_with_a_taken_id_continues_the_existing_run(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> Any:
        async with make_engine(store_url) as engine:
            await engine.start(_wf(), {"amount": 3}, run_id="r")
            return await engine.run(_wf(), {"amount": 9}, run_id="r")

    state = run(main())
    assert state.status.value == "completed" and state.output == {"charge": 3}
    assert CALLS == ["charge 3"]


def test_an_id_taken_by_another_workflow_is_an_error_naming_it(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    async def main() -> None:
        async with make_engine(store_url) as engine:
            await engine.start(_wf("pay"), run_id="x")
            await engine.start(_wf("refund"), run_id="x")

    with pytest.raises(StoreError, match="already exists as a run of workflow 'pay', not 'refund'"):
        run(main())


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "x" * 201, "nul\x00", "sp ace"])
def test_a_run_id_that_could_leave_the_runs_directory_is_refused(
    bad: str, sqlite_url: str, make_engine: Callable[..., Engine], tmp_path: Any
) -> None:
    from spindle.core.errors import ValidationError

    async def main(how: str) -> None:
        async with make_engine(sqlite_url) as engine:
            if how == "start":
                await engine.start(_wf(), run_id=bad)
            else:
                await engine.run(_wf(), run_id=bad)

    for how in ("start", "run"):
        with pytest.raises(ValidationError, match="is not allowed: use 1 to 200 letters"):
            run(main(how))
    assert CALLS == []
    assert not (tmp_path / "escape").exists()
