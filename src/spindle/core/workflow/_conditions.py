"""The condition language of ``when:`` and ``until:``: checked at load, evaluated without eval.

A condition is a one-key mapping:

* a comparison ``{OP: [REF, VALUE]}`` with OP one of :data:`COMPARISONS`;
* a test ``{exists: REF}`` or ``{truthy: REF}``;
* a combination ``{all: [C, ...]}``, ``{any: [C, ...]}`` or ``{not: C}``.

REF names a value the way ``inputs:`` does (``NODE``, ``NODE.OUTPUT``,
``inputs.NAME``; in a map's node also ``item``, ``item.KEY`` and ``index``;
in a loop's body and ``until`` also ``iteration``, ``previous.B`` and the body
nodes). VALUE is a literal. A REF with no value (a skipped node, a missing
key) is :data:`MISSING`: every test on it is false, except ``ne`` and
``not_in``, which hold. Comparing values of kinds that do not order (a text
with a number) raises :class:`ConditionError`, which fails the node with
that message rather than guessing.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from spindle.core._quote import quote
from spindle.core.errors import SpindleError

__all__ = [
    "COMPARISONS",
    "MISSING",
    "OPERATORS",
    "ConditionError",
    "condition_problems",
    "condition_refs",
    "describe",
    "evaluate",
]

#: ``{OP: [REF, VALUE]}`` operators.
COMPARISONS: Final = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains")
#: ``{OP: REF}`` operators.
TESTS: Final = ("exists", "truthy")
#: Operators that combine conditions.
COMBINATORS: Final = ("all", "any", "not")
#: Every operator, in the order the docs list them.
OPERATORS: Final = (*COMPARISONS, *TESTS, *COMBINATORS)
#: How deep ``all``/``any``/``not`` may nest: deeper is a load error, not a stack overflow.
MAX_DEPTH: Final = 32

_SYMBOLS: Final = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_ORDERED: Final = ("lt", "le", "gt", "ge")
_NOT_IN_REFS: Final = frozenset("()'\"`;,{}")
#: What people write for an operator, and the operator they mean.
_ALIASES: Final = {
    "==": "eq",
    "equals": "eq",
    "!=": "ne",
    "neq": "ne",
    "<": "lt",
    "<=": "le",
    "lte": "le",
    ">": "gt",
    ">=": "ge",
    "gte": "ge",
    "and": "all",
    "or": "any",
    "nin": "not_in",
    "not in": "not_in",
    "has": "contains",
    "includes": "contains",
    "defined": "exists",
}


class _Missing:
    """The value of a reference that has none (a skipped node, an absent key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: What a lookup returns for a reference with no value.
MISSING: Final[Any] = _Missing()


class ConditionError(SpindleError):
    """A condition that cannot be decided on the values it got (e.g. ``lt`` of a text and 3)."""


def _ref_problem(ref: Any, path: str) -> str | None:
    if not isinstance(ref, str) or not ref:
        return f"a condition's reference must be a node reference text, got {quote(ref)} @ {path}"
    if any(not part for part in ref.split(".")) or any(
        c.isspace() or c in _NOT_IN_REFS for c in ref
    ):
        return (
            f"malformed reference {quote(ref)}: use NODE, NODE.OUTPUT or inputs.NAME "
            f"(no spaces, quotes, brackets or empty parts) @ {path}"
        )
    return None


def _unknown_op(op: Any, path: str) -> str:
    near = [_ALIASES[op]] if op in _ALIASES else difflib.get_close_matches(str(op), OPERATORS, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"unknown condition operator {quote(op)}{hint}; known: {', '.join(OPERATORS)} @ {path}"


def _comparison_problems(op: str, arg: Any, path: str) -> list[str]:
    if not isinstance(arg, list) or len(arg) != 2:
        return [f"'{op}' takes a list [REF, VALUE], got {quote(arg)} @ {path}"]
    ref, value = arg
    problem = _ref_problem(ref, f"{path}.0")
    out = [problem] if problem else []
    if op in ("in", "not_in") and not isinstance(value, list):
        out.append(f"'{op}' needs a list of values to look in, got {quote(value)} @ {path}.1")
    elif op in _ORDERED and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        out.append(f"'{op}' compares with a number or a text, got {quote(value)} @ {path}.1")
    elif isinstance(value, Mapping):
        out.append(
            f"'{op}' compares with a literal; a mapping {quote(value)} is not one (to compare "
            f"two nodes use a Python predicate) @ {path}.1"
        )
    return out


def _shape_problems(cond: Any, path: str, depth: int, refs: list[tuple[str, str]]) -> list[str]:
    """Problems of ``cond``'s shape; the well-formed references go to ``refs`` with their path."""
    if depth > MAX_DEPTH:
        return [f"condition nests deeper than {MAX_DEPTH} levels @ {path}"]
    if not isinstance(cond, Mapping) or len(cond) != 1:
        return [
            f"a condition is a mapping with exactly one operator, such as "
            f"{{gt: [score, 0.5]}}, got {quote(cond)} @ {path}"
        ]
    ((op, arg),) = cond.items()
    here = f"{path}.{op}"
    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            return [f"'{op}' takes a non-empty list of conditions, got {quote(arg)} @ {here}"]
        out: list[str] = []
        for i, c in enumerate(arg):
            out.extend(_shape_problems(c, f"{here}.{i}", depth + 1, refs))
        return out
    if op == "not":
        return _shape_problems(arg, here, depth + 1, refs)
    if op in TESTS:
        problem = _ref_problem(arg, here)
        if problem:
            return [problem]
        refs.append((arg, here))
        return []
    if op in COMPARISONS:
        out = _comparison_problems(op, arg, here)
        if not out:
            refs.append((arg[0], f"{here}.0"))
        return out
    return [_unknown_op(op, path)]


def condition_problems(raw: Any, path: str, check_ref: Callable[[str], str | None]) -> list[str]:
    """Every problem of condition ``raw`` as ``problem @ path`` lines (empty: it is sound).

    ``check_ref`` says what is wrong with a reference (unknown node, not
    upstream), or None; it is asked only about well-formed references.
    """
    refs: list[tuple[str, str]] = []
    out = _shape_problems(raw, path, 0, refs)
    for ref, where in refs:
        problem = check_ref(ref)
        if problem:
            out.append(f"{problem} @ {where}")
    return out


def condition_refs(cond: Any) -> list[str]:
    """The references a sound condition reads, each once, in the order written."""
    seen: dict[str, None] = {}
    todo = [cond]
    while todo:
        ((op, arg),) = todo.pop().items()
        if op in ("all", "any"):
            todo.extend(reversed(arg))
        elif op == "not":
            todo.append(arg)
        elif op in TESTS:
            seen.setdefault(arg, None)
        else:
            seen.setdefault(arg[0], None)
    return list(seen)


def _kind(value: Any) -> str:
    return type(value).__name__


def _compare(op: str, left: Any, right: Any, cond: Mapping[str, Any]) -> bool:
    if op == "eq":
        return left is not MISSING and bool(left == right)
    if op == "ne":
        return left is MISSING or bool(left != right)
    if op == "in":
        return left is not MISSING and left in right
    if op == "not_in":
        return left is MISSING or left not in right
    if left is MISSING or left is None:
        return False
    try:
        if op == "contains":
            if isinstance(left, str) and not isinstance(right, str):
                return False
            return bool(right in left)
        number = (int, float)
        if isinstance(left, bool) or (isinstance(left, number) != isinstance(right, number)):
            raise TypeError
        return bool(
            {"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[op]
        )
    except TypeError:
        raise ConditionError(
            f"{describe(cond)}: cannot apply '{op}' to {quote(left)} ({_kind(left)}) and "
            f"{quote(right)} ({_kind(right)})"
        ) from None


def evaluate(cond: Any, lookup: Callable[[str], Any]) -> bool:
    """Whether sound condition ``cond`` holds; ``lookup(ref)`` gives a value or MISSING.

    Raises:
        ConditionError: a comparison of values that do not compare.
    """
    ((op, arg),) = cond.items()
    if op == "all":
        return all(evaluate(c, lookup) for c in arg)
    if op == "any":
        return any(evaluate(c, lookup) for c in arg)
    if op == "not":
        return not evaluate(arg, lookup)
    if op == "exists":
        value = lookup(arg)
        return value is not MISSING and value is not None
    if op == "truthy":
        value = lookup(arg)
        return value is not MISSING and bool(value)
    return _compare(op, lookup(arg[0]), arg[1], cond)


def _literal(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _combines(cond: Any) -> bool:
    return next(iter(cond)) in ("all", "any") and len(next(iter(cond.values()))) > 1


def describe(cond: Any) -> str:
    """A sound condition as short readable text: ``score > 0.5 and approve == "yes"``."""
    ((op, arg),) = cond.items()
    if op in ("all", "any"):
        word = " and " if op == "all" else " or "
        return word.join(f"({describe(c)})" if _combines(c) else describe(c) for c in arg)
    if op == "not":
        return f"not ({describe(arg)})"
    if op == "exists":
        return f"exists {arg}"
    if op == "truthy":
        return f"{arg}"
    ref, value = arg
    symbol = _SYMBOLS.get(op, op.replace("_", " "))
    return f"{ref} {symbol} {_literal(value)}"
