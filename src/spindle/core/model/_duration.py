"""Durations as people write them: ``30d``, ``12h``, ``90m``, ``45s``, ``1w``, ``1d12h``.

Used by ``spindle prune --older-than``, ``spindle worker --retention`` and the
``retention`` setting, so all three accept and refuse the same text.
"""

from __future__ import annotations

import re
from datetime import timedelta

from spindle.core.errors import ConfigError

__all__ = ["format_duration", "parse_duration"]

#: Unit letter -> seconds, largest first (the order a duration's parts must follow).
_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([a-zA-Z]+)")
_HELP = (
    "write a whole number and a unit -- w (weeks), d (days), h (hours), m (minutes), "
    "s (seconds) -- such as 30d, 12h, 90m, 0s, or several largest first, such as 1d12h"
)


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """The :class:`~datetime.timedelta` ``text`` spells.

    Example::

        parse_duration("1d12h") == timedelta(hours=36)

    Args:
        text: one or more ``<number><unit>`` parts, largest unit first, each
            unit at most once (surrounding spaces are ignored).
        what: how messages name the value (``--older-than``, ``retention``...).

    Raises:
        ConfigError: ``text`` is not such a duration; the message says what is
            wrong and how to write it.
    """
    spelled = text.strip()
    if not spelled:
        raise ConfigError(f"{what}: empty duration; {_HELP}")
    if spelled.startswith("-"):
        raise ConfigError(f"{what}: {text!r} is negative; a duration is 0s or more ({_HELP})")
    if spelled.isdigit():
        raise ConfigError(
            f"{what}: {text!r} has no unit; did you mean {spelled}d, {spelled}h, {spelled}m "
            f"or {spelled}s? ({_HELP})"
        )
    seconds = 0
    position = 0
    last = -1
    order = list(_UNITS)
    for match in _PART.finditer(spelled):
        if match.start() != position:
            break
        number, unit = match.groups()
        key = unit.lower()
        if key not in _UNITS:
            raise ConfigError(f"{what}: {text!r} has unknown unit {unit!r}; {_HELP}")
        rank = order.index(key)
        if rank <= last:
            raise ConfigError(
                f"{what}: {text!r} repeats a unit or puts a smaller one first; {_HELP}"
            )
        last = rank
        seconds += int(number) * _UNITS[key]
        position = match.end()
    if position != len(spelled) or position == 0:
        raise ConfigError(f"{what}: {text!r} is not a duration; {_HELP}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ConfigError(
            f"{what}: {text!r} is too long a duration (the longest is 999999999d); "
            "write a shorter one, such as 30d or 520w"
        ) from None


def format_duration(value: timedelta) -> str:
    """``value`` written the way :func:`parse_duration` reads it (``1d12h``; ``0s``)."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
