"""The engine's side of a node attempt's durable sub-steps, as a task context sees it.

:class:`StepLog` is what ``ctx.step`` and its twins commit through: the
engine implements it for a task in its own process, and the ``subprocess``
and ``process_pool`` executors implement it in the child by forwarding each
call to the engine's over a socket.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple, Protocol, runtime_checkable

from spindle.core.model import StepRecord

__all__ = ["StepHistory", "StepLog"]


class StepHistory(NamedTuple):
    """The failed attempts of one sub-step in its node's current attempt."""

    failures: int
    last: StepRecord | None  # the latest failure; its result holds the backoff ``delay``


@runtime_checkable
class StepLog(Protocol):
    """The engine's side of one node attempt's sub-steps (``TaskContext.steps``).

    A context in another process implements it too, forwarding each call to
    the engine's (the ``subprocess`` and ``process_pool`` executors do).

    Attributes:
        loop: the engine's event loop, where commits run.
        inline_sleep: backoffs up to this many seconds are slept through; longer
            ones suspend the node on a durable timer.
    """

    loop: asyncio.AbstractEventLoop
    inline_sleep: float

    @property
    def open(self) -> bool:
        """False once the attempt ended: no further sub-step may run."""
        ...

    def history(self, key: str) -> StepHistory:
        """The failed attempts recorded for sub-step ``key``."""
        ...

    async def value(self, record: StepRecord) -> Any:
        """A recorded sub-step's value, fetched from the artifact store if it was offloaded."""
        ...

    async def completed(self, index: int, value: Any, *, name: str, attempt: int) -> Any:
        """Commit sub-step ``index``'s value; return it as the ledger holds it.

        Raises:
            AttemptAbandoned: the attempt this sub-step belongs to has ended.
            TaskError: the value cannot be recorded, or the run hit ``max_steps``.
        """
        ...

    async def failed(
        self, index: int, error: BaseException, *, name: str, attempt: int, delay: float | None
    ) -> None:
        """Commit failed attempt ``attempt`` of sub-step ``index`` (``delay``: its backoff,
        None when it is not tried again)."""
        ...
