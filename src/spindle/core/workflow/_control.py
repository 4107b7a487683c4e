"""Control-flow fields of a node as plain data: ``when``, ``join``, ``branch`` and ``map``.

Structuring (file content to :class:`NodeSpec` fields, every problem with its
path), serializing back, and the checks that need the whole graph (a
condition may only name upstream nodes; a branch lists known nodes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from spindle.core._quote import quote
from spindle.core.workflow._nodes import (
    ITEM_NAMES,
    LOOP_NAMES,
    BranchSpec,
    LoopSpec,
    MapSpec,
    NodeSpec,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "CONTROL_FIELDS",
    "case_text",
    "control_dict",
    "structure_control",
]

#: The node fields this module structures.
CONTROL_FIELDS = ("when", "join", "branch", "map", "loop")

#: Structures one node mapping (the map's template): (node, problems, failed fields).
NodeBuilder = Callable[[str, Mapping[str, Any], str], tuple[NodeSpec, list[str], set[str]]]


def case_text(value: Any) -> str:
    """The text a branch compares: a string as it is, anything else as JSON (``true``, ``1``)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)


def _id_list(raw: Any, path: str, problems: list[str]) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return list(raw)
    problems.append(f"expected a node id or a list of node ids, got {quote(raw)} @ {path}")
    return []


def _branch(raw: Any, path: str, problems: list[str]) -> BranchSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(
            f"expected a mapping {{on: NODE, cases: {{VALUE: [nodes]}}, default: [nodes]}}, "
            f"got {quote(raw)} @ {path}"
        )
        return None
    for key in raw:
        if key not in ("on", "cases", "default"):
            problems.append(f"unknown field '{key}' in branch; known: on, cases, default @ {path}")
    on = raw.get("on")
    if not isinstance(on, str) or not on:
        problems.append(f"branch needs 'on: NODE' (the node whose result chooses) @ {path}.on")
        return None
    cases_raw = raw.get("cases") or {}
    cases: dict[str, list[str]] = {}
    if not isinstance(cases_raw, Mapping):
        problems.append(f"expected a mapping of case value to nodes @ {path}.cases")
    else:
        for k, v in cases_raw.items():
            cases[case_text(k)] = _id_list(v, f"{path}.cases.{k}", problems)
    default = _id_list(raw["default"], f"{path}.default", problems) if "default" in raw else []
    if not cases and not default:
        problems.append(f"branch needs at least one case or a default @ {path}")
    return BranchSpec(on=on, cases=cases, default=default)


