"""Cron expressions: parsing, the next slot, daylight-saving changes, and errors."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spindle.core.errors import ValidationError
from spindle.core.model import Cron, parse_cron

PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)


def slots(cron: Cron, after: datetime, n: int) -> list[datetime]:
    out = []
    for _ in range(n):
        after = cron.next_after(after)
        out.append(after)
    return out


def test_the_next_slot_of_a_daily_expression_is_the_next_wall_clock_time() -> None:
    """'0 3 * * *' in Paris is 03:00 Paris time: 02:00 UTC in winter."""
    cron = parse_cron("0 3 * * *", "Europe/Paris")
    assert cron.next_after(utc(2024, 1, 10, 1)) == utc(2024, 1, 10, 2)
    assert cron.next_after(utc(2024, 1, 10, 2)) == utc(2024, 1, 11, 2)
    assert cron.next_after(utc(2024, 7, 10, 2)) == utc(2024, 7, 11, 1)  # summer: UTC+2


def test_the_next_slot_is_strictly_after_the_given_time() -> None:
    """A time exactly on a slot gives the slot after it; seconds are ignored upwards."""
    cron = parse_cron("*/15 * * * *")
    assert cron.next_after(utc(2024, 1, 1, 0, 15)) == utc(2024, 1, 1, 0, 30)
    assert cron.next_after(utc(2024, 1, 1, 0, 14, 59)) == utc(2024, 1, 1, 0, 15)


def test_lists_ranges_steps_and_names_combine() -> None:
    """'5,10-12 */6 * jan,jul mon-fri' names those minutes, hours, months and weekdays."""
    cron = parse_cron("5,10-12 */6 * JAN,jul mon-FRI")
    assert cron.minutes == (5, 10, 11, 12)
    assert cron.hours == (0, 6, 12, 18)
    assert cron.months == (1, 7)
    assert cron.weekdays == frozenset({1, 2, 3, 4, 5})
    first = cron.next_after(utc(2024, 1, 6))  # a Saturday
    assert first == utc(2024, 1, 8, 0, 5)  # Monday


def test_a_step_from_a_start_runs_to_the_end_of_the_field() -> None:
    """'10/20' in the minute field is 10, 30, 50; '1-10/3' is 1, 4, 7, 10."""
    assert parse_cron("10/20 * * * *").minutes == (10, 30, 50)
    assert parse_cron("1-10/3 * * * *").minutes == (1, 4, 7, 10)


def test_seven_and_zero_are_both_sunday() -> None:
    """Day-of-week 7 is Sunday, like 0 and 'sun'."""
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * sun").weekdays == {0}
    assert parse_cron("0 0 * * 7").next_after(utc(2024, 1, 1)) == utc(2024, 1, 7)


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_macros_mean_their_five_fields(macro: str, fields: str) -> None:
    """Each @macro gives the slots of the expression it stands for."""
    t = utc(2024, 5, 17, 13, 7)
    assert slots(parse_cron(macro), t, 3) == slots(parse_cron(fields), t, 3)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    """'0 0 13 * fri' fires on every 13th and on every Friday (Vixie cron's OR)."""
    cron = parse_cron("0 0 13 * fri")
    days = [s.date().isoformat() for s in slots(cron, utc(2024, 9, 1), 4)]
    assert days == ["2024-09-06", "2024-09-13", "2024-09-20", "2024-09-27"]
    days = [s.date().isoformat() for s in slots(cron, utc(2024, 10, 1), 3)]
    assert days == ["2024-10-04", "2024-10-11", "2024-10-13"]


def test_a_star_in_either_day_field_makes_both_apply() -> None:
    """'0 0 */2 * mon' (day-of-month starts with '*'): odd days that are Mondays."""
    cron = parse_cron("0 0 */2 * mon")
    days = [s.date().isoformat() for s in slots(cron, utc(2023, 12, 31), 4)]
    assert days == ["2024-01-01", "2024-01-15", "2024-01-29", "2024-02-05"]


def test_the_29th_of_february_is_found_years_ahead() -> None:
    """'0 0 29 2 *' fires only in leap years."""
    cron = parse_cron("0 0 29 2 *")
    assert slots(cron, utc(2024, 3, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_a_local_time_skipped_by_the_clocks_going_forward_does_not_fire() -> None:
    """In Paris 02:30 does not exist on 2024-03-31: '30 2 * * *' skips that day."""
    cron = parse_cron("30 2 * * *", "Europe/Paris")
    got = slots(cron, paris(2024, 3, 30, 3), 2)
    assert got == [paris(2024, 4, 1, 2, 30), paris(2024, 4, 2, 2, 30)]


def test_a_local_time_repeated_by_the_clocks_going_back_fires_once() -> None:
    """In Paris 02:30 happens twice on 2024-10-27: '30 2 * * *' fires at the first."""
    cron = parse_cron("30 2 * * *", "Europe/Paris")
    got = slots(cron, paris(2024, 10, 26, 12), 2)
    # (an ambiguous local time never equals another zone's: compare in UTC)
    assert got == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    assert got[0] == paris(2024, 10, 27, 2, 30, fold=0).astimezone(UTC)
    # Asked from inside the repeated hour's second pass, the next is the next day's.
    assert cron.next_after(paris(2024, 10, 27, 2, 10, fold=1)) == utc(2024, 10, 28, 1, 30)


def test_every_quarter_hour_across_the_repeated_hour_fires_each_local_time_once() -> None:
    """'*/15 * * * *' in Paris on 2024-10-27: 02:00..02:45 once, then 03:00 an hour on."""
    cron = parse_cron("*/15 * * * *", "Europe/Paris")
    got = slots(cron, paris(2024, 10, 27, 1, 45), 6)
    local = [f"{s.astimezone(PARIS):%H:%M}" for s in got]
    assert local == ["02:00", "02:15", "02:30", "02:45", "03:00", "03:15"]
    assert got[4] - got[3] == timedelta(minutes=75)


def test_an_hourly_expression_skips_the_missing_hour() -> None:
    """'0 * * * *' across the spring change in New York: 01:00 then 03:00 local."""
    cron = parse_cron("0 * * * *", "America/New_York")
    ny = ZoneInfo("America/New_York")
    got = slots(cron, datetime(2024, 3, 10, 0, 30, tzinfo=ny), 3)
    assert [f"{s.astimezone(ny):%H:%M}" for s in got] == ["01:00", "03:00", "04:00"]
    assert got[1] - got[0] == timedelta(hours=1)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("61 * * * *", r"minute field '61': 61 is out of range \(allowed: 0-59"),
        ("* 24 * * *", r"hour field '24': 24 is out of range \(allowed: 0-23"),
        ("* * 0 * *", r"day-of-month field '0': 0 is out of range \(allowed: 1-31"),
        ("* * * 13 *", r"month field '13': 13 is out of range \(allowed: 1-12 or jan-dec,"),
        (
            "* * * * 8",
            r"day-of-week field '8': 8 is out of range "
            r"\(allowed: 0-7 \(0 and 7 are Sunday\) or sun-sat",
        ),
        ("* * * * funday", r"day-of-week field 'funday': 'funday' is not a number or a name"),
        ("*/0 * * * *", r"minute field '\*/0': step '0' is not a positive number"),
        ("30-10 * * * *", r"minute field '30-10': range '30-10' goes backwards"),
        ("* * * *", r"expected 5 fields \(minute hour day-of-month month day-of-week\), got 4"),
        ("@reboot", r"unknown macro '@reboot'; known: @annually"),
        ("0 0 30 2 *", r"day-of-month and month name no date that exists"),
        ("", r"expected 5 fields"),
    ],
)
def test_a_bad_expression_names_the_field_and_what_is_allowed(
    expression: str, expected: str
) -> None:
    """Every problem says which field, what it holds and what the field allows."""
    with pytest.raises(ValidationError, match="invalid cron expression") as info:
        parse_cron(expression)
    assert any(__import__("re").search(expected, p) for p in info.value.problems), (
        info.value.problems
    )


def test_every_bad_field_is_reported_at_once() -> None:
    """Two bad fields: two problems."""
    with pytest.raises(ValidationError) as info:
        parse_cron("99 99 * * *")
    assert [p.split(" field")[0] for p in info.value.problems] == ["minute", "hour"]


def test_a_naive_time_is_refused() -> None:
    """next_after needs an aware datetime: a naive one would mean the local zone."""
    with pytest.raises(ValueError, match="naive"):
        parse_cron("@daily").next_after(datetime(2030, 1, 1))


def test_an_unknown_time_zone_is_an_error_naming_it() -> None:
    """A zone zoneinfo does not know is refused with examples of valid names."""
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        parse_cron("0 3 * * *", "Mars/Olympus")


# --- properties -------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


def _field(values: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


EXPRESSIONS = st.builds(
    " ".join,
    st.tuples(
        _field(["*", "0", "*/15", "5,35", "0-10/5", "59", "*/7"]),
        _field(["*", "2", "*/3", "1-3", "0,12", "23"]),
        _field(["*", "1", "15", "*/10", "31", "1-7"]),
        _field(["*", "*", "*", "3,10", "feb", "*/2"]),
        _field(["*", "*", "mon-fri", "0", "sat,sun", "3"]),
    ),
)
TIMES = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


def _parsed(expression: str, zone: str) -> Cron:
    try:
        return parse_cron(expression, zone)
    except ValidationError:
        assume(False)  # names no date ('31 feb')
        raise


def _is_slot(cron: Cron, when: datetime) -> bool:
    """A wall-clock match at the first occurrence of its local time."""
    local = when.astimezone(cron.zone).replace(tzinfo=None)
    first = local.replace(tzinfo=cron.zone, fold=0).astimezone(UTC)
    return cron.matches(when) and first == when


@settings(max_examples=300, deadline=None)
@given(EXPRESSIONS, st.sampled_from(ZONES), TIMES)
def test_the_next_slot_is_later_matches_and_no_slot_is_skipped(
    expression: str, zone: str, t: datetime
) -> None:
    """next_after(t) is after t, is a slot, and (within two days) no minute between is."""
    cron = _parsed(expression, zone)
    slot = cron.next_after(t)
    assert slot > t
    assert slot.tzinfo is UTC and slot.second == 0 and slot.microsecond == 0
    assert _is_slot(cron, slot)
    minute = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if slot - minute <= timedelta(days=2):
        while minute < slot:
            assert not _is_slot(cron, minute), minute
            minute += timedelta(minutes=1)


@settings(max_examples=100, deadline=None)
@given(EXPRESSIONS, st.sampled_from(ZONES), TIMES)
def test_slots_increase_and_each_local_time_fires_once(
    expression: str, zone: str, t: datetime
) -> None:
    """Successive slots strictly increase and never repeat a wall-clock time."""
    cron = _parsed(expression, zone)
    got = slots(cron, t, 20)
    assert got == sorted(set(got))
    local = [s.astimezone(cron.zone).replace(tzinfo=None) for s in got]
    assert len(set(local)) == len(local)


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_validation_error(text: str) -> None:
    """Arbitrary text never raises anything but ValidationError."""
    with contextlib.suppress(ValidationError):
        parse_cron(text)
