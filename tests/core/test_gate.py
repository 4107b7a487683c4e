"""The journal's commit gate: mutual exclusion, arrival order, cancellation."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spindle.core.engine._gate import Gate


async def _hold(gate: Gate, name: str, log: list[str], turns: int) -> None:
    async with gate:
        log.append(f"in {name}")
        for _ in range(turns):
            await asyncio.sleep(0)
        log.append(f"out {name}")


def test_an_open_gate_is_taken_and_opened_without_waiting() -> None:
    async def go() -> None:
        gate = Gate()
        assert not gate.busy
        async with gate:
            assert gate.busy
        assert not gate.busy

    asyncio.run(go())


def test_waiters_take_the_gate_one_at_a_time_in_arrival_order() -> None:
    async def go() -> list[str]:
        gate = Gate()
        log: list[str] = []
        await asyncio.gather(*(_hold(gate, n, log, 3) for n in "abcd"))
        assert not gate.busy
        return log

    log = asyncio.run(go())
    assert log == [f"{side} {n}" for n in "abcd" for side in ("in", "out")]


def test_a_caller_arriving_at_release_does_not_overtake_the_waiters() -> None:
    async def go() -> list[str]:
        gate = Gate()
        log: list[str] = []
        gate.busy = True  # taken by "first"
        waiting = asyncio.ensure_future(_hold(gate, "waiter", log, 0))
        await asyncio.sleep(0)  # the waiter queues
        gate.release()  # handed to the waiter, which has not run yet
        assert gate.busy
        late = asyncio.ensure_future(_hold(gate, "late", log, 0))
        await asyncio.gather(waiting, late)
        return log

    assert asyncio.run(go()) == ["in waiter", "out waiter", "in late", "out late"]


def test_a_waiter_cancelled_while_waiting_never_holds_the_gate() -> None:
    async def go() -> None:
        gate = Gate()
        log: list[str] = []
        gate.busy = True
        cancelled = asyncio.ensure_future(_hold(gate, "cancelled", log, 0))
        after = asyncio.ensure_future(_hold(gate, "after", log, 0))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        gate.release()
        await asyncio.wait_for(after, 10)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert log == ["in after", "out after"]
        assert not gate.busy

    asyncio.run(go())


def test_a_waiter_cancelled_as_it_is_handed_the_gate_hands_it_on() -> None:
    async def go() -> None:
        gate = Gate()
        log: list[str] = []
        gate.busy = True
        first = asyncio.ensure_future(_hold(gate, "first", log, 0))
        second = asyncio.ensure_future(_hold(gate, "second", log, 0))
        await asyncio.sleep(0)
        gate.release()  # handed to "first"...
        first.cancel()  # ...which is cancelled before it runs
        await asyncio.wait_for(second, 10)  # hangs if the gate was not handed on
        with pytest.raises(asyncio.CancelledError):
            await first
        assert log == ["in second", "out second"]
        assert not gate.busy

    asyncio.run(go())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 4), st.booleans()), min_size=1, max_size=12
    )
)
def test_never_two_holders_and_every_survivor_gets_through(
    plan: list[tuple[int, int, bool]],
) -> None:
    """Callers arrive after ``delay`` loop turns, hold for ``turns``, some are cancelled
    at a random moment: at most one holds the gate at once, each caller not cancelled
    gets through, and the gate ends open."""

    async def go() -> None:
        gate = Gate()
        holding = 0
        through: set[int] = set()

        async def caller(i: int, delay: int, turns: int) -> None:
            nonlocal holding
            for _ in range(delay):
                await asyncio.sleep(0)
            async with gate:
                holding += 1
                try:
                    assert holding == 1
                    for _ in range(turns):
                        await asyncio.sleep(0)
                finally:
                    holding -= 1
            through.add(i)

        tasks = [asyncio.ensure_future(caller(i, d, t)) for i, (d, t, _) in enumerate(plan)]
        for i, (delay, _turns, cancel) in enumerate(plan):
            if cancel:
                for _ in range(delay + i % 3):
                    await asyncio.sleep(0)
                tasks[i].cancel()
        # A gate left taken would hang the callers: fail instead.
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        for i, result in enumerate(results):
            if not isinstance(result, asyncio.CancelledError):
                assert result is None and i in through
        assert not gate.busy and holding == 0

    asyncio.run(go())
