"""Building control-flow nodes in Python (:meth:`Workflow.branch`, :meth:`Workflow.map`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from spindle.core.plugin import using_registry
from spindle.core.workflow._definition import _node
from spindle.core.workflow._nodes import _base_dir_context

if TYPE_CHECKING:
    from spindle.core.workflow._nodes import NodeSpec
    from spindle.core.workflow._workflow import Workflow

__all__ = ["branch_node", "loop_node", "map_node", "subworkflow_node"]


def _ids(v: str | Iterable[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def branch_node(
    wf: Workflow,
    node_id: str,
    on: str,
    cases: Mapping[Any, str | Iterable[str]],
    *,
    default: str | Iterable[str] = (),
    **options: Any,
) -> NodeSpec:
    """A branch node choosing among ``cases`` (value to node ids) by ``on``'s value."""
    spec = {"on": on, "cases": {k: _ids(v) for k, v in cases.items()}, "default": _ids(default)}
    return _node(node_id, branch=spec, **options)


def map_node(
    wf: Workflow,
    node_id: str,
    over: str | int,
    node: Mapping[str, Any],
    *,
    concurrency: int | None = None,
    max_failures: int = 0,
    **options: Any,
) -> NodeSpec:
    """A map node running the node mapping ``node`` once per item of ``over``."""
    spec: dict[str, Any] = {
        "over": {"range": over} if isinstance(over, int) else over,
        "node": dict(node),
        "max_failures": max_failures,
    }
    if concurrency is not None:
        spec["concurrency"] = concurrency
    with _base_dir_context(wf.base_dir), using_registry(wf.registry):
        return _node(node_id, map=spec, **options)


def loop_node(
    wf: Workflow,
    node_id: str,
    body: list[Mapping[str, Any]],
    *,
    until: Mapping[str, Any] | None = None,
    max_iterations: int | None = None,
    **options: Any,
) -> NodeSpec:
    """A loop node running ``body`` until ``until`` holds (or ``max_iterations``)."""
    spec: dict[str, Any] = {"body": [dict(b) for b in body]}
    if until is not None:
        spec["until"] = dict(until)
    if max_iterations is not None:
        spec["max_iterations"] = max_iterations
    with _base_dir_context(wf.base_dir), using_registry(wf.registry):
        return _node(node_id, loop=spec, **options)


def subworkflow_node(
    wf: Workflow,
    node_id: str,
    workflow: str,
    *,
    output: str | Mapping[str, str] | None = None,
    max_depth: int | None = None,
    **options: Any,
) -> NodeSpec:
    """A node running ``workflow`` (a file, relative to ``wf``'s, or a known name) as a child."""
    spec: dict[str, Any] = {"kind": "subworkflow", "workflow": workflow}
    if output is not None:
        spec["output"] = output if isinstance(output, str) else dict(output)
    if max_depth is not None:
        spec["max_depth"] = max_depth
    effect = wf.registry.create("effect", spec, path=f"nodes.{node_id}.workflow")
    with _base_dir_context(wf.base_dir), using_registry(wf.registry):
        return _node(node_id, effect=effect, **options)
