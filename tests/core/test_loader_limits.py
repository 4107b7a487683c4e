"""The loader's limits and bounded messages, in-process (``tests/e2e/test_cli_hostile_files.py``
drives the same files through the CLI)."""

from __future__ import annotations

import pytest

from spindle import load_workflow_text
from spindle.core._quote import QUOTE_LIMIT, quote
from spindle.core.errors import ValidationError
from spindle.core.model import converter
from spindle.core.workflow._limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_TEXT, MAX_VALUES

# Every test reads its files with libyaml (and json), and again with the pure-Python
# YAML loader alone (see the yaml_reader fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("yaml_reader")


NODE = "nodes:\n  n: {runtime: {kind: command, command: echo}}\n"


def test_the_documented_limits_are_the_enforced_ones():
    """The limits are deliberate numbers (docs/workflow-reference.md renders them)."""
    assert (MAX_FILE_BYTES, MAX_DEPTH, MAX_VALUES, MAX_TEXT) == (1 << 20, 100, 50_000, 4 << 20)


def test_quote_keeps_a_short_repr_whole():
    """A value whose repr fits is quoted as repr() gives it."""
    assert quote({"a": [1, 2]}) == "{'a': [1, 2]}"


def test_quote_cuts_a_long_repr_and_says_how_long_it_was():
    """A long repr is cut to the limit with an ellipsis and its full length."""
    text = quote(["x"] * 10_000)
    assert len(text) < QUOTE_LIMIT + 40
    assert text.endswith(f"... ({len(repr(['x'] * 10_000))} characters)")


def test_a_validation_error_shows_at_most_fifty_problems_of_bounded_length():
    """A thousand long problems print as 50 cut lines and a count; problems keeps them all."""
    exc = ValidationError("bad", [f"{'y' * 5000} @ nodes.n{i}" for i in range(1000)])
    text = str(exc)
    assert len(exc.problems) == 1000
    assert text.count("\n  - ") == 50
    assert text.endswith("... and 950 more problems")
    assert "@ nodes.n0" in text  # the cut keeps the path at the end of a line
    assert len(text) < 60_000


def test_a_wrong_shape_for_outputs_is_a_validation_error_after_other_kinds_loaded():
    """``outputs: []`` stays a ValidationError once other plugin kinds were structured.

    cattrs' gen_structure_mapping registered its bare hook for the type, which
    took over from spindle's shape check after the next registration, so the
    same file raised AttributeError depending on what had loaded before it.
    """
    outputs = "outputs: {o: {kind: file, path: o.txt}}"
    load_workflow_text(
        f"name: a\nnodes:\n  n: {{runtime: {{kind: command, command: echo}}, {outputs}}}\n"
    )

    # a mapping type first structured after that load, as a plugin kind's field is
    converter.structure({}, dict[str, frozenset[int]])
    with pytest.raises(ValidationError, match="expected a mapping, got list"):
        load_workflow_text("name: b\nnodes:\n  n: {runtime: {kind: command}, outputs: []}\n")


def test_an_alias_used_twice_points_its_problems_at_the_alias():
    """A problem inside an aliased mapping is located at the line of the alias that used it."""
    text = (
        "name: x\ninputs:\n  r: &r {max_attempts: nope}\n"
        "nodes:\n  n:\n    runtime: {kind: command}\n    retry: *r\n"
    )
    with pytest.raises(ValidationError) as caught:
        load_workflow_text(text)
    assert any(p.startswith("<string>:7:") for p in caught.value.problems), caught.value.problems


def test_a_document_at_the_value_limit_loads():
    """Exactly at the value limit is allowed; one value more is refused."""
    base = f"name: x\n{NODE}inputs:\n  d: "
    # the document holds 17 values besides the list's items: mappings, keys, scalars
    fill = MAX_VALUES - 17
    load_workflow_text(base + "[" + ", ".join(["1"] * fill) + "]\n")
    with pytest.raises(ValidationError, match="50,000 values"):
        load_workflow_text(base + "[" + ", ".join(["1"] * (fill + 1)) + "]\n")


def test_a_list_past_the_value_limit_is_refused_before_the_rest_is_read():
    """The refusal comes at the value that passes the limit: what follows in the list
    (here a syntax error, which reading it would report instead) is never parsed."""
    items = ", ".join(["1"] * (MAX_VALUES + 10))
    text = f"name: x\n{NODE}inputs:\n  d: [{items}, : : ]\n"
    with pytest.raises(ValidationError, match=r"<string>:5:6: the document holds more than 50,000"):
        load_workflow_text(text)


def test_a_nested_list_past_the_limit_is_refused_at_the_list_holding_too_much():
    half = ", ".join(["1"] * (MAX_VALUES // 2 + 10))
    text = f"name: x\n{NODE}inputs:\n  d: [[{half}],\n      [{half}]]\n"
    with pytest.raises(ValidationError, match=r"<string>:5:6: the document holds more than 50,000"):
        load_workflow_text(text)
