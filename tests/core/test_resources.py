"""A node's ``resources:``: amounts as numbers or sizes, checked at load, kept in the definition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindle import Workflow
from spindle.core.errors import ValidationError
from spindle.core.workflow import load_workflow_text, parse_size, resource_amounts


def _noop() -> None:
    return None


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4GiB", 4 * 2**30),
        ("512MB", 512 * 10**6),
        ("512mb", 512 * 10**6),
        ("1.5G", 1_500_000_000),
        ("2 KiB", 2048),
        ("100", 100),
        ("7B", 7),
        ("1TiB", 2**40),
    ],
)
def test_a_size_with_a_unit_is_a_number_of_bytes(text, size):
    """Decimal units count in thousands, binary ones in 1024s; no unit is bytes."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["4 gigs", "GiB", "", "-1GB", "1e3MB", "4GiBs"])
def test_a_size_that_is_not_one_is_refused_naming_the_units(text):
    """Anything but a number and a known unit is a ValueError listing the units."""
    with pytest.raises(ValueError, match="is not a size; write a number with a unit"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["KiB", "MiB", "GiB"]))
def test_binary_units_are_powers_of_1024(count, unit):
    """n KiB/MiB/GiB is n * 1024**k bytes, for every n."""
    power = {"KiB": 1, "MiB": 2, "GiB": 3}[unit]
    assert parse_size(f"{count}{unit}") == count * 1024**power


def test_resource_amounts_are_numbers_with_sizes_in_bytes():
    """Numbers stay as they are; sizes become bytes."""
    assert resource_amounts({"cpu": 2, "memory": "4GiB", "gpu": 0.5}) == {
        "cpu": 2.0,
        "memory": 4 * 2**30,
        "gpu": 0.5,
    }


def test_bad_resources_are_reported_with_their_paths_when_a_file_loads():
    """A bad size and a negative amount each name their resource and path; a boolean is
    not an amount either."""
    text = """
name: r
nodes:
  a:
    runtime: {kind: python_code, code: "result = 1"}
    resources: {memory: 4Gx, cpu: -1}
"""
    with pytest.raises(ValidationError) as info:
        load_workflow_text(text, filename="flow.yaml")
    problems = str(info.value)
    assert "resource 'memory': '4Gx' is not a size" in problems
    assert "@ nodes.a.resources.memory" in problems
    assert "expected an amount of at least 0, got -1 @ nodes.a.resources.cpu" in problems
    with pytest.raises(ValidationError) as info:
        load_workflow_text(text.replace("cpu: -1", "gpu: true"), filename="flow.yaml")
    assert "got bool True @ nodes.a.resources.gpu" in str(info.value)


def test_resources_are_kept_in_the_definition_and_change_the_node_hash():
    """resources round-trip through to_dict/from_dict as written, and count in the hash."""
    plain = Workflow("r")
    plain.node(_noop, name="a")
    sized = Workflow("r")
    sized.node(_noop, name="a", resources={"cpu": 2, "memory": "4GiB"})
    data = sized.to_dict()
    assert data["nodes"]["a"]["resources"] == {"cpu": 2, "memory": "4GiB"}
    assert "resources" not in plain.to_dict()["nodes"]["a"]
    assert Workflow.from_dict(data).nodes["a"].resources == {"cpu": 2, "memory": "4GiB"}
    assert plain.node_hashes()["a"] != sized.node_hashes()["a"]
