"""The ready set of a run: which nodes are done, and which may start next.

Bookkeeping is incremental — a counter of unfinished dependencies per node —
so a step costs O(dependants), not a scan of the graph. Launchable nodes
sit in a heap of definition positions (peers start in definition order, a
pop costs O(log n)); a node leaves the heap when launched and comes back
only if it must run again (an answered mid-function call, a retry timer).
"""

from __future__ import annotations

import heapq
from collections.abc import Container
from typing import TYPE_CHECKING, Any

from spindle.core.model import StepKind, StepRecord, StepStatus

if TYPE_CHECKING:
    from spindle.core.workflow import Workflow

__all__ = ["ReadySet"]


class ReadySet:
    """Dependencies, done nodes and the launch order of one run's graph.

    Attributes:
        order: node ids in a dependency-respecting order (definition order among peers).
        deps: each node's dependencies.
        results: completed nodes' results, as the ledger holds them.
        failed: failed nodes, each with its error text.
        skipped: nodes skipped because a dependency failed.
        undone: how many nodes have not ended yet.
    """

    def __init__(self, workflow: Workflow) -> None:
        # The graph's shape is the same for every run of the workflow: built once.
        shape = workflow.derived("ready-set", lambda: _Shape(workflow))
        self.order = shape.order
        self._position = shape.position
        self.deps = shape.deps
        self._dependants = shape.dependants
        self._remaining = dict(shape.remaining)
        self.undone = len(self.order)
        self._heap: list[int] = list(shape.roots)  # sorted, so a heap already
        self._queued: set[str] = {self.order[i] for i in shape.roots}
        self.results: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.skipped: set[str] = set()
        # Completed, failed or skipped: what done() asks, several times a step.
        self._ended: set[str] = set()

    def replay(self, rec: StepRecord) -> None:
        """Take a node's outcome record into account (from the ledger or a new commit)."""
        if rec.kind != StepKind.NODE:
            if rec.kind == StepKind.RUN and rec.status == StepStatus.RETRIED:
                self.reopen()
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
            self.skipped.add(nid)
        else:
            return
        ended.add(nid)
        if not was_done and nid in self._remaining:
            self.undone -= 1
            for dep in self._dependants.get(nid, ()):
                self._remaining[dep] -= 1
                if self._remaining[dep] == 0:
                    self.requeue(dep)

    def reopen(self) -> None:
        """Forget failed and skipped nodes (``spindle retry``): they are to run again.

        Completed nodes stay done; the counters and the queue are rebuilt from them.
        """
        self.failed.clear()
        self.skipped.clear()
        results = self.results
        self._ended = set(results)
        self.undone = sum(1 for n in self.order if n not in results)
        self._remaining = {
            n: sum(1 for d in deps if d not in results) for n, deps in self.deps.items()
        }
        self._heap.clear()
        self._queued.clear()
        for n, left in self._remaining.items():
            if left == 0:
                self.requeue(n)

    def done(self, node_id: str) -> bool:
        """Whether ``node_id`` ended (completed, failed or skipped)."""
        return node_id in self._ended

    def blocked(self, node_id: str) -> bool:
        """Whether a dependency of ``node_id`` failed or was skipped (so it is skipped)."""
        if not self.failed and not self.skipped:
            return False
        return any(d in self.failed or d in self.skipped for d in self.deps[node_id])

    def requeue(self, node_id: str) -> None:
        """Make ``node_id`` launchable (again), unless it is done or already queued."""
        if node_id not in self._queued and node_id not in self._ended:
            self._queued.add(node_id)
            heapq.heappush(self._heap, self._position[node_id])

    def pop(self, room: int, busy: Container[str]) -> list[str]:
        """Up to ``room`` launchable nodes, in definition order, none of them in ``busy``.

        A node may have been queued before it started waiting or ended; one found
        busy (in flight, waiting) is dropped here and queued again when that ends.
        """
        out: list[str] = []
        heap, names, ended = self._heap, self.order, self._ended
        while heap and len(out) < room:
            nid = names[heapq.heappop(heap)]
            self._queued.discard(nid)
            if nid in busy or nid in ended:
                continue
            out.append(nid)
        return out

    def leaves(self) -> list[str]:
        """Nodes nothing depends on, in order."""
        return [n for n in self.order if not self._dependants[n]]


class _Shape:
    """What a ready set needs of a workflow's graph, the same for each of its runs
    (kept by :meth:`Workflow.derived`; a ready set copies only what it changes)."""

    __slots__ = ("dependants", "deps", "order", "position", "remaining", "roots")

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
