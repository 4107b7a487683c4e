"""A workflow file's ``schedule:`` field: when the workflow is to be started.

``schedule: {cron: "0 3 * * *", timezone: Europe/Paris, inputs: {...}, catch_up: latest}``
is checked when the file loads (a bad expression or zone is a load error at
its line, like any field's) and kept as :attr:`Workflow.schedule`. It is not
part of the stored definition nor its id: when a workflow runs does not change
what it runs. ``spindle schedule add FILE`` is what makes workers start it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define, field

from spindle.core._quote import quote
from spindle.core.errors import ValidationError
from spindle.core.model import CATCH_UP_RULES, check_catch_up, parse_cron

__all__ = ["SCHEDULE_SCHEMA", "ScheduleSpec", "structure_schedule"]

_FIELDS = ("cron", "timezone", "inputs", "catch_up")


@define
class ScheduleSpec:
    """What a workflow file's ``schedule:`` says (see the module docstring)."""

    cron: str
    timezone: str = "UTC"
    inputs: dict[str, Any] = field(factory=dict)
    catch_up: str = "latest"


#: The JSON Schema of the ``schedule`` field (``spindle schema``).
SCHEDULE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": (
        "Start the workflow on a cron schedule, once per slot across all workers, once "
        "it is registered with `spindle schedule add FILE` (see schedules.md)."
    ),
    "properties": {
        "cron": {
            "type": "string",
            "description": "Five fields `minute hour day-of-month month day-of-week`, "
            "or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.",
        },
        "timezone": {
            "type": "string",
            "default": "UTC",
            "description": "The IANA zone the expression's wall-clock times are in.",
        },
        "inputs": {
            "type": "object",
            "description": "Inputs each scheduled run is started with.",
            "additionalProperties": {},
        },
        "catch_up": {
            "anyOf": [
                {"enum": list(CATCH_UP_RULES)},
                {"type": "integer", "minimum": 1},
            ],
            "default": "latest",
            "description": "Which slots missed while no worker ran are fired: `latest` "
            "(the most recent), `all` (each, at most 1000), `none`, or N (the N most recent).",
        },
    },
    "required": ["cron"],
    "additionalProperties": False,
}


def structure_schedule(raw: Any, problems: list[str]) -> ScheduleSpec | None:
    """The ``schedule:`` field as a :class:`ScheduleSpec`; each problem is appended to
    ``problems`` as ``"message @ schedule.FIELD"`` (None when absent or invalid)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(
            f"expected a mapping {{cron: ..., timezone: ...}}, got {type(raw).__name__} "
            f"{quote(raw)} @ schedule"
        )
        return None
    found = len(problems)
    for key in raw:
        if key not in _FIELDS:
            problems.append(
                f"unknown field '{key}' in schedule; known fields: {', '.join(_FIELDS)} "
                f"@ schedule.{key}"
            )
    cron, zone = raw.get("cron"), raw.get("timezone", "UTC")
    if not isinstance(cron, str):
        problems.append(
            f"required field 'cron' missing or not a string (a cron expression such as "
            f"'0 3 * * *'), got {quote(cron)} @ schedule.cron"
        )
    if not isinstance(zone, str):
        problems.append(f"expected a time zone name, got {quote(zone)} @ schedule.timezone")
    elif isinstance(cron, str):
        try:
            parse_cron(cron, zone)
        except ValidationError as exc:
            where = "timezone" if exc.summary.startswith("unknown time zone") else "cron"
            problems.extend(f"{exc.summary}: {p} @ schedule.{where}" for p in exc.problems)
    inputs = raw.get("inputs") or {}
    if not isinstance(inputs, Mapping):
        problems.append(
            f"expected a mapping of input values, got {quote(inputs)} @ schedule.inputs"
        )
    catch_up = raw.get("catch_up", "latest")
    try:
        catch_up = check_catch_up(catch_up)
    except ValidationError as exc:
        problems.append(f"{exc} @ schedule.catch_up")
    if len(problems) > found:
        return None
    return ScheduleSpec(cron=str(cron), timezone=str(zone), inputs=dict(inputs), catch_up=catch_up)
