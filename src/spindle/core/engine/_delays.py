"""One timer for many calls that are all due the same delay after they were asked for.

A drive that outlives a fraction of a second gets a keeper (lease renewal, cancel
polling); a held run whose first node outlives 20 ms is written on its own.
Most drives and most nodes end sooner, so each would set an event-loop timer
only to cancel it: that cost more than the rest of starting a run (a
``TimerHandle``, a heap push, and a cancelled handle left in the loop's heap).
:class:`DelayedCalls` keeps the keys in the order they were added, which is
the order they fall due (the delay is the same for all), and one timer for
the earliest; dropping a key is a dict deletion.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["DelayedCalls", "per_loop"]

K = TypeVar("K", bound=Hashable)


class DelayedCalls(Generic[K]):
    """Calls ``fire(key)`` once for every key still here ``delay`` seconds after its
    :meth:`add`, on the event loop it was added on.

    Args:
        delay: seconds from :meth:`add` to the call.
        fire: what to call (from the event loop, as a timer callback does).

    Example::

        keepers = DelayedCalls(0.25, start_keeper)
        keepers.add(drive)      # the drive begins
        keepers.discard(drive)  # it ended first: start_keeper is never called
    """

    def __init__(self, delay: float, fire: Callable[[K], object]) -> None:
        self._delay = delay
        self._fire = fire
        self._due: dict[K, float] = {}
        # The loop is held weakly and the timer not at all (only whether one is set):
        # nothing here keeps a closed loop alive (per_loop keys its objects by loop).
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._armed = False
        self._generation = 0

    def add(self, key: K) -> None:
        """Call ``fire(key)`` ``delay`` seconds from now, unless it is discarded first."""
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop() is not loop:
            # Another event loop (a SyncEngine's, after another's): what was due on
            # the old one went with it, and a timer it still holds is stale.
            self._due.clear()
            self._loop, self._armed = weakref.ref(loop), False
            self._generation += 1
        due = loop.time() + self._delay
        self._due[key] = due
        if not self._armed:
            self._arm(loop, due)

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing if it was called already, or never added)."""
        self._due.pop(key, None)

    def __len__(self) -> int:
        return len(self._due)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        loop.call_at(when, self._run, loop, self._generation)
        self._armed = True

    def _run(self, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        if generation != self._generation:
            return  # set on a loop this object no longer serves
        self._armed = False
        now = loop.time()
        due = self._due
        while due:
            key, when = next(iter(due.items()))
            if when > now:
                self._arm(loop, when)
                return
            del due[key]
            try:
                self._fire(key)
            except BaseException:
                if due:  # the others are still called (the loop reports this error)
                    self._arm(loop, now)
                raise


_PER_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, object]] = (
    weakref.WeakKeyDictionary()
)


def per_loop(name: object, make: Callable[[], DelayedCalls[K]]) -> DelayedCalls[K]:
    """The running loop's own :class:`DelayedCalls` called ``name`` (made on first need),
    for code that has no per-engine object to keep one in. It goes with its loop."""
    loop = asyncio.get_running_loop()
    kept = _PER_LOOP.get(loop)
    if kept is None:
        kept = _PER_LOOP[loop] = {}
    calls = kept.get(name)
    if calls is None:
        calls = kept[name] = make()
    return calls  # type: ignore[return-value]
