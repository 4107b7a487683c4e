"""The ``webhook`` observer: lifecycle events posted as JSON to a URL.

::

    # spindle.toml
    [[observers]]
    kind = "webhook"
    url = "http://127.0.0.1:8080/events"
    events = ["run_completed", "run_failed", "run_waiting"]

An observer runs on the engine's event loop, after the commit that made the
event true, so it must never hold a run up. ``on_event`` only puts the event
in a bounded queue and returns; one background task posts the queue in
order, each post retried with exponential backoff. When the endpoint is
down, posts fail quietly (a warning in the log per dropped event) and, once
the queue is full, new events are dropped with a warning: a run never waits
for, nor fails because of, its webhook. ``aclose`` (the engine closing)
flushes what is queued, for at most ``flush_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from attrs import define, field
from spindle import LifecycleEventType, ObserverPlugin, RunLifecycleEvent

from spindle_http._client import HttpRequest, RetryPolicy, send

__all__ = ["WebhookObserver", "event_document"]

log = logging.getLogger("spindle.http.webhook")

_EVENT_TYPES = frozenset(t.value for t in LifecycleEventType)


def event_document(event: RunLifecycleEvent) -> dict[str, Any]:
    """The JSON document posted for ``event``."""
    return {
        "event_id": event.event_id,
        "type": event.type.value,
        "run_id": event.run_id,
        "node_id": event.node_id,
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": event.payload,
    }


@define
class WebhookObserver(
    ObserverPlugin, kind="webhook", description="Posts lifecycle events as JSON to a URL."
):
    """Posts lifecycle events as JSON to a URL, retried with backoff, never holding a run up.

    Attributes:
        url: where to ``POST`` each event (``http://`` or ``https://``).
        events: the event types to post (``run_completed``, ``node_failed`` ...);
            none posts every event.
        headers: added to every post (an ``Authorization`` value is never logged).
        timeout: seconds one post may take.
        retries: attempts after the first for one event.
        backoff: seconds before the first retry; doubled for each next one.
        max_backoff: the longest wait between two attempts.
        queue_size: events kept while posts are slow; more are dropped (logged).
        flush_timeout: seconds ``aclose`` waits for the queue to drain.
    """

    url: str
    events: list[str] | None = None
    headers: dict[str, str] = field(factory=dict)
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 5.0
    queue_size: int = 1000
    flush_timeout: float = 10.0

    posted: int = field(default=0, init=False)
    dropped: int = field(default=0, init=False)
    _queue: asyncio.Queue[RunLifecycleEvent] | None = field(
        default=None, init=False, repr=False, eq=False
    )
    _sender: asyncio.Task[None] | None = field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        """Refuse impossible options, all of them in one message, when the entry is read."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """One line per option that cannot work."""
        problems = []
        if not self.url.lower().startswith(("http://", "https://")):
            problems.append(f"webhook url must start with http:// or https://, got {self.url!r}")
        unknown = sorted(set(self.events or ()) - _EVENT_TYPES)
        if unknown:
            problems.append(
                f"unknown event type(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_EVENT_TYPES))}"
            )
        for name in ("timeout", "queue_size"):
            if getattr(self, name) <= 0:
                problems.append(f"webhook {name} must be positive, got {getattr(self, name)}")
        for name in ("retries", "backoff", "max_backoff", "flush_timeout"):
            if getattr(self, name) < 0:
                problems.append(f"webhook {name} must be 0 or more, got {getattr(self, name)}")
        return problems

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Queue the event if its type is selected; return at once."""
        if self.events is not None and event.type.value not in self.events:
            return
        if self._queue is None:
            self._queue = asyncio.Queue(self.queue_size)
            self._sender = asyncio.create_task(self._send_all(self._queue))
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "webhook %s: queue full (%d events); dropped %s of run %s",
                self.url,
                self.queue_size,
                event.type.value,
                event.run_id,
            )

    async def aclose(self) -> None:
        """Post what is queued (for at most ``flush_timeout`` seconds), then stop."""
        queue, sender = self._queue, self._sender
        self._queue = self._sender = None
        if queue is None or sender is None:
            return
        try:
            await asyncio.wait_for(queue.join(), self.flush_timeout)
        except TimeoutError:
            left = queue.qsize() + 1  # the one in flight too
            self.dropped += left
            log.warning(
                "webhook %s: %d event(s) not posted within flush_timeout=%gs; dropped",
                self.url,
                left,
                self.flush_timeout,
            )
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender

    async def _send_all(self, queue: asyncio.Queue[RunLifecycleEvent]) -> None:
        """Post queued events one at a time, in the order they happened."""
        policy = RetryPolicy(self.retries, self.backoff, self.max_backoff)
        headers = {"Content-Type": "application/json", **self.headers}
        while True:
            event = await queue.get()
            try:
                body = json.dumps(event_document(event), default=str).encode()
                request = HttpRequest("POST", self.url, headers, body, self.timeout)
                await send(request, policy, what=f"webhook {event.type.value}")
                self.posted += 1
            except Exception as exc:  # a webhook problem must never end the sender
                self.dropped += 1
                log.warning("webhook: dropped %s of run %s: %s", event.type, event.run_id, exc)
            finally:
                queue.task_done()
