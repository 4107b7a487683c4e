"""The ready set of a run: which nodes are done, and which may start next.

Bookkeeping is incremental — a counter of unfinished dependencies per node —
so a step costs O(dependants), not a scan of the graph. Launchable nodes
sit in a heap of definition positions (peers start in definition order, a
pop costs O(log n)); a node leaves the heap when launched and comes back
only if it must run again (an answered mid-function call, a retry timer).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Container
from typing import TYPE_CHECKING, Any

from spindle.core.engine._mapping import Group
from spindle.core.model import StepKind, StepRecord, StepStatus

if TYPE_CHECKING:
    from spindle.core.workflow import NodeSpec, Workflow

_log = logging.getLogger("spindle.engine")

#: How a skipped record says a condition, not a failure, left its node out.
NOT_LIVE = frozenset({"when", "branch", "upstream"})

__all__ = ["ReadySet"]


class ReadySet:
    """Dependencies, done nodes and the launch order of one run's graph.

    Attributes:
        order: node ids in a dependency-respecting order (definition order among peers).
        deps: each node's dependencies.
        results: completed nodes' results, as the ledger holds them.
        failed: failed nodes, each with its error text.
        skipped: nodes skipped because a dependency failed.
        inactive: nodes skipped by a condition or a branch (or because every
            dependency was): not live, but no failure either.
        undone: how many nodes have not ended yet (a map's started items included).
        groups: the run's opened maps and loops, by node id.
    """

    def __init__(self, workflow: Workflow) -> None:
        # The graph's shape is the same for every run of the workflow: built once.
        shape = workflow.derived("ready-set", lambda: _Shape(workflow))
        self.order = shape.order
        self._position = shape.position
        self.deps = shape.deps
        self._dependants = shape.dependants
        self._remaining = dict(shape.remaining)
        self._undone = len(self.order)
        self._heap: list[int] = list(shape.roots)  # sorted, so a heap already
        self._queued: set[str] = {self.order[i] for i in shape.roots}
        self.results: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.skipped: set[str] = set()
        # Completed, failed or skipped: what done() asks, several times a step.
        self._ended: set[str] = set()
        self.inactive: set[str] = set()
        self._nodes = workflow.nodes
        self._any_join = shape.any_join
        self.listed_by = shape.listed_by
        # Nodes added while the run goes (a map's items): position, map, spec.
        self._names = self.order  # position -> name; copied once a node is added
        self._dyn_pos: dict[str, int] = {}
        self._item_of: dict[str, Group] = {}
        self.groups: dict[str, Group] = {}
        self._open: set[str] = set()
        self._wf = workflow
        self._added: dict[str, dict[str, dict[str, Any]]] = {}  # adder -> id -> node
        self._taken: dict[str, dict[str, dict[str, Any]]] = {}  # those of completed adders

    def replay(self, rec: StepRecord) -> None:
        """Take a node's outcome record into account (from the ledger or a new commit)."""
        if rec.kind != StepKind.NODE:
            if rec.kind == StepKind.RUN and rec.status == StepStatus.RETRIED:
                self.reopen()
            elif (
                rec.name == "add_node"
                and rec.kind == StepKind.CALL
                and rec.status == StepStatus.COMPLETED
                and isinstance(rec.result, dict)
            ):
                self._added.setdefault(rec.node_id, {})[str(rec.result.get("id"))] = rec.result
            return
        nid = rec.node_id
        ended = self._ended
        was_done = nid in ended
        status = rec.status
        if status == StepStatus.COMPLETED:
            self.results[nid] = rec.result
            self.failed.pop(nid, None)
        elif status == StepStatus.FAILED:
            self.failed[nid] = rec.error or f"node '{nid}' failed"
        elif status == StepStatus.SKIPPED:
            if isinstance(rec.result, dict) and rec.result.get("skipped_by") in NOT_LIVE:
                self.inactive.add(nid)
            else:
                self.skipped.add(nid)
        else:
            return
        ended.add(nid)
        if was_done:
            return
        if self._added and nid in self._added:
            self._take_added(nid, status)
        if nid in self._remaining:
            self._undone -= 1
            completed = status == StepStatus.COMPLETED
            for dep in self._dependants.get(nid, ()):
                self._remaining[dep] -= 1
                if self._remaining[dep] == 0 or (completed and dep in self._any_join):
                    self.requeue(dep)
        elif nid in self._item_of:
            self._item_ended(nid, status)

    def reopen(self) -> None:
        """Forget failed and skipped nodes (``spindle retry``): they are to run again.

        Completed nodes stay done; the counters and the queue are rebuilt from them.
        """
        self.failed.clear()
        self.skipped.clear()
        self.inactive.clear()
        self.groups.clear()
        self._item_of.clear()
        self._open.clear()
        results = self.results
        self._ended = set(results)
        self._undone = sum(1 for n in self.order if n not in results)
        self._remaining = {
            n: sum(1 for d in deps if d not in results) for n, deps in self.deps.items()
        }
        self._heap.clear()
        self._queued.clear()
        for n, left in self._remaining.items():
            if left == 0:
                self.requeue(n)
        for adder, added in self._taken.items():  # their failed nodes run again too
            self._open_added(adder, added)

    @property
    def undone(self) -> int:
        """How many workflow nodes have not ended, plus one while a map or a loop has
        items running (so no item's commit is held for the run's end)."""
        return self._undone + 1 if self._open else self._undone

    def done(self, node_id: str) -> bool:
        """Whether ``node_id`` ended (completed, failed or skipped)."""
        return node_id in self._ended

    def blocked(self, node_id: str) -> bool:
        """Whether a dependency of ``node_id`` failed or was skipped (so it is skipped)."""
        return self.skip_reason(node_id) is not None

    def skip_reason(self, node_id: str) -> str | None:
        """Why ``node_id`` is skipped by the join rule, or None when it runs.

        ``"failed"``: a dependency failed or was skipped for a failure (with
        ``join: any``: no dependency completed and one of them failed);
        ``"upstream"``: no dependency it waits for is live (each was skipped by
        a condition or a branch). A node runs when every dependency ended and at
        least one of them is live — with ``join: any``, once one completed.
        """
        if not self.failed and not self.skipped and not self.inactive:
            return None
        deps = self.deps.get(node_id)
        if deps is None and node_id in self._item_of:
            deps = self._item_of[node_id].deps_of(node_id)
        if not deps:
            return None
        failed, skipped, inactive = self.failed, self.skipped, self.inactive
        if node_id in self._any_join:
            if any(d in self.results for d in deps):
                return None
            return "failed" if any(d in failed or d in skipped for d in deps) else "upstream"
        if any(d in failed or d in skipped for d in deps):
            return "failed"
        if all(d in inactive for d in deps):
            return "upstream"
        return None

    def ended_badly(self, node_id: str) -> list[str]:
        """The dependencies of ``node_id`` that failed or were skipped for a failure."""
        deps = self.deps.get(node_id)
        if deps is None and node_id in self._item_of:
            deps = self._item_of[node_id].deps_of(node_id)
        return [d for d in deps or () if d in self.failed or d in self.skipped]

    def requeue(self, node_id: str) -> None:
        """Make ``node_id`` launchable (again), unless it is done or already queued."""
        if node_id not in self._queued and node_id not in self._ended:
            if self._open and node_id in self._open:
                return  # a map waiting for its items: queued again when they ended
            pos = self._position.get(node_id)
            if pos is None:
                pos = self._dyn_pos.get(node_id)
                if pos is None:
                    return  # an item of a map this drive has not opened
            self._queued.add(node_id)
            heapq.heappush(self._heap, pos)

    # --- maps ------------------------------------------------------------------------

    def node(self, node_id: str) -> NodeSpec:
        """The spec of ``node_id``: a workflow node, or an item of a map or a loop."""
        node = self._nodes.get(node_id)
        if node is not None:
            return node
        return self._item_of[node_id].item_node(node_id)

    def kind_of(self, node_id: str) -> str | None:
        """What ``node_id`` is (:attr:`NodeSpec.kind`); None for an id this run lacks."""
        try:
            return self.node(node_id).kind
        except KeyError:
            return None

    def item_run(self, node_id: str) -> Group:
        """The map or loop ``node_id`` is an item of."""
        return self._item_of[node_id]

    def is_item(self, node_id: str) -> bool:
        """Whether ``node_id`` is an item of a map or a loop (not a node of the workflow)."""
        return node_id in self._item_of

    def open_group(self, run: Group) -> None:
        """Start ``run``'s items (those not ended already): a map's, or a loop iteration's.
        The map or loop node itself is queued again when they all ended."""
        self.groups[run.node_id] = run
        self._adopt(run)
        if not run.finished:
            self._open.add(run.node_id)
            self._feed(run)

    def _adopt(self, run: Group) -> None:
        while True:
            fresh = run.take_new()
            if not fresh:
                return
            for child in fresh:
                self._item_of[child] = run
            for child in fresh:
                if child in self._ended:
                    run.ended(child, self.failed)

    def _feed(self, run: Group) -> None:
        if self._names is self.order:
            self._names = list(self.order)
        for child in run.next_items(self._ended):
            if child not in self._dyn_pos:
                self._dyn_pos[child] = len(self._names)
                self._names.append(child)
            self.requeue(child)
        if run.finished:
            self._open.discard(run.node_id)
            self.requeue(run.node_id)
        else:
            self._open.add(run.node_id)

    def adds_nodes(self, node_id: str) -> bool:
        """Whether ``node_id`` added nodes that its completion will take up (so its
        record cannot wait for the run's end: they run after it)."""
        return bool(self._added) and node_id in self._added

    def pending_added(self, adder: str) -> dict[str, dict[str, Any]]:
        """The nodes ``adder`` added so far in its attempts (by id)."""
        return self._added.get(adder, {})

    def _take_added(self, adder: str, status: StepStatus) -> None:
        added = self._added.pop(adder)
        if status != StepStatus.COMPLETED:
            return  # a node that did not complete adds nothing
        self._taken[adder] = added
        self._open_added(adder, added)

    def _open_added(self, adder: str, added: dict[str, dict[str, Any]]) -> None:
        from spindle.core.engine._added import AddedNodes, structure_added
        from spindle.core.errors import ValidationError

        specs = []
        for node_id, data in added.items():
            try:
                specs.append(structure_added(self._wf, node_id, data))
            except ValidationError as exc:
                _log.warning("node '%s' added by '%s' is left out: %s", node_id, adder, exc)
        if specs:
            self.open_group(AddedNodes(adder, specs))

    def _item_ended(self, child: str, status: StepStatus) -> None:
        run = self._item_of[child]
        run.ended(child, self.failed)
        self._adopt(run)
        self._feed(run)

    def pop(self, room: int, busy: Container[str]) -> list[str]:
        """Up to ``room`` launchable nodes, in definition order, none of them in ``busy``.

        A node may have been queued before it started waiting or ended; one found
        busy (in flight, waiting) is dropped here and queued again when that ends.
        """
        out: list[str] = []
        heap, names, ended = self._heap, self._names, self._ended
        while heap and len(out) < room:
            nid = names[heapq.heappop(heap)]
            self._queued.discard(nid)
            if nid in busy or nid in ended:
                continue
            out.append(nid)
        return out

    def leaves(self) -> list[str]:
        """Nodes nothing depends on, in order; nodes added at run time count, after the
        workflow's (a node they depend on is no leaf)."""
        out = [n for n in self.order if not self._dependants[n]]
        if not self._taken:
            return out
        from spindle.core.engine._added import AddedNodes

        waited: set[str] = set()
        added: list[str] = []
        for group in self.groups.values():
            if isinstance(group, AddedNodes):
                ids, deps = group.leaves()
                added.extend(ids)
                waited |= deps
                waited.add(group.node_id)  # what a node added runs after it
        return [n for n in out if n not in waited] + [n for n in added if n not in waited]


class _Shape:
    """What a ready set needs of a workflow's graph, the same for each of its runs
    (kept by :meth:`Workflow.derived`; a ready set copies only what it changes)."""

    __slots__ = (
        "any_join",
        "dependants",
        "deps",
        "listed_by",
        "order",
        "position",
        "remaining",
        "roots",
    )

    def __init__(self, workflow: Workflow) -> None:
        self.order = workflow.order()
        self.position = {n: i for i, n in enumerate(self.order)}
        self.deps = {n: workflow.dependencies(n) for n in self.order}
        self.dependants: dict[str, list[str]] = {n: [] for n in self.order}
        for n, deps in self.deps.items():
            for d in deps:
                self.dependants[d].append(n)
        self.remaining = {n: len(deps) for n, deps in self.deps.items()}
        self.roots = [self.position[n] for n, left in self.remaining.items() if left == 0]
        self.roots.sort()
        self.listed_by: dict[str, list[str]] = {}
        for nid, node in workflow.nodes.items():
            if node.branch is not None:
                for listed in node.branch.listed():
                    self.listed_by.setdefault(listed, []).append(nid)
        self.any_join = frozenset(n for n, node in workflow.nodes.items() if node.join == "any")
