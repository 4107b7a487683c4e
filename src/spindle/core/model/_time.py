"""Time in spindle: aware UTC datetimes, and their ISO-8601 text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

__all__ = ["utcnow"]

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# What that encoder writes for one string (the C function behind ensure_ascii=False).
_ENCODE_STR = json.encoder.encode_basestring


def _iso_json(value: datetime | None) -> str:
    if value is None:
        return "null"
    if value.tzinfo is not UTC:  # spindle's own times are UTC already
        value = value.astimezone(UTC)
    return f'"{value.isoformat()}"'


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:  # spindle's own times are UTC already
        value = value.astimezone(UTC)
    return value.isoformat()


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)
