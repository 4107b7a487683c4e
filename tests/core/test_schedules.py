"""Firing schedules: each slot starts one run, by the catch-up rule, on every store.

Time is passed in (``now``): nothing here waits on the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spindle.core.engine import Engine, add_schedule, fire_due_schedules, until_next_slot
from spindle.core.errors import ValidationError
from spindle.core.model import parse_cron, schedule_run_id
from spindle.core.workflow import Workflow, load_workflow_text

from .conftest import run

T0 = datetime(2030, 1, 1, 3, tzinfo=UTC)  # a slot of '0 3 * * *' in UTC
DAY = timedelta(days=1)

WF = """
name: nightly
inputs: {day: none}
schedule: {cron: "0 3 * * *", inputs: {day: scheduled}}
nodes:
  a: {inputs: {d: inputs.day}, runtime: {kind: python_code, code: "result = inputs['d']"}}
"""


def _wf(text: str = WF) -> Workflow:
    return load_workflow_text(text)


def _ids(*slots: datetime, sid: str = "nightly") -> list[str]:
    return [schedule_run_id(sid, s) for s in slots]


async def _runs(engine: Engine) -> list[str]:
    return sorted(r.run_id for r in await engine.list_runs())


def test_a_slot_run_id_names_the_schedule_and_the_slot_in_utc() -> None:
    """sched:ID:YYYYMMDDTHHMMZ, the slot in UTC whatever zone it was given in."""
    slot = datetime(2030, 1, 1, 4, 30, tzinfo=UTC).astimezone()
    assert schedule_run_id("nightly", slot) == "sched:nightly:20300101T0430Z"


def test_a_due_slot_starts_one_pending_run_with_the_schedules_inputs(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """Before the slot nothing fires; at it one run, once however often it is asked."""

    async def main() -> tuple[Any, ...]:
        async with make_engine(store_url) as engine:
            added = await add_schedule(engine, _wf(), since=T0 - timedelta(hours=1))
            early = await fire_due_schedules(engine, T0 - timedelta(seconds=1))
            fired = await fire_due_schedules(engine, T0 + timedelta(seconds=2))
            again = await fire_due_schedules(engine, T0 + timedelta(seconds=3))
            state = await engine.get_run(fired[0])
            kept = await engine.store.get_schedule("nightly")
            return added.next_slot, early, fired, again, state, kept

    next_slot, early, fired, again, state, kept = run(main())
    assert next_slot == T0
    assert (early, fired, again) == ([], _ids(T0), [])
    assert state.status.value == "pending" and state.inputs == {"day": "scheduled"}
    assert state.labels == {"schedule": "nightly", "slot": T0.isoformat()}
    assert (kept.next_slot, kept.last_slot) == (T0 + DAY, T0)


@pytest.mark.parametrize(
    ("catch_up", "fired"),
    [
        ("latest", [4]),
        ("all", [0, 1, 2, 3, 4]),
        (2, [3, 4]),
        ("none", []),
    ],
)
def test_after_downtime_the_catch_up_rule_picks_the_slots(
    store_url: str, make_engine: Callable[..., Engine], catch_up: Any, fired: list[int]
) -> None:
    """Five daily slots missed: latest fires the last, all each, 2 the last two, none none;
    every rule then goes on from the first slot after now."""
    now = T0 + 4 * DAY + timedelta(hours=2)  # two hours after the fifth slot

    async def main() -> tuple[list[str], list[str], Any]:
        async with make_engine(store_url) as engine:
            await add_schedule(engine, _wf(), since=T0, catch_up=catch_up)
            started = await fire_due_schedules(engine, now)
            return started, await _runs(engine), await engine.store.get_schedule("nightly")

    started, runs, kept = run(main())
    expected = _ids(*(T0 + n * DAY for n in fired))
    assert started == expected and runs == sorted(expected)
    assert kept.next_slot == T0 + 5 * DAY
    assert kept.last_slot == (T0 + fired[-1] * DAY if fired else None)


def test_catch_up_none_still_fires_a_slot_on_time(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """With none, the slot a worker sees within ON_TIME seconds fires; a missed one not."""

    async def main() -> tuple[list[str], list[str]]:
        async with make_engine(store_url) as engine:
            await add_schedule(engine, _wf(), since=T0, catch_up="none")
            on_time = await fire_due_schedules(engine, T0 + timedelta(seconds=30))
            missed = await fire_due_schedules(engine, T0 + DAY + timedelta(minutes=5))
            return on_time, missed

    assert run(main()) == (_ids(T0), [])


def test_workers_racing_on_the_same_slots_start_each_once(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """Three engines on one store fire five missed slots at once: five runs, each
    reported by exactly one of them."""
    now = T0 + 4 * DAY + timedelta(minutes=1)

    async def main() -> tuple[list[str], list[str]]:
        engines = [make_engine(store_url) for _ in range(3)]
        async with engines[0], engines[1], engines[2]:
            await add_schedule(engines[0], _wf(), since=T0, catch_up="all")
            results = await asyncio.gather(*(fire_due_schedules(e, now) for e in engines))
            return [r for result in results for r in result], await _runs(engines[0])

    started, runs = run(main())
    expected = _ids(*(T0 + n * DAY for n in range(5)))
    assert sorted(started) == expected
    assert runs == expected


def test_a_slot_started_but_not_claimed_is_claimed_without_a_second_run(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """A worker killed between starting a slot's run and claiming it: the next one
    finds the run there, claims the slot, and starts nothing new."""

    async def main() -> tuple[list[str], list[str], Any]:
        async with make_engine(store_url) as engine:
            wf = _wf()
            await add_schedule(engine, wf, since=T0)
            await engine.start(wf, {"day": "scheduled"}, run_id=_ids(T0)[0])
            started = await fire_due_schedules(engine, T0 + timedelta(seconds=1))
            return started, await _runs(engine), await engine.store.get_schedule("nightly")

    started, runs, kept = run(main())
    assert started == runs == _ids(T0)
    assert kept.next_slot == T0 + DAY


def test_a_paused_schedule_fires_nothing(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """enabled=False: its due slots are left alone."""

    async def main() -> tuple[list[str], list[str]]:
        async with make_engine(store_url) as engine:
            added = await add_schedule(engine, _wf(), since=T0)
            added.enabled = False
            await engine.store.put_schedule(added)
            return await fire_due_schedules(engine, T0 + DAY), await _runs(engine)

    assert run(main()) == ([], [])


def test_slots_follow_the_schedules_time_zone(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """'0 3 * * *' in Paris fires at 02:00 UTC in winter and 01:00 UTC in summer."""
    winter, summer = datetime(2030, 1, 10, 2, tzinfo=UTC), datetime(2030, 7, 10, 1, tzinfo=UTC)

    async def main() -> list[list[str]]:
        async with make_engine(store_url) as engine:
            out = []
            for sid, slot in (("w", winter), ("s", summer)):
                await add_schedule(
                    engine, _wf(), schedule_id=sid, timezone="Europe/Paris", since=slot - DAY / 2
                )
                out.append(await fire_due_schedules(engine, slot + timedelta(seconds=1)))
                await engine.store.delete_schedule(sid)
            return out

    assert run(main()) == [_ids(winter, sid="w"), _ids(summer, sid="s")]


def test_a_worker_waits_no_longer_than_the_next_slot(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """until_next_slot is the time to the earliest enabled slot, at most the poll."""

    async def main() -> tuple[float, float, float]:
        async with make_engine(store_url) as engine:
            none = await until_next_slot(engine, T0, 5.0)
            await add_schedule(engine, _wf(), since=T0)
            return (
                none,
                await until_next_slot(engine, T0 - timedelta(seconds=2), 5.0),
                await until_next_slot(engine, T0 - timedelta(hours=1), 5.0),
            )

    assert run(main()) == (5.0, 2.0, 5.0)


def test_adding_a_schedule_checks_what_it_is_given(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """No expression, an unknown input, a bad id or a taken id is a ValidationError."""
    plain = WF.replace('schedule: {cron: "0 3 * * *", inputs: {day: scheduled}}\n', "")

    async def main() -> list[str]:
        errors = []
        async with make_engine(store_url) as engine:
            await add_schedule(engine, _wf())
            attempts: list[dict[str, Any]] = [
                {"workflow": _wf(plain)},
                {"workflow": _wf(), "schedule_id": "x", "inputs": {"nope": 1}},
                {"workflow": _wf(), "schedule_id": "a:b"},
                {"workflow": _wf()},
                {"workflow": _wf(), "schedule_id": "y", "cron": "0 3 * *"},
            ]
            for kwargs in attempts:
                with pytest.raises(ValidationError) as info:
                    await add_schedule(engine, **kwargs)
                errors.append(str(info.value))
        return errors

    errors = run(main())
    assert "has no schedule: field; give a cron expression" in errors[0]
    assert "unknown input 'nope'" in errors[1]
    assert "schedule id 'a:b' is not allowed" in errors[2]
    assert "schedule 'nightly' exists already" in errors[3]
    assert "expected 5 fields" in errors[4]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=8),
    st.sampled_from(["*/7 * * * *", "0,30 * * * *", "*/15 1-3 * * *"]),
)
def test_with_catch_up_all_every_slot_up_to_the_last_look_runs_once(
    minutes: list[int], cron: str
) -> None:
    """Whatever the times workers look (three engines on one store, in any order),
    catch_up all starts each slot up to the last look exactly once."""
    looks = [T0 + timedelta(minutes=m) for m in sorted(minutes)]

    async def main() -> tuple[list[str], list[str]]:
        from spindle.plugins.stores.memory import MemoryStore

        store = MemoryStore.from_url("memory://")
        engines = [Engine(store) for _ in range(3)]
        await add_schedule(engines[0], _wf(), cron=cron, since=T0, catch_up="all")
        started: list[str] = []
        for i, now in enumerate(looks):
            results = await asyncio.gather(
                *(fire_due_schedules(e, now) for e in engines[i % 3 :] + engines[: i % 3])
            )
            started += [r for result in results for r in result]
        return started, await _runs(engines[0])

    started, runs = asyncio.run(main())
    parsed = parse_cron(cron)
    expected, slot = [], parsed.next_after(T0 - timedelta(microseconds=1))
    while slot <= looks[-1]:
        expected.append(schedule_run_id("nightly", slot))
        slot = parsed.next_after(slot)
    assert sorted(started) == runs == sorted(expected)


def test_a_scheduled_run_waits_on_its_workflows_queue(
    store_url: str, make_engine: Callable[..., Engine]
) -> None:
    """A workflow with queue: keeps it in the stored definition, so its slot runs do too."""
    text = WF.replace("nodes:\n", "queue: {name: nightly-q, priority: 3}\nnodes:\n")

    async def main() -> Any:
        async with make_engine(store_url) as engine:
            await add_schedule(engine, _wf(text), since=T0)
            [run_id] = await fire_due_schedules(engine, T0 + timedelta(seconds=1))
            return (await engine.get_run(run_id)).queue

    spot = run(main())
    assert (spot.name, spot.priority) == ("nightly-q", 3)
