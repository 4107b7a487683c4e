"""The ``http_poll`` effect: wait, durably, until a URL says something is ready.

::

    ready:
      effect:
        kind: http_poll
        url: "http://127.0.0.1:8080/jobs/{job}"
        field: state
        equals: done
        interval: 2
        max_polls: 30
      inputs: {job: submit.body.id}

Each poll is one GET. When the condition holds (the status is one of
``until_status`` and, with ``field``, the JSON body's field equals
``equals``, or is true when ``equals`` is not given) the node completes with
``{"status", "body", "polls"}``. Otherwise the node waits on a **durable
timer**: the run's state records the wait (its key counts the polls,
``ready:poll3``) and its due time, so a crash, a restart or another process
loses nothing — when the timer is due (in the engine, in a worker, or on
``spindle resume RUN_ID``) the engine runs the node again and the handler
polls again. The poll count is read back from the ledger (the node's last
wait record, found by its idempotency key through the store's index), so
``max_polls`` holds across restarts (and across the node's own ``retry:``
attempts: a retried node gets one more poll, not a fresh count). A
connection failure counts as "not yet": the endpoint may be restarting.
``spindle show RUN_ID`` lists the wait as ``ready:pollN: retry due at ...``,
and ``spindle resume RUN_ID`` polls again at once.

The wait between polls is ``interval * backoff ** n`` (n from 0), capped at
``max_interval``; timers due within the engine's ``max_inline_sleep`` are
slept through in-process, longer ones leave the run ``waiting`` for a
worker.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

import attrs
from attrs import define
from spindle import (
    Effect,
    EffectContext,
    EffectHandler,
    EffectOutcome,
    RunState,
    StepKind,
    WaitReason,
    WaitState,
)

from spindle_http._client import HttpError, HttpRequest, RetryPolicy, send
from spindle_http._template import dig

__all__ = ["HttpPollHandler"]

_POLL_KEY = re.compile(r":poll(\d+)$")


@define
class HttpPollHandler(
    EffectHandler, kind="http_poll", description="Polls a URL until a condition holds (durably)."
):
    """Polls a URL on a durable timer until its status (and a JSON field) say it is ready.

    Attributes:
        url: the URL to GET; a template (``{inputs.NAME}``, ``{run.id}``,
            ``{NAME}`` for a node input).
        headers: request headers (no secrets: effect options are stored with the run).
        until_status: the statuses that may mean ready.
        field: a dotted path into the JSON body (``job.state``); none: the status decides.
        equals: the value ``field`` must have; none: any true value.
        interval: seconds before the second poll.
        backoff: each wait is this many times the one before (1: a fixed interval).
        max_interval: the longest wait between two polls.
        max_polls: how many polls before the node fails.
        timeout: seconds one poll may take.
        key: the wait's key prefix (default: the node id); polls are ``KEY:pollN``.
    """

    templates: ClassVar[tuple[str, ...]] = ("url",)

    url: str
    headers: dict[str, str] = attrs.field(factory=dict)
    until_status: list[int] = attrs.field(factory=lambda: [200])
    field: str | None = None
    equals: Any = None
    interval: float = 1.0
    backoff: float = 1.5
    max_interval: float = 60.0
    max_polls: int = 60
    timeout: float = 10.0
    key: str | None = None

    def check(self, node: object) -> list[str]:
        """Report impossible options when the workflow is loaded."""
        problems = []
        if not self.url.lower().startswith(("http://", "https://", "{")):
            problems.append(f"http_poll url must start with http:// or https://, got {self.url!r}")
        if self.interval <= 0 or self.timeout <= 0:
            problems.append(
                f"http_poll interval and timeout must be positive, got interval={self.interval} "
                f"timeout={self.timeout}"
            )
        if self.backoff < 1:
            problems.append(f"http_poll backoff must be 1 or more, got {self.backoff}")
        if self.max_interval < self.interval:
            problems.append(
                f"http_poll max_interval ({self.max_interval}) is shorter than interval "
                f"({self.interval})"
            )
        if self.max_polls < 1:
            problems.append(f"http_poll max_polls must be at least 1, got {self.max_polls}")
        if not self.until_status:
            problems.append("http_poll until_status must list at least one status")
        if self.field is not None and not all(self.field.split(".")):
            problems.append(f"http_poll field {self.field!r} has an empty part; write a.b.c")
        return problems

    def delay(self, polls: int) -> float:
        """Seconds to wait after poll number ``polls`` (from 1) before the next one."""
        return float(min(self.max_interval, self.interval * self.backoff ** (polls - 1)))

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Poll once: complete when ready, else wait on a timer, or fail after ``max_polls``."""
        if not self.url.lower().startswith(("http://", "https://")):
            return EffectOutcome.failed(
                f"http_poll url {self.url!r} does not start with http:// or https://; "
                f"check the value that starts it"
            )
        base = self.key or ctx.wait_key
        polls = await self._polls_so_far(run, ctx, base) + 1
        ready, seen = await self._poll(ctx.node_id)
        if ready is not None:
            return EffectOutcome.completed({**ready, "polls": polls})
        if polls >= self.max_polls:
            return EffectOutcome.failed(
                f"http_poll gave up on {self.url} after {polls} poll(s): {seen}; "
                f"raise max_polls or interval if it needs longer"
            )
        due = ctx.now + timedelta(seconds=self.delay(polls))
        # A RETRY wait is the engine's "run this node again when due" timer: the
        # handler is asked again then, which is exactly the next poll.
        wait = WaitState(f"{base}:poll{polls}", WaitReason.RETRY, ctx.node_id, due_at=due)
        return EffectOutcome.waiting(wait)

    async def _polls_so_far(self, run: RunState, ctx: EffectContext, base: str) -> int:
        """How many polls earlier attempts made: from the node's last wait record."""
        key = ctx.call_key or f"{run.run_id}:{ctx.node_id}"
        record = await ctx.store.find_step(run.run_id, key)
        if record is None or record.kind != StepKind.WAIT or not isinstance(record.result, dict):
            return 0
        wait_key = str(record.result.get("key", ""))
        match = _POLL_KEY.search(wait_key)
        if match is None or not wait_key.startswith(base + ":"):
            return 0
        return int(match.group(1))

    async def _poll(self, node_id: str) -> tuple[dict[str, Any] | None, str]:
        """``(result, "")`` when ready, else ``(None, what was seen)``."""
        request = HttpRequest("GET", self.url, self.headers, None, self.timeout)
        try:
            response = await send(
                request,
                RetryPolicy(retries=0),
                expect=range(100, 600),
                what=f"node '{node_id}' http_poll",
            )
        except HttpError as exc:
            return None, f"no answer ({exc})"
        body = response.data()
        if response.status not in self.until_status:
            return None, f"status {response.status}"
        if self.field is None:
            return {"status": response.status, "body": body}, ""
        try:
            value = dig(body, self.field.split("."), "the body")
        except KeyError as exc:
            return None, f"status {response.status}, {exc.args[0]}"
        done = bool(value) if self.equals is None else value == self.equals
        if not done:
            return None, f"status {response.status}, {self.field}={value!r}"
        return {"status": response.status, "body": body}, ""
