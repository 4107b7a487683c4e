"""One loop node's current iteration while a run goes.

A loop node ``NAME`` runs its body as iteration ``k``: body node ``B`` is the
run's node ``NAME#k/B``, fed to the ready set as its in-body dependencies
end. When every body node of the iteration ended, the loop node's attempt
records the iteration as ``NAME#k`` (its body's results and whether the loop
is done: ``until`` held or ``max_iterations`` was reached) and the next
iteration opens. A resumed run finds the recorded iterations in its ledger
and opens the first one not recorded.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

import attrs

from spindle.core.workflow._nodes import LOOP_NAMES

if TYPE_CHECKING:
    from spindle.core.workflow import LoopSpec, NodeSpec

__all__ = ["LoopRun", "iteration_id"]


def iteration_id(loop_id: str, k: int) -> str:
    """The record id of iteration ``k`` of loop ``loop_id``: ``NAME#k``."""
    return f"{loop_id}#{k}"


class LoopRun:
    """The open iteration of one loop node.

    Attributes:
        node_id: the loop node.
        k: the iteration running now (from 0).
        previous: the body results of iteration ``k - 1`` (None for the first).
        complete: the loop is done (its last iteration said so).
        next_done: what the iteration being recorded says (set by the loop's attempt).
        next_results: the body results of the iteration being recorded.
    """

    def __init__(self, node: NodeSpec, spec: LoopSpec, k: int, previous: Any) -> None:
        self.node_id = node.id
        self.spec = spec
        self.complete = False
        self.next_done = False
        self.next_results: Any = None
        self._bodies = {b.id: b for b in spec.body}
        self._new: list[str] = []
        self._open(k, previous)

    def _open(self, k: int, previous: Any) -> None:
        self.k = k
        self.previous = previous
        self.marker = iteration_id(self.node_id, k)
        self.cids = {bid: f"{self.marker}/{bid}" for bid in self._bodies}
        self._bid = {cid: bid for bid, cid in self.cids.items()}
        self._deps: dict[str, list[str]] = {}
        for bid, b in self._bodies.items():
            inner = [r.target for r in b.references() if r.target in self._bodies]
            inner += [a for a in b.after if a in self._bodies]
            self._deps[self.cids[bid]] = [self.cids[d] for d in dict.fromkeys(inner)]
        self._fed: set[str] = set()
        self._ended: set[str] = set()
        self._specs: dict[str, NodeSpec] = {}
        self._new = [*self.cids.values(), self.marker]

    def take_new(self) -> list[str]:
        """The ids of an iteration just opened (its body nodes and its record)."""
        new, self._new = self._new, []
        return new

    @property
    def body_ended(self) -> bool:
        """Every body node of the open iteration ended."""
        return all(c in self._ended for c in self.cids.values())

    @property
    def finished(self) -> bool:
        """Nothing runs until the loop's attempt: the iteration's body ended, or the loop."""
        return self.complete or self.body_ended

    def next_items(self, ended: Container[str]) -> list[str]:
        """Body nodes whose in-body dependencies ended."""
        if self.complete:
            return []
        out = []
        for cid, deps in self._deps.items():
            if cid in self._fed or cid in ended:
                continue
            if all(d in self._ended for d in deps):
                self._fed.add(cid)
                out.append(cid)
        return out

    def ended(self, cid: str, failed: Container[str]) -> None:
        """A body node or the iteration's record ended; the record opens the next one."""
        if cid == self.marker:
            if self.next_done:
                self.complete = True
                self.previous = self.next_results
            else:
                self._open(self.k + 1, self.next_results)
            return
        self._ended.add(cid)
        self._specs.pop(cid, None)

    def deps_of(self, cid: str) -> list[str]:
        """The body nodes ``cid`` waits for in its iteration."""
        return self._deps.get(cid, [])

    def rename(self, cid: str, head: str) -> str:
        """The run's node id a body reference ``head`` means for item ``cid``."""
        return self.cids.get(head, head)

    def item_value(self, cid: str, ref: str) -> Any:
        """What ``iteration``, ``previous`` or ``previous.B`` means in this iteration."""
        head, _, key = ref.partition(".")
        if head == "iteration":
            return self.k
        prev = self.previous
        if not key:
            return prev
        return prev.get(key) if isinstance(prev, dict) else None

    def item_node(self, cid: str) -> NodeSpec:
        """The spec body node ``cid`` runs: references to the body point into this
        iteration; ``iteration`` and ``previous`` are made literal."""
        found = self._specs.get(cid)
        if found is not None:
            return found
        bid = self._bid.get(cid)
        if bid is None:  # an iteration's record, or a node of an iteration before
            _, _, old = cid.partition("/")
            written = self._bodies.get(old)
            if written is None:
                from spindle.core.workflow import NodeSpec

                return NodeSpec(id=cid, continue_on_failure=True)
            old_spec: NodeSpec = attrs.evolve(written, id=cid, continue_on_failure=True)
            return old_spec
        body = self._bodies[bid]
        inputs: dict[str, Any] = {}
        for name, ref in body.inputs.items():
            if not isinstance(ref, str):
                inputs[name] = ref
                continue
            head, dot, member = ref.partition(".")
            if head in LOOP_NAMES:
                inputs[name] = {"value": self.item_value(cid, ref)}
            elif head in self.cids:
                inputs[name] = f"{self.cids[head]}{dot}{member}"
            else:
                inputs[name] = ref
        after = [a for a in body.after if a not in self._bodies]
        spec: NodeSpec = attrs.evolve(
            body, id=cid, inputs=inputs, after=after, continue_on_failure=True
        )
        self._specs[cid] = spec
        return spec

    def body_spec(self, bid: str) -> NodeSpec:
        """Body node ``bid`` as written (its outputs, its continue_on_failure)."""
        return self._bodies[bid]
