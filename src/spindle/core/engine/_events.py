"""Lifecycle events: numbering per run and dispatch to observers.

Events are built only when an observer is bound, so an engine without
observers pays one attribute check per event site. Sequence numbers come from
``RunState.event_seq`` and are persisted with the next commit, so they stay
gap-free and monotonic per run across processes. Events are emitted *after*
the commit that makes them true.

A ``run_started`` or ``run_resumed`` event also asks the observers for labels
to keep with the run (:meth:`CompositeObserver.run_labels`): they are merged
into the state as the event is built, so the commit that carries the event
writes them.
"""

from __future__ import annotations

from typing import Any

from spindle.core.model import LifecycleEventType, RunLifecycleEvent, RunState, new_id, utcnow
from spindle.core.plugin import CompositeObserver

__all__ = ["EventEmitter"]

_LABELLED = frozenset({LifecycleEventType.RUN_STARTED, LifecycleEventType.RUN_RESUMED})


class EventEmitter:
    """Numbers events per run and hands them to the engine's observers."""

    def __init__(self, observers: CompositeObserver) -> None:
        self.observers = observers
        self.active = observers.active
        #: The id of the worker this engine drives runs for (Engine.serve_as): it is
        #: written into every ledger record and event; None outside workers.
        self.worker: str | None = None

    def build(
        self, state: RunState, type_: LifecycleEventType, node_id: str | None = None, **payload: Any
    ) -> RunLifecycleEvent | None:
        """Number a new event for ``state`` (advancing ``event_seq``); None without observers."""
        if not self.active:
            return None
        state.event_seq += 1
        event = RunLifecycleEvent(
            event_id=new_id(),
            run_id=state.run_id,
            type=type_,
            sequence=state.event_seq,
            occurred_at=utcnow(),
            node_id=node_id,
            payload=payload,
            worker=self.worker,
        )
        if type_ in _LABELLED:
            labels = self.observers.run_labels(event, state.workflow, state.labels)
            if labels:
                state.labels = {**state.labels, **labels}
        return event

    async def send(self, events: list[RunLifecycleEvent | None]) -> None:
        """Deliver built events in order (after their commit)."""
        if not self.active:
            return
        for event in events:
            if event is not None:
                await self.observers.on_event(event)
