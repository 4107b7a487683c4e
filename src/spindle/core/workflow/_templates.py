"""Templated effect options (a wait's key): checked when a workflow loads, filled in per run.

An effect handler lists in ``templates`` the string fields that are
templates (``wait_event``'s and ``ask_user``'s ``key``). A placeholder names
``inputs.NAME`` (a declared workflow input), ``run.id``, or ``NAME`` (one of
the node's own inputs, which may come from an upstream node's result). A
secret may not appear in one: keys are stored, listed and shown in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from spindle.core.model._templates import Placeholder, TemplateError, parse_template, value_text
from spindle.core.workflow._nodes import Reference

if TYPE_CHECKING:
    from spindle.core.plugin import EffectHandler
    from spindle.core.workflow._nodes import NodeSpec
    from spindle.core.workflow._workflow import Workflow

__all__ = ["Unfilled", "fill_templates", "template_problems"]

H = TypeVar("H", bound="EffectHandler")

_FORMS = "{inputs.NAME} (a workflow input), {run.id}, or {NAME} (one of the node's inputs)"
_SECRET = (
    "a key is stored and shown in clear, so it may not hold a secret; key it by "
    "something that is not secret (an id, the run id)"
)


class Unfilled(LookupError):
    """A placeholder names a node input that was not given (only while a run ends)."""


def template_problems(wf: Workflow, node: NodeSpec, handler: EffectHandler) -> list[str]:
    """One ``problem @ location`` line for each bad placeholder in ``handler``'s templates."""
    out: list[str] = []
    where = f"nodes.{node.id}.effect"
    for field in type(handler).templates:
        source = getattr(handler, field, None)
        if not isinstance(source, str):
            continue
        what = f"{handler.kind_name} {field} '{source}'"
        try:
            items = parse_template(source, what)
        except TemplateError as exc:
            out.append(f"node '{node.id}': {exc} @ {where}.{field}")
            continue
        for item in items:
            if isinstance(item, Placeholder):
                problem = _placeholder_problem(wf, node, item)
                if problem:
                    out.append(f"node '{node.id}': {what}: {problem} @ {where}.{field}")
    return out


def _placeholder_problem(wf: Workflow, node: NodeSpec, p: Placeholder) -> str | None:
    parts = p.parts
    if parts[0] == "run":
        if parts == ("run", "id"):
            return None
        return f"{p.text} is not known (of the run, only {{run.id}} is); write {_FORMS}"
    if parts[0] == "inputs":
        if len(parts) != 2:
            return f"{p.text} is not a workflow input; write {_FORMS}"
        name = parts[1]
        spec = wf.inputs.get(name)
        if spec is None:
            known = ", ".join(wf.inputs) or "(none)"
            return f"{p.text} names no declared workflow input; declared inputs: {known}"
        if spec.secret:
            return f"{p.text} is a secret input; {_SECRET}"
        return None
    if len(parts) != 1 or parts[0] not in node.inputs:
        known = f"its inputs: {', '.join(node.inputs)}" if node.inputs else "it has no inputs"
        return (
            f"{p.text} is neither a workflow input nor one of the node's inputs "
            f"({known}); write {_FORMS}"
        )
    ref = node.inputs[parts[0]]
    if isinstance(ref, str):
        target = Reference.parse(ref, parts[0])
        spec = wf.inputs.get(target.member or "") if target.is_workflow_input else None
        if spec is not None and spec.secret:
            return f"{p.text} is the secret input '{ref}'; {_SECRET}"
    return None


def fill_templates(
    handler: H, run_id: str, inputs: Mapping[str, Any], node_inputs: Mapping[str, Any] | None
) -> H:
    """``handler`` with its templates filled in for one run (itself when it has none).

    ``inputs`` are the run's workflow inputs, ``node_inputs`` the node's
    resolved inputs (None when they are not known: a placeholder naming one
    raises :class:`Unfilled`).
    """
    changes: dict[str, str] = {}
    for field in type(handler).templates:
        source = getattr(handler, field, None)
        if not isinstance(source, str) or ("{" not in source and "}" not in source):
            continue
        items = parse_template(source, f"{handler.kind_name} {field}")
        changes[field] = "".join(
            item if isinstance(item, str) else _value(item, run_id, inputs, node_inputs)
            for item in items
        )
    return attrs.evolve(handler, **changes) if changes else handler  # type: ignore[misc]


def _value(
    p: Placeholder, run_id: str, inputs: Mapping[str, Any], node_inputs: Mapping[str, Any] | None
) -> str:
    if p.parts == ("run", "id"):
        return run_id
    if p.parts[0] == "inputs":
        return value_text(inputs.get(p.parts[1]))
    if node_inputs is None or p.parts[0] not in node_inputs:
        raise Unfilled(f"{p.text} names a node input that is not known here")
    return value_text(node_inputs[p.parts[0]])
