"""A workflow's ``queue:`` field: the queue its runs started detached wait on.

``queue: NAME`` or ``queue: {name: NAME, priority: 5, partition_by: INPUT}``:
runs of the workflow started with ``spindle run --detach`` (or
``Engine.start``) wait on that queue for a worker, in priority order (higher
first), and ``partition_by`` names the input whose value is the run's
partition key (e.g. a tenant), which the queue's partition limit counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define

from spindle.core._quote import quote
from spindle.core.model import QueueSpot, check_queue_name

__all__ = ["QueueSpec", "parse_queue"]

_FIELDS = ("name", "priority", "partition_by")


@define(frozen=True)
class QueueSpec:
    """The queue a workflow's detached runs wait on (see the module docstring)."""

    name: str
    priority: int = 0
    partition_by: str | None = None

    def spot(self, inputs: Mapping[str, Any]) -> QueueSpot:
        """Where a run with ``inputs`` waits: the partition is its ``partition_by`` input."""
        part = None
        if self.partition_by is not None and inputs.get(self.partition_by) is not None:
            part = str(inputs[self.partition_by])
        return QueueSpot(self.name, self.priority, part)

    def to_dict(self) -> dict[str, Any] | str:
        """The field as written in a workflow file (a plain name when that is all)."""
        if self.priority == 0 and self.partition_by is None:
            return self.name
        data: dict[str, Any] = {"name": self.name, "priority": self.priority}
        if self.partition_by is not None:
            data["partition_by"] = self.partition_by
        return data


def parse_queue(value: Any, inputs: Mapping[str, Any], problems: list[str]) -> QueueSpec | None:
    """The ``queue:`` field as a :class:`QueueSpec`, or None (absent, or wrong: each
    problem appended to ``problems`` as ``"message @ path"``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        problems.append(
            f"expected a queue name or a mapping with name, priority and partition_by, got "
            f"{type(value).__name__} {quote(value)} @ queue"
        )
        return None
    before = len(problems)
    for key in value:
        if key not in _FIELDS:
            problems.append(f"unknown field '{key}'; known fields: {', '.join(_FIELDS)} @ queue")
    name: Any = value.get("name")
    try:
        check_queue_name(name)
    except ValueError as exc:
        problems.append(f"{exc} @ queue.name")
    priority = value.get("priority", 0)
    if type(priority) is not int:
        problems.append(
            f"expected an integer (higher runs first), got {type(priority).__name__} "
            f"{quote(priority)} @ queue.priority"
        )
    part = value.get("partition_by")
    if part is not None and part not in inputs:
        known = ", ".join(inputs) or "(none)"
        problems.append(
            f"partition_by names input {quote(part)}, which the workflow does not declare; "
            f"declared inputs: {known} @ queue.partition_by"
        )
    if len(problems) > before:
        return None
    return QueueSpec(name, priority, part)
