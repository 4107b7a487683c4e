"""Nodes a Python task adds to its run (``ctx.add_node``): checked, then run.

An addition is a sub-step record (``name == "add_node"``, its result the node
mapping with its ``id``) of the node that added it, so the ledger alone
rebuilds the run's graph: the ready set notes each addition as it replays
the record, and takes the added nodes up when their adding node completes
(a node that fails adds nothing). They run as their dependencies end: the
adding node, nodes that ended before, nodes added before them.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING, Any

from spindle.core.errors import ValidationError
from spindle.core.plugin import using_registry

if TYPE_CHECKING:
    from spindle.core.engine._ready import ReadySet
    from spindle.core.workflow import NodeSpec, Workflow

__all__ = ["AddedNodes", "check_added", "structure_added"]

_BAD_CHARS = ".[]#/"


def structure_added(wf: Workflow, node_id: str, node: Mapping[str, Any]) -> NodeSpec:
    """The spec of an added node, from its mapping.

    Raises:
        ValidationError: a field does not structure, or the node is a map, loop or branch.
    """
    from spindle.core.workflow._definition import _structure_node
    from spindle.core.workflow._nodes import _base_dir_context

    fields = {k: v for k, v in node.items() if k != "id"}
    with using_registry(wf.registry), _base_dir_context(wf.base_dir):
        spec, problems, _ = _structure_node(node_id, fields, f"added.{node_id}")
    for kind in ("map", "loop", "branch"):
        if getattr(spec, kind) is not None:
            problems.append(f"an added node cannot be a {kind} @ added.{node_id}.{kind}")
    if (spec.runtime is None) == (spec.effect is None) and not problems:
        problems.append(
            f"an added node needs exactly one of 'runtime' or 'effect' @ added.{node_id}"
        )
    if problems:
        raise ValidationError(f"ctx.add_node('{node_id}'): the node is invalid", problems)
    return spec


def check_added(ready: ReadySet, wf: Workflow, adder: str, node_id: str, node: Any) -> None:
    """Refuse a node ``adder`` may not add (see :meth:`DurableCalls.add_node`).

    Raises:
        ValidationError: with what is wrong and how to fix it.
    """
    if not isinstance(node_id, str) or not node_id or any(c in node_id for c in _BAD_CHARS):
        raise ValidationError(
            f"ctx.add_node({node_id!r}): a node id is a non-empty string without "
            f"'.', '[', ']', '#' or '/'"
        )
    if not isinstance(node, Mapping):
        raise ValidationError(f"ctx.add_node('{node_id}'): the node must be a mapping")
    if (
        node_id == "inputs"
        or node_id in wf.nodes
        or ready.is_item(node_id)
        or (node_id in ready.pending_added(adder))
    ):
        raise ValidationError(
            f"ctx.add_node('{node_id}'): the run already has a node '{node_id}'; pick a new id"
        )
    spec = structure_added(wf, node_id, node)
    earlier = ready.pending_added(adder)
    deps = [r.target for r in spec.references() if not r.is_workflow_input] + list(spec.after)
    for dep in deps:
        known = dep in wf.nodes or ready.is_item(dep) or dep in earlier
        if not known:
            raise ValidationError(
                f"ctx.add_node('{node_id}'): it refers to '{dep}', which is no node of the "
                f"run; an added node may depend on the node adding it ('{adder}'), on nodes "
                f"that ended, and on nodes added before it"
            )
        if dep != adder and not ready.done(dep) and dep not in earlier:
            raise ValidationError(
                f"ctx.add_node('{node_id}'): it depends on '{dep}', which has not ended; an "
                f"added node may depend on the node adding it ('{adder}'), on nodes that "
                f"ended, and on nodes added before it"
            )


class AddedNodes:
    """The nodes one completed node added, while they run (a ready-set group)."""

    def __init__(self, adder: str, specs: list[NodeSpec]) -> None:
        self.node_id = adder
        self._specs = {s.id: s for s in specs}
        self._deps = {
            s.id: list(
                dict.fromkeys(
                    [r.target for r in s.references() if not r.is_workflow_input] + s.after
                )
            )
            for s in specs
        }
        self._new = list(self._specs)
        self._fed: set[str] = set()
        self._ended: set[str] = set()

    @property
    def finished(self) -> bool:
        """Every added node ended."""
        return len(self._ended) == len(self._specs)

    def take_new(self) -> list[str]:
        """The added node ids, the first time."""
        new, self._new = self._new, []
        return new

    def next_items(self, ended: Container[str]) -> list[str]:
        """Added nodes whose dependencies ended."""
        out = []
        for nid, deps in self._deps.items():
            if nid not in self._fed and nid not in ended and all(d in ended for d in deps):
                self._fed.add(nid)
                out.append(nid)
        return out

    def ended(self, cid: str, failed: Container[str]) -> None:
        """An added node ended."""
        self._ended.add(cid)

    def deps_of(self, cid: str) -> list[str]:
        """What added node ``cid`` waits for."""
        return self._deps.get(cid, [])

    def leaves(self) -> tuple[list[str], set[str]]:
        """The added nodes no other added node waits for, and every node they wait for."""
        waited = {d for deps in self._deps.values() for d in deps}
        return [n for n in self._specs if n not in waited], waited

    def rename(self, cid: str, head: str) -> str:
        """Added nodes refer to the run's nodes by their ids."""
        return head

    def item_value(self, cid: str, ref: str) -> Any:
        """Added nodes have no item references."""
        return None

    def item_node(self, cid: str) -> NodeSpec:
        """The spec of added node ``cid``."""
        return self._specs[cid]
