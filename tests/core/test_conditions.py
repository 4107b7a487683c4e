"""The condition language of ``when:``/``until:``: its checks at load and its evaluation."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindle.core.errors import ValidationError
from spindle.core.workflow import load_workflow_text
from spindle.core.workflow._conditions import (
    MISSING,
    ConditionError,
    condition_problems,
    condition_refs,
    describe,
    evaluate,
)


def _ok(ref: str) -> str | None:
    return None


def _shape(cond: Any) -> list[str]:
    return condition_problems(cond, "nodes.n.when", _ok)


# --- evaluation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "values", "expected"),
    [
        ({"eq": ["a", 1]}, {"a": 1}, True),
        ({"eq": ["a", 1]}, {"a": 2}, False),
        ({"ne": ["a", 1]}, {"a": 2}, True),
        ({"lt": ["a", 1]}, {"a": 0.5}, True),
        ({"le": ["a", 1]}, {"a": 1}, True),
        ({"gt": ["a", 0.5]}, {"a": 0.7}, True),
        ({"ge": ["a", 0.5]}, {"a": 0.4}, False),
        ({"gt": ["a", "b"]}, {"a": "c"}, True),
        ({"in": ["a", ["x", "y"]]}, {"a": "y"}, True),
        ({"not_in": ["a", ["x", "y"]]}, {"a": "z"}, True),
        ({"contains": ["a", "ell"]}, {"a": "hello"}, True),
        ({"contains": ["a", 3]}, {"a": [1, 2, 3]}, True),
        ({"contains": ["a", "k"]}, {"a": {"k": 1}}, True),
        ({"contains": ["a", 3]}, {"a": "123"}, False),
        ({"exists": "a"}, {"a": 0}, True),
        ({"exists": "a"}, {"a": None}, False),
        ({"truthy": "a"}, {"a": 0}, False),
        ({"truthy": "a"}, {"a": [0]}, True),
        ({"all": [{"gt": ["s", 0.5]}, {"eq": ["ok", "yes"]}]}, {"s": 0.9, "ok": "yes"}, True),
        ({"all": [{"gt": ["s", 0.5]}, {"eq": ["ok", "yes"]}]}, {"s": 0.9, "ok": "no"}, False),
        ({"any": [{"gt": ["s", 0.5]}, {"eq": ["ok", "yes"]}]}, {"s": 0.1, "ok": "yes"}, True),
        ({"not": {"eq": ["a", 1]}}, {"a": 1}, False),
    ],
)
def test_each_operator_decides_as_documented(cond: Any, values: Any, expected: bool) -> None:
    assert _shape(cond) == []
    assert evaluate(cond, values.__getitem__) is expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"eq": ["a", None]}, False),
        ({"ne": ["a", 1]}, True),
        ({"lt": ["a", 1]}, False),
        ({"ge": ["a", 1]}, False),
        ({"in": ["a", [1]]}, False),
        ({"not_in": ["a", [1]]}, True),
        ({"contains": ["a", 1]}, False),
        ({"exists": "a"}, False),
        ({"truthy": "a"}, False),
        ({"not": {"exists": "a"}}, True),
    ],
)
def test_a_missing_value_fails_every_test_but_ne_and_not_in(cond: Any, expected: bool) -> None:
    assert evaluate(cond, lambda ref: MISSING) is expected


@pytest.mark.parametrize(
    ("cond", "value"),
    [({"lt": ["a", 1]}, "text"), ({"gt": ["a", "b"]}, 3), ({"ge": ["a", 1]}, True)],
)
def test_values_that_do_not_order_raise_a_clear_error_not_a_guess(cond: Any, value: Any) -> None:
    with pytest.raises(ConditionError, match="cannot apply"):
        evaluate(cond, lambda ref: value)


def test_any_stops_at_the_first_true_and_all_at_the_first_false() -> None:
    asked: list[str] = []

    def lookup(ref: str) -> Any:
        asked.append(ref)
        return 1

    evaluate({"any": [{"eq": ["a", 1]}, {"eq": ["b", 1]}]}, lookup)
    evaluate({"all": [{"eq": ["c", 2]}, {"eq": ["d", 1]}]}, lookup)
    assert asked == ["a", "c"]


def test_refs_are_listed_once_in_written_order() -> None:
    cond = {"all": [{"gt": ["b", 1]}, {"any": [{"exists": "a"}, {"eq": ["b", 2]}]}]}
    assert condition_refs(cond) == ["b", "a"]


def test_describe_reads_like_the_condition() -> None:
    cond = {"all": [{"gt": ["score", 0.5]}, {"any": [{"eq": ["ok", "yes"]}, {"truthy": "x"}]}]}
    assert describe(cond) == 'score > 0.5 and (ok == "yes" or x)'
    assert describe({"not": {"in": ["a", [1, 2]]}}) == "not (a in [1, 2])"


# --- shape checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"gt": ["a", 1], "lt": ["a", 2]}, "exactly one operator"),
        ({}, "exactly one operator"),
        ("a > 1", "exactly one operator"),
        ({"gte": ["a", 1]}, "did you mean 'ge'"),
        ({"eq": "a"}, "takes a list [REF, VALUE]"),
        ({"eq": ["a", 1, 2]}, "takes a list [REF, VALUE]"),
        ({"eq": [3, 1]}, "must be a node reference text"),
        ({"eq": ["a..b", 1]}, "malformed reference"),
        ({"eq": ["a b", 1]}, "malformed reference"),
        ({"in": ["a", "xy"]}, "needs a list of values"),
        ({"lt": ["a", [1]]}, "compares with a number or a text"),
        ({"lt": ["a", True]}, "compares with a number or a text"),
        ({"eq": ["a", {"b": 1}]}, "use a Python predicate"),
        ({"all": []}, "non-empty list of conditions"),
        ({"any": {"eq": ["a", 1]}}, "non-empty list of conditions"),
        ({"exists": ["a"]}, "must be a node reference text"),
        ({"not": [{"eq": ["a", 1]}]}, "exactly one operator"),
    ],
)
def test_malformed_conditions_say_what_is_wrong_and_where(cond: Any, message: str) -> None:
    problems = _shape(cond)
    assert problems and message in problems[0], problems
    assert "@ nodes.n.when" in problems[0]


def test_a_problem_deep_inside_names_its_path() -> None:
    (problem,) = _shape({"all": [{"eq": ["a", 1]}, {"not": {"lt": ["a", "x", 3]}}]})
    assert problem.endswith("@ nodes.n.when.all.1.not.lt")


def test_nesting_is_bounded_so_a_hostile_file_cannot_overflow_the_stack() -> None:
    cond: Any = {"exists": "a"}
    for _ in range(5000):
        cond = {"not": cond}
    (problem,) = _shape(cond)
    assert "nests deeper than" in problem


def test_a_reference_is_never_evaluated_as_code() -> None:
    seen: list[str] = []
    cond = {"eq": ["__import__('os').system('false')", 1]}
    assert "malformed reference" in _shape(cond)[0]
    # Even if a lookup were handed such a text, evaluation only asks the lookup.
    assert evaluate({"eq": ["x.y", 1]}, lambda ref: seen.append(ref) or MISSING) is False
    assert seen == ["x.y"]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=2)
        ),
        max_leaves=12,
    )
)
def test_any_data_gets_problems_or_evaluates_never_crashes(raw: Any) -> None:
    """Whatever a file holds, the checks answer with problems; a sound one evaluates."""
    problems = _shape(raw)
    if not problems:
        with contextlib.suppress(ConditionError):
            evaluate(raw, lambda ref: 1)
        describe(raw)
        condition_refs(raw)


# --- in a workflow file -------------------------------------------------------------

WF = """\
name: gate
inputs: {threshold: 0.5}
nodes:
  score:
    runtime: {kind: python_code, code: "result = 0.9"}
  other:
    runtime: {kind: python_code, code: "result = 1"}
  publish:
    after: [score]
    when: {WHEN}
    runtime: {kind: python_code, code: "result = 'published'"}