def _count(raw: Any, key: str, path: str, problems: list[str], least: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is not int or value < least:
        problems.append(
            f"map {key} must be an integer of at least {least}, got {quote(value)} @ {path}.{key}"
        )
        return None
    return value


def _map(raw: Any, nid: str, path: str, problems: list[str], build: NodeBuilder) -> MapSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(
            f"expected a mapping {{over: SOURCE, node: {{...}}, concurrency: K}}, "
            f"got {quote(raw)} @ {path}"
        )
        return None
    for key in raw:
        if key not in ("over", "node", "concurrency", "max_failures"):
            problems.append(
                f"unknown field '{key}' in map; known: over, node, concurrency, max_failures "
                f"@ {path}.{key}"
            )
    over, rng = raw.get("over"), None
    if isinstance(over, Mapping) and set(over) == {"range"}:
        rng, over = over["range"], None
        if type(rng) is not int or rng < 0:
            problems.append(f"range must be a non-negative integer, got {quote(rng)} @ {path}.over")
            rng = 0
    elif not isinstance(over, str) or not over:
        problems.append(
            f"map needs 'over:' NODE, NODE.OUTPUT, inputs.NAME or {{range: N}}, "
            f"got {quote(over)} @ {path}.over"
        )
        over = None
        rng = 0
    template_raw = raw.get("node")
    if not isinstance(template_raw, Mapping):
        problems.append(f"map needs 'node:', the mapping of the node each item runs @ {path}.node")
        return None
    nested = [k for k in ("map", "loop", "branch") if k in template_raw]
    if nested:
        problems.append(
            f"a map's node cannot itself be a {nested[0]}; to nest, make it a sub-workflow node "
            f"(workflow: FILE) whose file holds the {nested[0]} @ {path}.node.{nested[0]}"
        )
        return None
    template, errs, _ = build(nid, template_raw, f"{path}.node")
    problems.extend(errs)
    if template.runtime is not None:
        # What the runtime reads by name (``{item}`` in a command, an ``index``
        # parameter) becomes an input of the template, unless it declares it.
        wanted = template.runtime.implicit_inputs(ITEM_NAMES)
        extra = {n: n for n in wanted if n not in template.inputs}
        if extra:
            template = attrs.evolve(template, inputs={**template.inputs, **extra})
    return MapSpec(
        node=template,
        over=over,
        range=rng,
        concurrency=_count(raw, "concurrency", path, problems, 1),
        max_failures=_count(raw, "max_failures", path, problems, 0) or 0,
    )


def _loop(
    raw: Any, nid: str, path: str, problems: list[str], build: NodeBuilder
) -> LoopSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(
            f"expected a mapping {{body: [nodes], until: CONDITION, max_iterations: N}}, "
            f"got {quote(raw)} @ {path}"
        )
        return None
    for key in raw:
        if key not in ("body", "until", "max_iterations"):
            problems.append(
                f"unknown field '{key}' in loop; known: body, until, max_iterations @ {path}.{key}"
            )
    body_raw = raw.get("body")
    if not isinstance(body_raw, list) or not body_raw:
        problems.append(f"loop needs 'body:', a list of nodes each with an 'id' @ {path}.body")
        return None
    body: list[NodeSpec] = []
    seen: set[str] = set()
    for j, item in enumerate(body_raw):
        where = f"{path}.body.{j}"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            problems.append(f"a loop body entry is a node mapping with an 'id' @ {where}")
            continue
        bid = item["id"]
        if bid in seen or not bid or any(c in bid for c in ".#/[]") or bid in LOOP_NAMES:
            problems.append(
                f"loop body node id '{bid}' must be unique in the body, not empty, without "
                f"'.', '#', '/', '[' or ']', and not {' or '.join(LOOP_NAMES)} @ {where}.id"
            )
            continue
        seen.add(bid)
        if "loop" in item or "map" in item:
            problems.append(f"a loop's body cannot hold a map or a loop (not supported) @ {where}")
            continue
        node, errs, _ = build(bid, {k: v for k, v in item.items() if k != "id"}, where)
        problems.extend(errs)
        body.append(node)
    until = raw.get("until")
    if until is not None and not isinstance(until, Mapping):
        problems.append(f"expected a condition mapping, got {quote(until)} @ {path}.until")
        until = None
    most = _count(raw, "max_iterations", path, problems, 1)
    if until is None and most is None:
        problems.append(f"loop needs 'until:' or 'max_iterations:' (or it never ends) @ {path}")
    return LoopSpec(body=body, until=dict(until) if until else None, max_iterations=most or 100)


def structure_control(
    nid: str, raw: Mapping[str, Any], path: str, build: NodeBuilder
) -> tuple[dict[str, Any], list[str], set[str]]:
    """The control fields of node ``raw`` as NodeSpec keyword arguments, problems, failed."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    failed: set[str] = set()
    when = raw.get("when")
    if when is not None:
        if isinstance(when, Mapping):
            values["when"] = dict(when)
        else:
            problems.append(
                f"expected a condition mapping such as {{eq: [NODE, VALUE]}}, got "
                f"{quote(when)} @ {path}.when"
            )
            failed.add("when")
    join = raw.get("join")
    if join is not None:
        if join in ("all", "any"):
            values["join"] = join
        else:
            problems.append(f"join must be 'all' or 'any', got {quote(join)} @ {path}.join")
    for key, make in (
        ("branch", lambda: _branch(raw["branch"], f"{path}.branch", problems)),
        ("map", lambda: _map(raw["map"], nid, f"{path}.map", problems, build)),
        ("loop", lambda: _loop(raw["loop"], nid, f"{path}.loop", problems, build)),
    ):
        if raw.get(key) is not None:
            before = len(problems)
            spec = make()
            if spec is not None:
                values[key] = spec
            if len(problems) > before:
                failed.add(key)
    return values, problems, failed


def control_dict(node: NodeSpec, node_dict: Callable[[NodeSpec], dict[str, Any]]) -> dict[str, Any]:
    """The control fields of ``node`` as plain data (only those set)."""
    d: dict[str, Any] = {}
    if node.when is not None:
        d["when"] = node.when if isinstance(node.when, dict) else {"python": _qualname(node.when)}
    if node.join != "all":
        d["join"] = node.join
    if node.branch is not None:
        b = node.branch
        d["branch"] = {"on": b.on, "cases": {k: list(v) for k, v in b.cases.items()}}
        if b.default:
            d["branch"]["default"] = list(b.default)
    if node.map is not None:
        m = node.map
        md: dict[str, Any] = {"over": m.over if m.over is not None else {"range": m.range}}
        md["node"] = node_dict(m.node)
        if m.concurrency is not None:
            md["concurrency"] = m.concurrency
        if m.max_failures:
            md["max_failures"] = m.max_failures
        d["map"] = md
    if node.loop is not None:
        lp = node.loop
        ld: dict[str, Any] = {"body": [{"id": b.id, **node_dict(b)} for b in lp.body]}
        if lp.until is not None:
            ld["until"] = lp.until
        ld["max_iterations"] = lp.max_iterations
        d["loop"] = ld
    return d


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
