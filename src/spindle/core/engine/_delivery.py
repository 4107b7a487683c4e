"""Delivering an event: to the run waiting on its key, now or when it next waits.

``emit`` records the event first, addressed to the run that has waited
longest on its key, then drives that run with the event as its answer; the
answer and the event's consumption commit together. A run that is busy (its
lease held by another process, or by this engine's own drive) cannot be
driven now: the event stays queued for it, and the run takes it from the
inbox before it next stops to wait
(:func:`~spindle.core.engine._due.queued_answer`), again in the
commit that records the answer. Either way the event reaches one run, once.
An event nobody waits on is kept for the first run that waits on its key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle.core.engine._answers import Answer
from spindle.core.errors import LeaseHeld, ValidationError
from spindle.core.model import RESERVED_EVENT_PREFIX

if TYPE_CHECKING:
    from spindle.core.engine._drives import Drives
    from spindle.core.store import Store

__all__ = ["Delivery", "check_event_key", "deliver"]


@define(frozen=True)
class Delivery:
    """Where an emitted event went.

    Attributes:
        event_id: the inbox event recorded for it.
        key: its event key.
        resumed: the run it answered now (empty, or one run id).
        queued_for: the busy run it is queued for, which takes it when it next
            waits; None when it answered a run now or waits for any run.
    """

    event_id: str
    key: str
    resumed: list[str] = field(factory=list)
    queued_for: str | None = None


def check_event_key(event_key: str) -> None:
    """Refuse a key an application may not emit.

    Raises:
        ValidationError: ``event_key`` is reserved (it starts with ``spindle:``).
    """
    if event_key.startswith(RESERVED_EVENT_PREFIX):
        raise ValidationError(
            f"event key {event_key!r} is reserved",
            [
                f"keys starting with {RESERVED_EVENT_PREFIX!r} carry engine requests; "
                f"choose another key"
            ],
        )


async def deliver(store: Store, drives: Drives, key: str, payload: Any) -> Delivery:
    """Record the event under ``key`` and hand it to the run waiting on it, if any.

    Raises:
        StoreError: the store refused the event (its payload is not JSON data).
    """
    waiting = await store.waiting_on(key)
    event = await store.deliver_event(key, payload, run_id=waiting[0] if waiting else None)
    for before, run_id in zip([None, *waiting], waiting, strict=False):
        if before is not None and not await store.queue_event(event.event_id, run_id):
            # Consumed meanwhile: only the run it was queued for, ``before``, can have.
            return Delivery(event.event_id, key, resumed=[before])
        answer = Answer(event_key=key, payload=payload, consume=(event.event_id,))
        try:
            await drives.drive(run_id, answer=answer)
        except LeaseHeld:
            # Busy: the run takes the event from the inbox before it next waits.
            return Delivery(event.event_id, key, queued_for=run_id)
        if answer.delivered:
            return Delivery(event.event_id, key, resumed=[run_id])
    if waiting:
        # Nobody took it now: it waits for the first run to wait on its key.
        await store.queue_event(event.event_id, None)
    return Delivery(event.event_id, key)