"""


def _load_problems(when: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_workflow_text(WF.replace("{WHEN}", when), filename="wf.yaml")
    return info.value.problems


def test_a_condition_on_a_node_that_is_not_upstream_is_an_error_with_file_and_line() -> None:
    (problem,) = _load_problems("{gt: [other, 0]}")
    assert "not upstream" in problem and "after: [other]" in problem
    assert "wf.yaml:10" in problem


def test_a_condition_on_an_unknown_node_or_input_is_an_error() -> None:
    assert "unknown node 'nope'" in _load_problems("{exists: nope}")[0]
    assert "unknown workflow input 'inputs.limit'" in _load_problems("{gt: [inputs.limit, 1]}")[0]


def test_a_misspelt_operator_is_an_error_with_a_suggestion() -> None:
    (problem,) = _load_problems("{greater: [score, 0.5]}")
    assert "unknown condition operator 'greater'" in problem and "wf.yaml:10" in problem


def test_a_condition_on_an_input_and_an_upstream_node_loads() -> None:
    wf = load_workflow_text(
        WF.replace("{WHEN}", "{all: [{gt: [score, 0.5]}, {exists: inputs.threshold}]}")
    )
    assert wf.nodes["publish"].when == {
        "all": [{"gt": ["score", 0.5]}, {"exists": "inputs.threshold"}]
    }
