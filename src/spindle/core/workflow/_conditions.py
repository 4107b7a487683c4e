"""TEMPORARY stand-in (not committed) for the helper's condition module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spindle.core.errors import SpindleError

COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains")
MISSING: Any = object()


class ConditionError(SpindleError):
    pass


def condition_problems(raw: object, path: str, check_ref: Callable[[str], str | None]) -> list[str]:
    out = []
    for r in condition_refs(raw):
        p = check_ref(r)
        if p:
            out.append(f"{p} @ {path}")
    return out


def condition_refs(cond: Any) -> list[str]:
    ((op, arg),) = cond.items()
    if op in ("all", "any"):
        return [r for c in arg for r in condition_refs(c)]
    if op == "not":
        return condition_refs(arg)
    if op in ("exists", "truthy"):
        return [arg]
    return [arg[0]]


def evaluate(cond: Any, lookup: Callable[[str], object]) -> bool:
    ((op, arg),) = cond.items()
    if op == "all":
        return all(evaluate(c, lookup) for c in arg)
    if op == "any":
        return any(evaluate(c, lookup) for c in arg)
    if op == "not":
        return not evaluate(arg, lookup)
    if op == "exists":
        v = lookup(arg)
        return v is not MISSING and v is not None
    if op == "truthy":
        v = lookup(arg)
        return v is not MISSING and bool(v)
    v = lookup(arg[0])
    x = arg[1]
    if op == "eq":
        return v is not MISSING and v == x
    if op == "ne":
        return v is MISSING or v != x
    if op == "in":
        return v is not MISSING and v in x
    if op == "not_in":
        return v is MISSING or v not in x
    if v is MISSING or v is None:
        return False
    if op == "contains":
        return bool(x in v)  # type: ignore[operator]
    return bool({"lt": v < x, "le": v <= x, "gt": v > x, "ge": v >= x}[op])


def describe(cond: Any) -> str:
    return str(cond)
