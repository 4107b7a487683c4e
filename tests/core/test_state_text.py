"""The text a run's state digest covers is the state's converter form, whatever it holds.

:func:`state_text` writes plain states field by field (the fast way) and
anything else through :meth:`RunState.to_dict`; both must give the text the
converter's output encodes to, byte for byte, or every stored digest would
stop matching its run.
"""

from __future__ import annotations

import enum
from collections import namedtuple
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spindle.core.model import RunState, RunStatus, WaitReason, WaitState, state_text
from spindle.core.model._converter import converter
from spindle.core.model._time import _CANONICAL


def reference_text(state: RunState) -> str:
    """The digest text as first defined: the converter's form without the counters."""
    data = converter.unstructure(state)
    for name in ("step_count", "event_seq", "updated_at", "head"):
        data.pop(name, None)
    return _CANONICAL(data)


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


Pair = namedtuple("Pair", "a b")

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from([Colour.RED, Size.BIG, float("inf")])
)
json_data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        | st.tuples(inner, inner)
    ),
    max_leaves=12,
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])
)
waits = st.builds(
    WaitState,
    key=st.text(max_size=8),
    reason=st.sampled_from(list(WaitReason)),
    node_id=st.text(max_size=8),
    prompt=st.none() | st.text(max_size=8),
    choices=st.none() | st.lists(st.text(max_size=4), max_size=3),
    due_at=st.none() | times,
    created_at=times,
    data=st.dictionaries(st.text(max_size=4), json_data, max_size=2),
)
states = st.builds(
    RunState,
    run_id=st.text(min_size=1, max_size=12),
    workflow=st.text(max_size=12),
    status=st.sampled_from(list(RunStatus)),
    inputs=st.dictionaries(st.text(max_size=6), json_data, max_size=4),
    output=json_data,
    error=st.none() | st.text(max_size=20),
    waits=st.lists(waits, max_size=2),
    parent_run_id=st.none() | st.text(max_size=8),
    parent_wait_key=st.none() | st.text(max_size=8),
    definition_id=st.text(max_size=8),
    created_at=times,
    updated_at=times,
    step_count=st.integers(0, 99),
    event_seq=st.integers(0, 99),
    audit_seq=st.integers(0, 99),
    disposition=st.none() | st.text(max_size=8),
    labels=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(states)
def test_the_digest_text_is_the_converter_form_of_any_state(state: RunState) -> None:
    """Plain or not (enums, tuples, other time zones, waits), the text is the same."""
    assert state_text(state) == reference_text(state)


@pytest.mark.parametrize(
    "inputs",
    [
        {"when": datetime(2024, 5, 1, tzinfo=UTC)},
        {"pair": Pair(1, 2)},
        {1: "int key"},
        {"nested": {"colour": Colour.RED}},
    ],
    ids=["datetime", "namedtuple", "int-key", "enum"],
)
def test_state_text_of_data_the_converter_changes(inputs: dict[Any, Any]) -> None:
    """Data that is not plain JSON goes through the converter, as it always did."""
    state = RunState(run_id="r", workflow="w", inputs=inputs)
    assert state_text(state) == reference_text(state)


@pytest.mark.parametrize(
    "change",
    [
        {"audit_seq": True},
        {"error": 3},
        {"created_at": "2024-05-01"},
        {"inputs": {"x": {1, 2}}},
    ],
    ids=["bool-seq", "int-error", "text-time", "set"],
)
def test_state_text_of_a_malformed_state_fails_or_reads_as_before(change: dict[str, Any]) -> None:
    """A field of the wrong type gives the text, or the error, the converter's way gives."""
    state = RunState(run_id="r", workflow="w")
    for name, value in change.items():
        setattr(state, name, value)
    try:
        expected: Any = reference_text(state)
    except Exception as exc:  # the same exception is what is checked
        with pytest.raises(type(exc)):
            state_text(state)
    else:
        assert state_text(state) == expected


@settings(max_examples=200, deadline=None)
@given(states)
def test_to_dict_is_the_converter_form_of_any_state(state: RunState) -> None:
    """RunState.to_dict (what stores write) encodes as the converter's output does, and
    holds the inputs and output as the converter makes them, whatever the state holds."""
    expected = converter.unstructure(state)
    expected.pop("head", None)
    data = state.to_dict()
    assert _CANONICAL(data) == _CANONICAL(expected)
    assert data["inputs"] == converter.unstructure(state.inputs)
    assert data["output"] == converter.unstructure(state.output)
    assert data["inputs"] is not state.inputs  # a copy, as the converter's
