"""Holding a new run's creation back until its first commit, and writing it when that waits.

``Engine.run`` of a new run writes the run with its first step (see
:class:`~spindle.core.engine._journal.Creation`). That only pays, and is
only safe, while the drive runs one node at a time in this process and that
node ends soon: a run that starts several nodes, an effect, a node run by
another executor than ``inline`` (a subprocess, a pool), or a node that
takes longer than :data:`HOLD_FOR` is written first, so ``spindle runs``
shows it and ``spindle cancel`` reaches it from elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from spindle.core.engine._delays import DelayedCalls, per_loop

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from spindle.core.engine._journal import RunJournal
    from spindle.core.workflow import Workflow

__all__ = ["HOLD_FOR", "CreationTimer"]

#: Seconds a held run waits for its first commit before it is written on its own.
HOLD_FOR = 0.02


class CreationTimer:
    """Writes a held run on its own once its first node has run for :data:`HOLD_FOR`."""

    def __init__(self, journal: RunJournal, workflow: Workflow) -> None:
        self._journal = journal
        self._wf = workflow
        self._task: asyncio.Task[None] | None = None

    def must_write(self, ready: Sequence[str], inflight: Collection[str]) -> bool:
        """Whether the held run must be written before ``ready`` starts: unless one task
        node runs alone, inline (the sequential case the hold is for)."""
        if self._journal.creation is None or not ready:
            return False
        if len(ready) > 1 or inflight:
            return True
        node = self._wf.nodes.get(ready[0])
        if node is None or node.effect is not None or node.runtime is None:
            return True
        # Held only for a node run in this process: one in a subprocess or a pool takes
        # far longer than a commit, and a user watching its log should find its run.
        kind = node.executor.kind_name if node.executor is not None else None
        return (kind or node.runtime.default_executor) != "inline"

    def arm(self) -> None:
        """Start the timer for the attempt about to run (nothing if the run is written)."""
        if self._journal.creation is not None:
            _holds().add(self)

    def _fire(self) -> None:
        self._task = asyncio.ensure_future(self._journal.ensure_created())

    async def disarm(self) -> None:
        """After the attempt: stop the timer, or wait for the write it started (its
        failure, a store error, stops the drive as any commit's would)."""
        _holds().discard(self)
        task, self._task = self._task, None
        if task is not None:
            await task


def _holds() -> DelayedCalls[CreationTimer]:
    """The running loop's timer for held runs (one for all: most first nodes end sooner)."""
    return per_loop(CreationTimer, _new_holds)


def _new_holds() -> DelayedCalls[CreationTimer]:
    return DelayedCalls(HOLD_FOR, CreationTimer._fire)
