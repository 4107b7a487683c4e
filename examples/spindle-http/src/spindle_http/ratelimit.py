"""The ``rate_limit`` middleware: at most so many requests per second to each host.

::

    # spindle.toml
    [[middleware]]
    kind = "rate_limit"
    per_second = 5
    burst = 2
    hosts = ["api.example.com"]

It wraps two stages: ``execute`` for tasks of the ``http`` runtime (the host
of the request the task will send) and ``effect`` for ``http_poll`` nodes
(the host they poll). Any other task or effect passes straight through. Each
host has a token bucket holding up to ``burst`` tokens, refilled at
``per_second``; a call takes one token, and waits (``asyncio.sleep``, never
blocking the loop) until one is there. Waiters for one host go in the order
they came. The limit is per engine (per ``spindle run`` or worker process):
it spaces out one process's calls, it is not a quota shared by a fleet.

A task's in-task retries are part of the one call: the limit spaces out the
start of each ``http`` task, not each attempt inside it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from attrs import define, field
from spindle import Middleware

from spindle_http.poll import HttpPollHandler
from spindle_http.runtime import perform

__all__ = ["RateLimitMiddleware"]

log = logging.getLogger("spindle.http.rate_limit")


@define
class _Bucket:
    tokens: float
    updated: float
    lock: asyncio.Lock = field(factory=asyncio.Lock)


@define
class RateLimitMiddleware(
    Middleware, kind="rate_limit", description="Spaces out HTTP calls per host."
):
    """At most ``per_second`` calls per second to each host, from ``http`` tasks and
    ``http_poll`` polls, with bursts of up to ``burst``.

    Attributes:
        per_second: calls per second to one host (0.5: one every two seconds).
        burst: calls that may go at once after a quiet spell.
        hosts: the hosts to limit (as in the URL, without the port); none limits every host.
    """

    stages: ClassVar[frozenset[str]] = frozenset({"execute", "effect"})

    per_second: float = 1.0
    burst: int = 1
    hosts: list[str] | None = None

    waited: float = field(default=0.0, init=False)
    clock: Callable[[], float] = field(default=time.monotonic, init=False, repr=False)
    sleep: Callable[[float], Awaitable[Any]] = field(default=asyncio.sleep, init=False, repr=False)
    _buckets: dict[str, _Bucket] = field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        """Refuse impossible options, all of them in one message."""
        problems = []
        if self.per_second <= 0:
            problems.append(f"rate_limit per_second must be positive, got {self.per_second}")
        if self.burst < 1:
            problems.append(f"rate_limit burst must be at least 1, got {self.burst}")
        if problems:
            raise ValueError("; ".join(problems))

    async def __call__(self, call_next: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Wait for the host's turn, then call on; calls to other hosts pass through."""
        host, what = _target(args)
        if host is None or (self.hosts is not None and host not in self.hosts):
            return await call_next(*args)
        waited = await self._take(host)
        self.waited += waited
        log.info("%s: %s waited %.3fs", host, what, waited)
        return await call_next(*args)

    async def _take(self, host: str) -> float:
        """Take one token of ``host``'s bucket, waiting for it; return the seconds waited."""
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(float(self.burst), self.clock())
        started = self.clock()
        async with bucket.lock:  # one waiter at a time per host: first come, first served
            while True:
                now = self.clock()
                bucket.tokens = min(
                    float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second
                )
                bucket.updated = now
                if bucket.tokens >= 1:
                    bucket.tokens -= 1
                    return now - started
                await self.sleep((1 - bucket.tokens) / self.per_second)


def _target(args: tuple[Any, ...]) -> tuple[str | None, str]:
    """The host a stage's call will reach, and how to name the call; None if not HTTP."""
    if len(args) == 3:  # execute: (executor, payload, task)
        _, payload, task = args
        kwargs = getattr(payload, "kwargs", None)
        if getattr(payload, "function", None) is perform and isinstance(kwargs, dict):
            url = kwargs["request"]["url"]
            return urllib.parse.urlsplit(url).hostname, f"node '{task.node_id}'"
    elif len(args) == 4:  # effect: (handler, run, effect, ctx)
        handler, _, _, ctx = args
        if isinstance(handler, HttpPollHandler):
            return urllib.parse.urlsplit(handler.url).hostname, f"node '{ctx.node_id}' http_poll"
    return None, ""
