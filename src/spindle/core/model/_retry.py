"""Retry policies: how often, and after how long, a failed node or sub-step runs again.

Plain data with two pure functions of it, shared by nodes (``retry:`` in a
workflow) and sub-steps (``ctx.step(fn, retry=...)``).
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import define, field

__all__ = ["RetryPolicy"]


@define
class RetryPolicy:
    """How a failing node is retried.

    The delay before attempt ``n+1`` is ``backoff * multiplier**(n-1)``, capped
    at ``max_backoff``, then spread by ``±jitter`` (a fraction). ``retry_on``
    lists exception class names (``ConnectionError`` or ``mod.Error``) that
    retry; empty means every failure retries. Timeouts retry like failures.

    Attributes:
        max_attempts: tries in all, the first included (1: no retry).
        backoff: seconds to wait after the first failure.
        multiplier: factor the wait grows by after each further failure.
        max_backoff: the longest wait, in seconds.
        jitter: spread each wait by up to this fraction, up or down.
        retry_on: exception class names that retry; empty: every failure retries.
    """

    max_attempts: int = 1
    backoff: float = 0.0
    multiplier: float = 2.0
    max_backoff: float = 300.0
    jitter: float = 0.0
    retry_on: list[str] = field(factory=list)

    def delay(self, attempt: int, rand: float = 0.5) -> float:
        """Seconds to wait after failed ``attempt`` (1-based); ``rand`` in [0, 1)."""
        base = min(self.backoff * (self.multiplier ** max(attempt - 1, 0)), self.max_backoff)
        spread = base * self.jitter * (2 * rand - 1)
        return max(0.0, base + spread)

    def retries(self, error_type: str, error_mro: Iterable[str] = ()) -> bool:
        """Whether a failure of class ``error_type`` (with base names ``error_mro``) retries."""
        if not self.retry_on:
            return True
        names = {error_type, *error_mro}
        short = {n.rsplit(".", 1)[-1] for n in names}
        return any(r in names or r in short for r in self.retry_on)
