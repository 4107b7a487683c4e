"""The journal's commit gate: an asyncio lock whose uncontended use costs no call.

A run's commits go through one gate (the driver's own commits, and the
sub-steps its tasks commit meanwhile), taken on every durable step and
almost never contended. ``asyncio.Lock`` makes each acquire a coroutine and
each release two calls; here the caller tests and sets ``busy`` itself, and
only waits (a future) when the gate is taken. Release hands the gate to the
first waiter still waiting, in arrival order, so a caller arriving meanwhile
cannot overtake the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Gate"]


class Gate:
    """Mutual exclusion among the coroutines of one event loop.

    Use it as ``if gate.busy: await gate.wait() else: gate.busy = True``, then
    ``try: ... finally: gate.release()``; or ``async with gate:``.
    """

    __slots__ = ("_waiters", "busy")

    def __init__(self) -> None:
        #: Whether someone holds the gate (set by the caller that takes it).
        self.busy = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait until the gate is handed to this caller (it is ``busy`` on return).

        A caller cancelled while waiting does not hold the gate; if it was handed
        the gate at the moment it was cancelled, it hands it on.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the gate as the cancellation came: pass it on
            raise

    def release(self) -> None:
        """Hand the gate to the first waiter still waiting, or open it."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it holds the gate now: ``busy`` stays set
                return
        self.busy = False

    async def __aenter__(self) -> None:
        if self.busy:
            await self.wait()
        else:
            self.busy = True

    async def __aexit__(self, *exc: object) -> None:
        self.release()
