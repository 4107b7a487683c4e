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
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, key: K) -> None:
        """Call ``fire(key)`` ``delay`` seconds from now, unless it is discarded first."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Another event loop (a SyncEngine's, after another's): what was due on
            # the old one, and its timer, went with it.
            self._due.clear()
            self._loop, self._timer = loop, None
        due = loop.time() + self._delay
        self._due[key] = due
        if self._timer is None:
            self._timer = loop.call_at(due, self._run)

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing if it was called already, or never added)."""
        self._due.pop(key, None)

    def __len__(self) -> int:
        return len(self._due)

    def _run(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:  # pragma: no cover - the timer is only set with a loop
            return
        now = loop.time()
        due = self._due
        while due:
            key, when = next(iter(due.items()))
            if when > now:
                self._timer = loop.call_at(when, self._run)
                return
            del due[key]
            self._fire(key)


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
