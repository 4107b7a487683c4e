"""The worked examples of docs/workflows-as-code.md run as the page says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from spindle import Engine, RunStatus, Settings

from .test_docs import _fenced

PAGE = Path(__file__).resolve().parents[1] / "docs" / "workflows-as-code.md"


def _load(after: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(_fenced(PAGE, "python", after), str(PAGE), "exec"), namespace)
    return namespace


def test_the_refund_charges_once_asks_and_sends_one_email(tmp_path):
    """The refund waits for its approval, then completes; the card is charged once."""
    example = _load("## A worked example")
    charges: list[str] = []
    charge = example["charge_card"]

    def counting_charge(customer: str, amount: int) -> str:
        charges.append(customer)
        return charge(customer, amount)

    counting_charge.__qualname__ = charge.__qualname__
    example["refund"].__globals__["charge_card"] = counting_charge

    async def main():
        settings = Settings(runs_dir=str(tmp_path / "runs"))
        async with Engine(f"sqlite:///{tmp_path / 'db.sqlite'}", settings=settings) as engine:
            state = await engine.run(example["wf"])
            done = await engine.resume(state.run_id, state.waits[0].key, "yes")
            return state, done, await engine.ledger(done.run_id)

    state, done, records = asyncio.run(main())
    assert state.status == RunStatus.WAITING and state.waits[0].key == "refund.1"
    assert done.status == RunStatus.COMPLETED
    assert done.output == {"refund": {"receipt": "refund-ada-120", "refunded": True}}
    assert charges == ["ada"]
    assert example["SENT"] == ["ada: your refund refund-ada-120 is on its way"]
    assert [r.name for r in records if r.kind == "call"] == ["charge", "ask_user", "email"]


def test_the_parallel_example_keeps_values_in_call_order(tmp_path):
    """gather and amap return their values in call order."""
    from spindle import Workflow

    example = _load("## Parallel steps")
    wf = Workflow("prices")
    wf.node(example["prices"])

    async def main():
        async with Engine("memory://", settings=Settings(runs_dir=str(tmp_path))) as engine:
            return await engine.run(wf)

    assert asyncio.run(main()).output == {"prices": [120.0, 132.0]}
