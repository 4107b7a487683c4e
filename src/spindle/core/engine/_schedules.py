"""Schedules: adding one, and firing the slots that are due, exactly once each.

A worker calls :func:`fire_due_schedules` before it looks for due runs. For
each enabled schedule whose ``next_slot`` has come, it picks the slot to fire
by the catch-up rule, starts that slot's run -- a pending run whose id
:func:`~spindle.core.model.schedule_run_id` derives from the schedule and the
slot, started idempotently -- and then claims the slot: a compare-and-set of
the stored ``next_slot`` (``Store.claim_schedule_slot``) that one worker wins.

The start comes before the claim on purpose. Every worker that saw the slot
due starts "its" run, and they are all the same run (the id is the slot's),
so the slot runs once however many workers race; and a worker killed between
the start and the claim leaves the slot unclaimed, so the next worker to look
claims it (its start finds the run there), and a slot is never lost either.

**Catch-up.** The slots from ``next_slot`` up to now are due. A slot at most
:data:`~spindle.core.model.ON_TIME` seconds old is on time (workers poll, so
they see a slot a little late); older ones were missed while no worker ran.
``catch_up: latest`` (the default) fires only the most recent due slot;
``none`` fires it only if it is on time; ``all`` fires every due slot, oldest
first, at most :data:`~spindle.core.model.CATCH_UP_ALL` of them (the most
recent); a number N fires the N most recent. Slots not fired are skipped
(the claim moves ``next_slot`` past them without a run), and the schedule goes
on from the first slot after now.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from attrs import evolve

from spindle.core.errors import SpindleError, StoreError, ValidationError
from spindle.core.model import (
    ON_TIME,
    Cron,
    Schedule,
    catch_up_count,
    check_catch_up,
    check_schedule_id,
    parse_cron,
    schedule_run_id,
    utcnow,
)
from spindle.core.workflow import Workflow, input_values

if TYPE_CHECKING:
    from spindle.core.engine._engine import Engine

__all__ = ["add_schedule", "fire_due_schedules", "serve_schedules", "until_next_slot"]

_log = logging.getLogger("spindle.schedules")

_TICK = timedelta(microseconds=1)


async def add_schedule(
    engine: Engine,
    workflow: Workflow,
    *,
    schedule_id: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    catch_up: str | int | None = None,
    since: datetime | None = None,
    replace: bool = False,
) -> Schedule:
    """Keep a schedule that starts ``workflow`` at each slot of ``cron``.

    What is not given comes from the workflow's ``schedule:`` field (the inputs
    given are laid over its inputs). The workflow's definition is stored now:
    every run starts from it, whatever becomes of the file.

    Args:
        engine: the engine whose store keeps the schedule.
        workflow: what each slot starts.
        schedule_id: its name (default: the workflow's name).
        cron: the expression (default: ``workflow.schedule.cron``).
        timezone: the zone (default: the workflow's, else UTC).
        inputs: inputs of each run.
        catch_up: ``latest``, ``all``, ``none`` or N (see the module docstring).
        since: fire slots from this time on (default: now); a time in the past
            makes the slots since then due at once, under the catch-up rule.
        replace: replace a schedule with the same id instead of refusing.

    Raises:
        ValidationError: no expression, a bad expression, zone, id or catch-up
            rule, inputs the workflow does not take, or the id is taken.
    """
    spec = workflow.schedule
    expression = cron or (spec.cron if spec is not None else None)
    if not expression:
        raise ValidationError(
            f"workflow '{workflow.name}' has no schedule: field; give a cron expression "
            "(--cron '0 3 * * *')"
        )
    zone = timezone or (spec.timezone if spec is not None else "UTC")
    parsed = parse_cron(expression, zone)
    sid = schedule_id or workflow.name
    check_schedule_id(sid)
    values = {**(spec.inputs if spec is not None else {}), **(inputs or {})}
    input_values(workflow, values)  # refuses unknown inputs and missing required ones
    if catch_up is None:
        catch_up = spec.catch_up if spec is not None else "latest"
    rule = check_catch_up(catch_up)
    store = engine.store
    await engine.open()
    if not replace and await store.get_schedule(sid) is not None:
        raise ValidationError(
            f"schedule {sid!r} exists already; remove it first (spindle schedule remove "
            f"{sid}) or give another id"
        )
    definition_id = workflow.definition_id()
    await store.put_definition(definition_id, workflow.to_dict())
    start = (since or utcnow()) - _TICK
    schedule = Schedule(
        schedule_id=sid,
        workflow=workflow.name,
        definition_id=definition_id,
        cron=parsed.expression,
        timezone=zone,
        next_slot=parsed.next_after(start),
        inputs=values,
        catch_up=rule,
        source=workflow.source,
    )
    await store.put_schedule(schedule)
    return schedule


async def fire_due_schedules(engine: Engine, now: datetime) -> list[str]:
    """Start the runs of every schedule slot due at ``now``; return their ids.

    A schedule that cannot fire (its definition is gone, its inputs no longer
    fit) is logged and skipped, and a store that fails is logged too: the next
    call tries again. Never raises a :class:`~spindle.core.errors.SpindleError`.
    """
    started: list[str] = []
    await _fire_listed(engine, now, started)
    return started


async def serve_schedules(engine: Engine, now: datetime) -> datetime | None:
    """:func:`fire_due_schedules`, then the earliest slot still to come (None: none),
    from one read of the schedules: what a worker does before each claim, so it waits
    no longer than that slot. Never raises a :class:`~spindle.core.errors.SpindleError`."""
    after = await _fire_listed(engine, now, [])
    return None if after is None else _next_slot(after, now)


async def until_next_slot(engine: Engine, now: datetime, longest: float) -> float:
    """Seconds from ``now`` to the earliest enabled schedule's next slot, at most
    ``longest`` (a worker waits no longer for new work, so it fires slots on time)."""
    try:
        schedules = await engine.store.list_schedules()
    except SpindleError:
        return longest
    slot = _next_slot(schedules, now)
    return longest if slot is None else min(longest, (slot - now).total_seconds())


def _next_slot(schedules: list[Schedule], now: datetime) -> datetime | None:
    # A slot already due was tried by the last firing (and is tried again after the
    # wait): only slots to come count, or a schedule that cannot fire now would make
    # the worker spin.
    slots = [s.next_slot for s in schedules if s.enabled and s.next_slot > now]
    return min(slots) if slots else None


async def _fire_listed(engine: Engine, now: datetime, started: list[str]) -> list[Schedule] | None:
    """Read the schedules once and fire every due slot (their run ids go to
    ``started``); the schedules as they stand after (None: they could not be read)."""
    try:
        schedules = await engine.store.list_schedules()
    except SpindleError as exc:
        _log.warning("cannot read schedules now, retrying: %s", exc)
        return None
    workflows: dict[str, Workflow] = {}
    after = []
    for schedule in schedules:
        if not schedule.enabled or schedule.next_slot > now:
            after.append(schedule)
            continue
        try:
            current = await _fire(engine, schedule, now, workflows, started)
        except SpindleError as exc:
            _log.warning("schedule %r: cannot fire now, retrying: %s", schedule.schedule_id, exc)
            current = schedule
        if current is not None:
            after.append(current)
    return after


async def _fire(
    engine: Engine,
    schedule: Schedule,
    now: datetime,
    workflows: dict[str, Workflow],
    started: list[str],
) -> Schedule | None:
    """Fire ``schedule``'s due slots one claim at a time, until none is due or it is
    another worker's to fire (its ``next_slot`` moved under us); the schedule as it
    stands after (None: it was removed meanwhile)."""
    cron = parse_cron(schedule.cron, schedule.timezone)
    current: Schedule | None = schedule
    while current is not None and current.enabled and current.next_slot <= now:
        fire, after = _due(cron, current, now)
        # Each claim fires one slot: the oldest to fire, skipping any before it.
        slot = fire[0] if fire else None
        run_id = None
        following = fire[1] if len(fire) > 1 else after
        if slot is not None:
            run_id = await _start(engine, current, slot, workflows)
        won = await engine.store.claim_schedule_slot(
            current.schedule_id, expected=current.next_slot, next_slot=following, fired=slot
        )
        if not won:
            # Claimed by another worker (or paused, removed): look again.
            current = await engine.store.get_schedule(current.schedule_id)
            continue
        if slot is not None and run_id is not None:
            started.append(run_id)
        current = evolve(current, next_slot=following, last_slot=slot or current.last_slot)
    return current


def _due(cron: Cron, schedule: Schedule, now: datetime) -> tuple[list[datetime], datetime]:
    """(the due slots the catch-up rule fires, oldest first; the first slot after now)."""
    keep = catch_up_count(schedule.catch_up)
    recent: deque[datetime] = deque(maxlen=max(keep, 1))
    slot = schedule.next_slot
    while slot <= now:
        recent.append(slot)
        slot = cron.next_after(slot)
    fire = list(recent)
    if keep == 0 and not (fire and (now - fire[-1]).total_seconds() <= ON_TIME):
        fire = []
    return fire, slot


async def _start(
    engine: Engine, schedule: Schedule, slot: datetime, workflows: dict[str, Workflow]
) -> str | None:
    """Start the run of ``slot`` (idempotently: it may be there already); its id.

    A run the workflow refuses (its inputs no longer fit) is logged and the
    slot is left without a run (None); a store failure is raised, so the slot
    is not claimed and is tried again.
    """
    run_id = schedule_run_id(schedule.schedule_id, slot)
    try:
        workflow = workflows.get(schedule.definition_id)
        if workflow is None:
            definition = await engine.store.get_definition(schedule.definition_id)
            workflow = workflows[schedule.definition_id] = Workflow.from_dict(definition)
        labels = {"schedule": schedule.schedule_id, "slot": slot.isoformat()}
        return await engine.start(workflow, schedule.inputs, run_id=run_id, labels=labels)
    except StoreError:
        raise
    except (SpindleError, KeyError) as exc:
        _log.error(
            "schedule %r: slot %s not started (%s); fix the schedule, then remove and add it again",
            schedule.schedule_id,
            slot.isoformat(),
            exc,
        )
        return None
