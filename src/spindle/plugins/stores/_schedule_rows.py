"""How the durable stores keep a schedule: its moving parts in columns, the rest as JSON.

``next_slot``, ``last_slot`` and ``enabled`` are columns, so the claim of a slot
is one compare-and-set ``UPDATE`` on a column and never rewrites the body;
everything else (the workflow, the expression, the inputs...) is ``body``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from spindle.core.errors import StoreCorrupt
from spindle.core.model import Schedule, converter
from spindle.plugins.stores._common import stored, to_json

__all__ = ["SQLITE_SCHEDULES", "from_micros", "micros", "schedule_body", "schedule_from"]

#: The SQLite store's schedules table (schema version 6): slots are integer
#: microseconds since the epoch, so the claim's compare-and-set is exact.
SQLITE_SCHEDULES = (
    "CREATE TABLE schedules (schedule_id TEXT PRIMARY KEY, next_slot INTEGER NOT NULL,"
    " last_slot INTEGER, enabled INTEGER NOT NULL DEFAULT 1, body TEXT NOT NULL) WITHOUT ROWID"
)

_MOVING = ("next_slot", "last_slot", "enabled")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schedule_body(schedule: Schedule) -> str:
    """The JSON text of ``schedule`` without its moving parts."""
    data = converter.unstructure(schedule)
    return to_json(
        {k: v for k, v in data.items() if k not in _MOVING},
        f"schedule {schedule.schedule_id!r}",
    )


def schedule_from(
    body: str,
    next_slot: datetime,
    last_slot: datetime | None,
    enabled: bool,
    *,
    where: str,
    medium: str,
) -> Schedule:
    """The schedule a row holds.

    Raises:
        StoreCorrupt: the body is not what spindle wrote.
    """
    try:
        data: dict[str, Any] = json.loads(body)
    except ValueError as exc:
        raise StoreCorrupt(
            f"{where}: a stored schedule cannot be read ({exc}); the {medium} was edited"
        ) from exc
    data.update(
        next_slot=next_slot.isoformat(),
        last_slot=None if last_slot is None else last_slot.isoformat(),
        enabled=bool(enabled),
    )
    return stored(json.dumps(data), Schedule, "schedule", where, medium)


def micros(when: datetime) -> int:
    """Microseconds since the epoch, exactly (what SQLite keeps slots as)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """The aware UTC datetime :func:`micros` made ``value`` of."""
    return _EPOCH + timedelta(microseconds=value)
