"""Durations as ``spindle prune --older-than``, ``worker --retention`` and the
``retention`` setting read them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindle.core.errors import ConfigError
from spindle.core.model import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("0s", timedelta(0)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(hours=36)),
        ("2w3d4h5m6s", timedelta(weeks=2, days=3, hours=4, minutes=5, seconds=6)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    """Numbers with units, alone or largest first, parse to their timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("30", "'30' has no unit; did you mean 30d, 30h, 30m or 30s?"),
        ("-1d", "is negative"),
        ("3x", "unknown unit 'x'"),
        ("1h1d", "puts a smaller one first"),
        ("1d1d", "repeats a unit"),
        ("1.5h", "is not a duration"),
        ("1d 2h", "is not a duration"),
        ("soon", "is not a duration"),
        ("99999999999999999w", "too long"),
    ],
)
def test_bad_durations_say_what_is_wrong_and_how_to_write_one(text: str, message: str) -> None:
    """A bad duration raises ConfigError naming the value, the problem and the way to write it."""
    with pytest.raises(ConfigError) as info:
        parse_duration(text, what="--older-than")
    assert str(info.value).startswith("--older-than: ")
    assert message in str(info.value)
    assert "30d" in str(info.value)


@given(st.integers(min_value=0, max_value=10**9))
def test_formatted_durations_parse_back(seconds: int) -> None:
    """format_duration writes what parse_duration reads back to the same value."""
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
