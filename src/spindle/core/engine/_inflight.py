"""The attempts of one drive running as tasks, and those that ended, in the order they ended.

Finished attempts arrive through a deque their done-callbacks append to:
``asyncio.wait`` over every task in flight would cost O(in flight) callbacks
per step, which dominates a wide fan-out, and an ``asyncio.Queue`` costs
more per item than the drive needs. The drive takes the first attempt that
ends (waiting if none has), then every other one that has ended by then, so
their completions can share a commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spindle.core.engine._attempt import Finished

__all__ = ["InFlight"]


class InFlight:
    """Attempts running as tasks, by node id (``tasks``), and the queue of those that ended."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Finished]] = {}
        self._ended: deque[asyncio.Task[Finished] | None] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def launch(self, node_id: str, attempt: Coroutine[Any, Any, Finished]) -> None:
        """Run ``attempt`` as a task of its own."""
        task = asyncio.ensure_future(attempt)
        task.add_done_callback(self._put)
        self.tasks[node_id] = task

    def _put(self, task: asyncio.Task[Finished] | None) -> None:
        self._ended.append(task)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake(self) -> None:
        """Make :meth:`next` return None now (the drive is asked to stop)."""
        self._put(None)

    async def next(self) -> Finished | None:
        """The next attempt to end (waiting for one if need be), or None after :meth:`wake`.

        Raises:
            BaseException: what the attempt's task raised (a failing store).
        """
        ended = self._ended
        while True:
            while not ended:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            task = ended.popleft()
            if task is None:
                return None
            if not task.cancelled():
                finished = task.result()
                del self.tasks[finished.via or finished.node_id]
                return finished

    def take_ended(self) -> list[Finished]:
        """Every attempt that has ended and not been taken yet, without waiting.

        Raises:
            BaseException: what an attempt's task raised (a failing store).
        """
        out: list[Finished] = []
        ended = self._ended
        while ended and ended[0] is not None:
            task = ended.popleft()
            if task is not None and not task.cancelled():
                finished = task.result()
                del self.tasks[finished.via or finished.node_id]
                out.append(finished)
        return out

    def cancel(self) -> None:
        """Ask every attempt in flight to stop."""
        for task in self.tasks.values():
            task.cancel()

    async def cancel_all(self) -> None:
        """Stop every attempt in flight, wait for them, and forget them."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()
        self._ended.clear()  # the cancelled attempts (and a stop's wake-up) are done with
