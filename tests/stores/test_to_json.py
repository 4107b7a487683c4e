"""``to_json``: plain data is encoded as it is, anything else through the converter first,
and the text is the same either way."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime

import pytest
from attrs import define
from hypothesis import given
from hypothesis import strategies as st

from spindle.core.errors import StoreError
from spindle.core.model import converter
from spindle.plugins.stores._common import dumps, to_json


class Color(enum.Enum):
    RED = "red"


class Size(enum.StrEnum):
    BIG = "big"


@define
class Point:
    x: int
    when: datetime


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from([Color.RED, Size.BIG]),
    st.builds(Point, st.integers(), st.datetimes(timezones=st.just(UTC))),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_values)
def test_text_is_what_the_converter_then_the_encoder_give(value: object) -> None:
    assert to_json(value, "x") == dumps(converter.unstructure(value))


def test_plain_data_is_not_walked_by_the_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        def unstructure(self, value: object) -> object:
            raise AssertionError("the converter ran on plain data")

    monkeypatch.setattr("spindle.plugins.stores._common.converter", Refusing())
    data = {"nodes": {"a": {"runtime": {"kind": "python"}, "after": ["b"]}}, "n": 1.5}
    assert json.loads(to_json(data, "definition")) == data


def test_what_neither_can_encode_is_a_store_error_naming_it() -> None:
    with pytest.raises(StoreError, match=r"event 'k' payload is not JSON-serializable"):
        to_json({"a": {1, 2}}, "event 'k' payload")
