"""Cron expressions: parsing the five fields and finding the next time they name.

An expression has five fields, ``minute hour day-of-month month day-of-week``,
each ``*``, a number, a name (``jan``-``dec``, ``sun``-``sat``), a range
``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (``a`` to the field's end), or a
comma-separated list of those; or one of the macros ``@hourly``, ``@daily``
(``@midnight``), ``@weekly``, ``@monthly``, ``@yearly`` (``@annually``).
Day-of-week 0 and 7 are both Sunday.

Day-of-month and day-of-week combine as in Vixie cron: when both are
restricted (neither starts with ``*``) a day matches if *either* does
(``0 0 1 * mon`` is the 1st of the month and every Monday); otherwise both
must match (a ``*`` matches every day).

Times are matched on the wall clock of the expression's time zone
(:mod:`zoneinfo`, UTC by default), and slots are returned as aware UTC
datetimes. Across daylight-saving changes: a local time that does not exist
(the hour skipped when clocks go forward) is skipped, not moved; a local time
that happens twice (the hour repeated when clocks go back) is a slot once, at
its first occurrence.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import frozen

from spindle.core.errors import ValidationError

__all__ = ["Cron", "parse_cron", "time_zone"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {name: (i + 1) % 7 for i, name in enumerate(calendar.day_abbr)}  # mon=1 .. sun=0

#: (name, lowest, highest, names, what is allowed) of each field, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int], str], ...] = (
    ("minute", 0, 59, {}, "0-59"),
    ("hour", 0, 23, {}, "0-23"),
    ("day-of-month", 1, 31, {}, "1-31"),
    ("month", 1, 12, {k.lower(): v for k, v in _MONTHS.items()}, "1-12 or jan-dec"),
    (
        "day-of-week",
        0,
        7,
        {k.lower(): v for k, v in _DAYS.items()},
        "0-7 (0 and 7 are Sunday) or sun-sat",
    ),
)

#: How far ahead a slot is looked for; a valid expression always has one in 8 years
#: (the 29th of February may skip a century year).
_HORIZON_YEARS = 10


@frozen
class Cron:
    """A parsed cron expression in a time zone; :meth:`next_after` finds its slots.

    Example::

        cron = parse_cron("0 3 * * mon-fri", "Europe/Paris")
        cron.next_after(datetime(2024, 3, 29, 12, tzinfo=UTC))  # 2024-04-01 01:00 UTC
    """

    expression: str
    timezone: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]
    any_day: bool  # day-of-month starts with '*'
    any_weekday: bool  # day-of-week starts with '*'
    zone: tzinfo

    def matches(self, when: datetime) -> bool:
        """Whether the wall-clock minute of ``when`` (aware) in the zone is named."""
        local = when.astimezone(self.zone)
        return (
            local.second == 0
            and local.microsecond == 0
            and local.minute in self.minutes
            and local.hour in self.hours
            and local.month in self.months
            and self._day_matches(local.year, local.month, local.day)
        )

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        dom = day in self.days
        dow = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (an aware datetime), in UTC.

        Raises:
            ValueError: ``after`` is naive (its meaning would depend on the local zone).
        """
        if after.tzinfo is None:
            raise ValueError(f"time {after!r} is naive; pass an aware datetime")
        start = after.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        limit = start.year + _HORIZON_YEARS
        candidate = self._next_local(start + timedelta(minutes=1), limit)
        while candidate is not None:
            slot = self._utc(candidate)
            if slot is not None and slot > after:
                return slot
            candidate = self._next_local(candidate + timedelta(minutes=1), limit)
        raise ValueError(f"cron {self.expression!r} names no time in {_HORIZON_YEARS} years")

    def _utc(self, local: datetime) -> datetime | None:
        """``local`` wall time as UTC (its first occurrence); None when it does not exist."""
        slot = local.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if slot.astimezone(self.zone).replace(tzinfo=None) != local:
            return None  # skipped by a clock change
        return slot

    def _next_local(self, t: datetime, limit: int) -> datetime | None:
        """The first naive wall time at or after ``t`` the fields name (None past ``limit``)."""
        while t.year <= limit:
            if t.month not in self.months:
                i = bisect_left(self.months, t.month)
                if i == len(self.months):
                    t = datetime(t.year + 1, self.months[0], 1)
                else:
                    t = datetime(t.year, self.months[i], 1)
                continue
            if not self._day_matches(t.year, t.month, t.day):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                i = bisect_left(self.hours, t.hour)
                if i == len(self.hours):
                    t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                else:
                    t = t.replace(hour=self.hours[i], minute=0)
                continue
            i = bisect_left(self.minutes, t.minute)
            if i == len(self.minutes):
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            return t.replace(minute=self.minutes[i])
        return None


def time_zone(name: str) -> tzinfo:
    """The :mod:`zoneinfo` zone called ``name`` (``UTC`` for ``"UTC"``).

    Raises:
        ValidationError: no such zone.
    """
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone {name!r}",
            [
                f"unknown time zone {name!r}; use an IANA name such as 'UTC', "
                "'Europe/Paris' or 'America/New_York'"
            ],
        ) from None


def parse_cron(expression: str, timezone: str = "UTC") -> Cron:
    """Parse a five-field cron expression (or a macro) in the zone ``timezone``.

    Raises:
        ValidationError: the expression or the zone is invalid; ``problems`` names
            each bad field, what it holds and what is allowed.
    """
    zone = time_zone(timezone)
    text = " ".join(str(expression).split())
    fields_text = MACROS.get(text.lower(), text)
    if fields_text.startswith("@"):
        raise _invalid(expression, [f"unknown macro {text!r}; known: {', '.join(sorted(MACROS))}"])
    parts = fields_text.split(" ")
    if len(parts) != 5:
        raise _invalid(
            expression,
            [f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"],
        )
    problems: list[str] = []
    values = [_field(part, spec, problems) for part, spec in zip(parts, _FIELDS, strict=True)]
    if problems:
        raise _invalid(expression, problems)
    minutes, hours, days, months, weekdays = values
    weekdays = {d % 7 for d in weekdays}
    any_day, any_weekday = parts[2].startswith("*"), parts[4].startswith("*")
    if any_weekday and not any(d <= _longest(m) for d in days for m in months):
        raise _invalid(expression, ["day-of-month and month name no date that exists"])
    return Cron(
        expression=text,
        timezone=timezone,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=tuple(sorted(months)),
        weekdays=frozenset(weekdays),
        any_day=any_day,
        any_weekday=any_weekday,
        zone=zone,
    )


def _longest(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _invalid(expression: str, problems: list[str]) -> ValidationError:
    return ValidationError(f"invalid cron expression {str(expression)!r}", problems)


def _field(
    text: str, spec: tuple[str, int, int, dict[str, int], str], problems: list[str]
) -> set[int]:
    """The values one field names; each problem found is appended to ``problems``."""
    name, low, high, names, allowed = spec
    out: set[int] = set()
    for item in text.split(","):
        try:
            out |= _item(item, low, high, names)
        except ValueError as exc:
            problems.append(f"{name} field {text!r}: {exc} (allowed: {allowed}, '*', a-b, */n)")
    return out


def _item(item: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"step {step_text!r} is not a positive number")
        step = int(step_text)
    if body == "*":
        first, last = low, high
    elif "-" in body:
        a, _, b = body.partition("-")
        first, last = _value(a, low, high, names), _value(b, low, high, names)
        if first > last:
            raise ValueError(f"range {body!r} goes backwards")
    else:
        first = _value(body, low, high, names)
        last = high if slash else first
    return set(range(first, last + 1, step))


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range")
    return value
