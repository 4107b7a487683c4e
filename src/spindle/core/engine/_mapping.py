"""One map node's items while a run goes: which have ended, which may start next.

A map node ``NAME`` runs its template once per item as nodes ``NAME[i]``. The
items are not workflow nodes: the ready set learns of them when the map
opens (its source's value is known) and feeds them to the launch queue at
most ``concurrency`` at a time, so 10,000 items cost 10,000 small entries
and never 10,000 coroutines. Each item's record is its own; the map node's
record (the list of item results) comes when every item ended.

Nothing here is recorded: a resumed run opens the map again from the same
recorded source value and finds the items that ended in its ledger.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from spindle.core.workflow import MapSpec, NodeSpec

__all__ = ["Group", "MapRun", "item_id"]


class Group(Protocol):
    """Items a map or a loop node adds to its run (see :class:`MapRun`, ``LoopRun``)."""

    node_id: str

    @property
    def finished(self) -> bool:
        """Nothing more of it runs until its node's attempt (gather, next iteration)."""
        ...

    def take_new(self) -> list[str]:
        """Item ids opened since last asked (registered with the ready set)."""
        ...

    def next_items(self, ended: Container[str]) -> list[str]:
        """Items to start now."""
        ...

    def ended(self, cid: str, failed: Container[str]) -> None:
        """Item ``cid`` ended (once)."""
        ...

    def deps_of(self, cid: str) -> list[str]:
        """The items ``cid`` waits for."""
        ...

    def rename(self, cid: str, head: str) -> str:
        """The run's node id a reference ``head`` of item ``cid`` means."""
        ...

    def item_value(self, cid: str, ref: str) -> Any:
        """What an item reference (``item``, ``index``, ``iteration``...) means for ``cid``."""
        ...

    def item_node(self, cid: str) -> NodeSpec:
        """The spec item ``cid`` runs."""
        ...


def item_id(map_id: str, index: int) -> str:
    """The node id of item ``index`` of map ``map_id``: ``NAME[i]``."""
    return f"{map_id}[{index}]"


class MapRun:
    """The items of one opened map node.

    Attributes:
        node_id: the map node.
        items: the values mapped over, in order.
        ids: the item node ids, in order.
        done: items that ended (completed, failed or skipped).
        failures: items that failed.
    """

    def __init__(self, node: NodeSpec, spec: MapSpec, items: list[Any]) -> None:
        self.node_id = node.id
        self.spec = spec
        self.items = items
        self.size = len(items)
        self.ids = [item_id(node.id, i) for i in range(self.size)]
        self._index = {cid: i for i, cid in enumerate(self.ids)}
        self._limit = spec.concurrency or max(self.size, 1)
        self._next = 0
        self._running = 0
        self._ended: set[str] = set()
        self.done = 0
        self.failures = 0
        self._specs: dict[str, NodeSpec] = {}
        self._taken = False

    def take_new(self) -> list[str]:
        """Every item id, the first time (a map opens all its items at once)."""
        if self._taken:
            return []
        self._taken = True
        return self.ids

    def deps_of(self, cid: str) -> list[str]:
        """A map's items wait for nothing but the map."""
        return []

    def rename(self, cid: str, head: str) -> str:
        """A map item's references mean the workflow's nodes."""
        return head

    @property
    def stopping(self) -> bool:
        """More items failed than the map tolerates: no new item starts."""
        return self.failures > self.spec.max_failures

    @property
    def finished(self) -> bool:
        """Every item ended, or the map stopped and none is running."""
        return self.done == self.size or (self.stopping and self._running == 0)

    def next_items(self, ended: Container[str]) -> list[str]:
        """Items to start now, within the map's ``concurrency``."""
        out: list[str] = []
        while self._next < self.size and self._running < self._limit and not self.stopping:
            cid = self.ids[self._next]
            self._next += 1
            if cid in ended:
                continue
            self._running += 1
            out.append(cid)
        return out

    def ended(self, cid: str, failed: Container[str]) -> None:
        """Count item ``cid`` as ended (once), failed when it is in ``failed``."""
        if cid in self._ended:
            return
        self._ended.add(cid)
        if self._index[cid] < self._next:
            self._running -= 1
        self.done += 1
        if cid in failed:
            self.failures += 1
        self._specs.pop(cid, None)

    def item_value(self, cid: str, ref: str) -> Any:
        """What ``item``, ``item.KEY`` or ``index`` means for item ``cid``."""
        i = self._index[cid]
        head, _, key = ref.partition(".")
        if head == "index":
            return i
        item = self.items[i]
        if not key:
            return item
        return item.get(key) if isinstance(item, Mapping) else None

    def item_node(self, cid: str) -> NodeSpec:
        """The spec item ``cid`` runs: the template, its item references made literal.

        An item is tolerated by the run whatever happens to it (the map decides,
        with ``max_failures``), so it continues on failure.
        """
        found = self._specs.get(cid)
        if found is not None:
            return found
        template = self.spec.node
        inputs: dict[str, Any] = {}
        for name, ref in template.inputs.items():
            if isinstance(ref, str) and ref.partition(".")[0] in ("item", "index"):
                inputs[name] = {"value": self.item_value(cid, ref)}
            else:
                inputs[name] = ref
        spec = attrs.evolve(template, id=cid, inputs=inputs, continue_on_failure=True)
        if cid not in self._ended:
            self._specs[cid] = spec
        return spec
