"""The ``workflow:`` node field: a node that runs another workflow file as a child run.

``workflow: PATH`` or ``workflow: {path: PATH, output: ..., max_depth: N}`` is
written as the ``subworkflow`` effect it stands for (``effect: {kind:
subworkflow, workflow: PATH, ...}``), so the child is started, found again
after a crash, waited on and cancelled exactly as that effect's children
are. The node's ``inputs:`` become the child's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from spindle.core._quote import quote

__all__ = ["WORKFLOW_FIELDS", "is_reference_mapping", "subflow_effect"]

#: The keys of a ``workflow:`` mapping.
WORKFLOW_FIELDS = ("path", "output", "max_depth")


def is_reference_mapping(value: Any) -> TypeGuard[Mapping[str, str]]:
    """Whether ``value`` is an output mapping: name to reference text, not empty (a
    workflow's ``output:``, a workflow node's ``output``)."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items())
    )


def _output_problem(output: Any, where: str) -> str | None:
    if (isinstance(output, str) and output) or is_reference_mapping(output):
        return None
    return (
        f"a workflow node's output is a reference into the child (NODE or NODE.OUTPUT) or a "
        f"mapping of name to such a reference, got {quote(output)} @ {where}"
    )


def subflow_effect(raw: Mapping[str, Any], path: str) -> tuple[dict[str, Any], list[str]]:
    """Node mapping ``raw`` with its ``workflow:`` written as the effect, and the problems.

    A problem leaves the field out (the node is then reported as having no
    runtime or effect only if nothing else is wrong with it).
    """
    spec = raw["workflow"]
    rest = {k: v for k, v in raw.items() if k != "workflow"}
    where = f"{path}.workflow"
    problems: list[str] = []
    if "runtime" in raw or "effect" in raw:
        problems.append(
            f"a workflow node runs the child workflow; it has no 'runtime' or 'effect' of its "
            f"own (remove '{'runtime' if 'runtime' in raw else 'effect'}') @ {where}"
        )
        return rest, problems
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        problems.append(
            f"expected a workflow file path or {{path: PATH, output: ..., max_depth: N}}, got "
            f"{quote(spec)} @ {where}"
        )
        return rest, problems
    for key in spec:
        if key not in WORKFLOW_FIELDS:
            problems.append(
                f"unknown field '{key}' in workflow; known: {', '.join(WORKFLOW_FIELDS)} "
                f"@ {where}.{key}"
            )
    target = spec.get("path")
    if not isinstance(target, str) or not target:
        problems.append(f"a workflow node needs 'path:', the child workflow file @ {where}.path")
    if "output" in spec:
        problem = _output_problem(spec["output"], f"{where}.output")
        if problem:
            problems.append(problem)
    depth = spec.get("max_depth")
    if depth is not None and (type(depth) is not int or depth < 1):
        problems.append(
            f"max_depth must be a positive integer, got {quote(depth)} @ {where}.max_depth"
        )
    if problems:
        return rest, problems
    effect: dict[str, Any] = {"kind": "subworkflow", "workflow": target}
    if "output" in spec:
        effect["output"] = spec["output"]
    if depth is not None:
        effect["max_depth"] = depth
    rest["effect"] = effect
    return rest, problems
