"""Schedules: a workflow started at each slot of a cron expression, once per slot.

A :class:`Schedule` is what a store keeps: the workflow (its stored
definition), the cron expression and zone, the inputs each run gets, the
catch-up rule, and two moving parts: ``next_slot``, the first slot not fired
yet, and ``last_slot``, the last one fired. Workers advance ``next_slot`` with
a compare-and-set (``claim_schedule_slot``), and the run of a slot has an id
derived from the schedule and the slot (:func:`schedule_run_id`), so a slot
starts one run however many workers see it due.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from attrs import define, field

from spindle.core.errors import ValidationError
from spindle.core.model._time import utcnow

__all__ = [
    "CATCH_UP_ALL",
    "CATCH_UP_RULES",
    "ON_TIME",
    "Schedule",
    "catch_up_count",
    "check_catch_up",
    "check_schedule_id",
    "schedule_run_id",
]

#: The named catch-up rules; a positive integer (as text) is also a rule.
CATCH_UP_RULES = ("latest", "all", "none")

#: ``catch_up: all`` fires at most this many missed slots (the most recent ones).
CATCH_UP_ALL = 1000

#: A due slot at most this many seconds old is on time, not missed: it is fired
#: whatever the catch-up rule (a worker polls, so it sees a slot a little late).
ON_TIME = 60.0

_SCHEDULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}\Z")


@define
class Schedule:
    """A stored schedule (see the module docstring).

    Args:
        schedule_id: its name, unique in the store (letters, digits, ``._@-``).
        workflow: the workflow's name (for listings).
        definition_id: the stored definition each run starts from.
        cron: the cron expression (see :func:`~spindle.core.model.parse_cron`).
        timezone: the IANA zone the expression's wall-clock times are in.
        next_slot: the first slot not fired yet (aware UTC).
        inputs: the inputs each run is started with.
        catch_up: which missed slots fire after downtime: ``latest`` (the most
            recent one), ``all`` (each, oldest first, at most :data:`CATCH_UP_ALL`),
            ``none``, or a number N (the N most recent).
        last_slot: the last slot fired, or None.
        enabled: False while paused.
        source: the workflow file the schedule was added from, if any.
        created_at: when it was added.
    """

    schedule_id: str
    workflow: str
    definition_id: str
    cron: str
    timezone: str
    next_slot: datetime
    inputs: dict[str, Any] = field(factory=dict)
    catch_up: str = "latest"
    last_slot: datetime | None = None
    enabled: bool = True
    source: str | None = None
    created_at: datetime = field(factory=utcnow)


def check_schedule_id(schedule_id: str) -> None:
    """Refuse a schedule id that could not be part of a run id.

    Raises:
        ValidationError: the id, and what an id may hold.
    """
    if not isinstance(schedule_id, str) or not _SCHEDULE_ID.match(schedule_id):
        raise ValidationError(
            f"schedule id {schedule_id!r} is not allowed: use 1 to 100 letters, digits and "
            "'.', '_', '@', '-', starting with a letter or digit"
        )


def check_catch_up(value: Any) -> str:
    """The catch-up rule ``value`` names, as stored text.

    Raises:
        ValidationError: not ``latest``, ``all``, ``none`` or a positive integer.
    """
    if type(value) is int and value >= 1:
        return str(value)
    if isinstance(value, str) and (value in CATCH_UP_RULES or (value.isdigit() and int(value))):
        return value
    raise ValidationError(
        f"catch_up {value!r} is not a rule: use 'latest' (the default: the most recent "
        "missed slot), 'all' (every missed slot), 'none', or a positive number N "
        "(the N most recent)"
    )


def catch_up_count(rule: str) -> int:
    """How many missed slots (the most recent) the stored rule ``rule`` fires."""
    if rule == "latest":
        return 1
    if rule == "none":
        return 0
    if rule == "all":
        return CATCH_UP_ALL
    return min(int(rule), CATCH_UP_ALL)


def schedule_run_id(schedule_id: str, slot: datetime) -> str:
    """The id of the run schedule ``schedule_id`` starts for ``slot``:
    ``sched:ID:YYYYMMDDTHHMMZ`` (the slot in UTC)."""
    return f"sched:{schedule_id}:{slot.astimezone(UTC):%Y%m%dT%H%MZ}"
