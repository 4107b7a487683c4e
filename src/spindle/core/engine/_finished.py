"""How one node attempt ended (:class:`Finished`), before it is committed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from attrs import define

from spindle.core.engine._caching import CachePlan
from spindle.core.model import Effect, EffectOutcome
from spindle.core.plugin import RunLinks, TaskContext

__all__ = ["Finished", "FinishedKind"]


class FinishedKind(enum.StrEnum):
    """How an attempt ended."""

    OK = "ok"  # the task returned a value
    ERROR = "error"  # the task (or preparing it) raised
    SUSPEND = "suspend"  # the task asked for an effect mid-function
    EFFECT = "effect"  # an effect node's handler decided
    SKIP = "skip"  # a dependency failed, or a condition or branch left it out
    OPENED = "opened"  # a map node's items started (nothing to record yet)


@define
class Finished:
    """What one node attempt produced, before it is committed."""

    node_id: str
    kind: FinishedKind
    started_at: datetime
    value: Any = None
    error: BaseException | None = None
    effect: Effect | None = None
    outcome: EffectOutcome | None = None
    ctx: TaskContext | None = None
    links: RunLinks | None = None
    via: str | None = None  # the node whose attempt this is, when it records another id
    cached: CachePlan | None = None  # a cached node's fingerprint (and the entry of a hit)
