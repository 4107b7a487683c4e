"""Lifecycle events: what observers receive, one per thing that happened to a run."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from attrs import define, field
from cattrs.gen import make_dict_unstructure_fn, override

from spindle.core.model._converter import converter

__all__ = ["LifecycleEventType", "RunLifecycleEvent"]


class LifecycleEventType(enum.StrEnum):
    """Every lifecycle event an observer can receive."""

    RUN_STARTED = "run_started"
    NODE_STARTED = "node_started"
    NODE_COMPLETED = "node_completed"
    NODE_FAILED = "node_failed"
    NODE_RETRYING = "node_retrying"
    NODE_SKIPPED = "node_skipped"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    RUN_WAITING = "run_waiting"
    RUN_RESUMED = "run_resumed"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    HANDOFF_CREATED = "handoff_created"
    AUDIT = "audit"


@define(frozen=True)
class RunLifecycleEvent:
    """One thing that happened to a run, as observers see it.

    ``sequence`` is per run, gap-free and monotonic across process restarts.
    ``worker`` is the id of the worker driving the run (None outside workers).
    ``workflow`` is the run's workflow name and ``node_kind`` what the node is (its
    runtime's or effect's kind, or ``map``, ``loop``, ``branch``): what metrics and
    traces group events by without loading the run (None on events built by hand).
    """

    event_id: str
    run_id: str
    type: LifecycleEventType
    sequence: int
    occurred_at: datetime
    node_id: str | None = None
    payload: dict[str, Any] = field(factory=dict)
    worker: str | None = None
    workflow: str | None = None
    node_kind: str | None = None


# An event outside workers has no ``worker`` key in its converter form (what the
# jsonl observer writes): event lines read as they did before workers had ids. The
# same holds for ``workflow`` and ``node_kind`` (a run event has no node kind).
_omitted = override(omit_if_default=True)
converter.register_unstructure_hook(
    RunLifecycleEvent,
    make_dict_unstructure_fn(
        RunLifecycleEvent, converter, worker=_omitted, workflow=_omitted, node_kind=_omitted
    ),
)
