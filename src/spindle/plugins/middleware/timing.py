"""The ``timing`` middleware: wall time of every stage call, logged and kept in memory.

It is also the smallest complete example of the onion::

    @define
    class TimingMiddleware(Middleware, kind="timing"):
        async def __call__(self, call_next, *args):
            started = time.perf_counter()           # on the way in
            try:
                return await call_next(*args)       # the inner layers and the stage
            finally:
                elapsed = time.perf_counter() - started   # on the way out, even on error

Configure it in ``spindle.toml``::

    [[middleware]]
    kind = "timing"
    priority = -100     # lower is outer: time everything the other layers do too

Each call is logged at DEBUG on ``spindle.timing`` and added to :attr:`stats`,
keyed by stage (``runtime``, ``execute``, ``effect``, ``node``, ``run``) and by
``stage:kind`` for the plugin stages (``execute:inline``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from attrs import define, field

from spindle import EffectHandler, Executor, Middleware, RunState, Runtime

__all__ = ["StageTiming", "TimingMiddleware"]

log = logging.getLogger("spindle.timing")

CallNext = Callable[..., Awaitable[Any]]


@define
class StageTiming:
    """Accumulated wall time of one stage (or one ``stage:kind``)."""

    calls: int = 0
    errors: int = 0
    total: float = 0.0
    max: float = 0.0

    @property
    def mean(self) -> float:
        """Mean seconds per call (0 before the first call)."""
        return self.total / self.calls if self.calls else 0.0

    def add(self, seconds: float, *, failed: bool) -> None:
        """Account for one call that took ``seconds``."""
        self.calls += 1
        self.errors += int(failed)
        self.total += seconds
        self.max = max(self.max, seconds)


def stage_of(args: tuple[Any, ...]) -> tuple[str, str]:
    """Tell ``(stage, kind)`` from a stage's arguments (see :class:`spindle.Middleware`)."""
    first = args[0] if args else None
    if isinstance(first, Runtime):
        return "runtime", first.kind_name
    if isinstance(first, Executor):
        return "execute", first.kind_name
    if isinstance(first, EffectHandler):
        return "effect", first.kind_name
    if isinstance(first, RunState):
        return "run", ""
    return "node", ""


@define
class TimingMiddleware(Middleware, kind="timing"):
    """Times every stage call; logs it at DEBUG and accumulates :attr:`stats`.

    Attributes:
        priority: lower numbers wrap the other layers (set it low to time them too).
        stats: timings by stage and by ``stage:kind``, for this instance's lifetime.
    """

    stats: dict[str, StageTiming] = field(factory=dict, init=False, repr=False, eq=False)

    async def __call__(self, call_next: CallNext, *args: Any) -> Any:
        """Call the next layer and record how long it took, whether it raised or not."""
        started = time.perf_counter()
        failed = True
        try:
            result = await call_next(*args)
            failed = False
            return result
        finally:
            elapsed = time.perf_counter() - started
            stage, kind = stage_of(args)
            self._account(stage, elapsed, failed)
            if kind:
                self._account(f"{stage}:{kind}", elapsed, failed)
            log.debug(
                "%s%s took %.3f ms%s",
                stage,
                f" {kind}" if kind else "",
                elapsed * 1000,
                " (raised)" if failed else "",
            )

    def _account(self, key: str, seconds: float, failed: bool) -> None:
        timing = self.stats.get(key)
        if timing is None:
            timing = self.stats[key] = StageTiming()
        timing.add(seconds, failed=failed)
