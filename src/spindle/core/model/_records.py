"""What runs leave besides their ledger: artifacts, audit entries, handoffs, and the
unsettled-work snapshot a finishing run's hooks receive."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import define, field

from spindle.core.model._run import WaitState
from spindle.core.model._time import utcnow

__all__ = ["ArtifactRef", "AuditEntry", "HandoffEnvelope", "UnsettledWork"]


@define
class ArtifactRef:
    """A reference to content in the store's content-addressed artifact area."""

    digest: str
    size: int
    media_type: str = "application/octet-stream"
    name: str | None = None


@define
class AuditEntry:
    """An audit line written by a finish hook; ``seq`` is per run and monotonic."""

    run_id: str
    seq: int
    message: str
    data: dict[str, Any] = field(factory=dict)
    source: str = ""
    created_at: datetime = field(factory=utcnow)


@define
class HandoffEnvelope:
    """A payload handed from a finished run to a follow-on workflow.

    ``target`` is a workflow file path or a workflow name the engine knows.
    ``acknowledged_run_id`` is set once the follow-on run has started.
    """

    envelope_id: str
    source_run_id: str
    target: str
    payload: Any = None
    created_at: datetime = field(factory=utcnow)
    acknowledged_run_id: str | None = None

    @property
    def open(self) -> bool:
        """Whether no follow-on run has acknowledged the envelope yet."""
        return self.acknowledged_run_id is None


@define
class UnsettledWork:
    """What is still outstanding when a run finishes, for ``spindle_on_finish``."""

    waiting_children: list[str] = field(factory=list)
    pending_timers: list[WaitState] = field(factory=list)
    undelivered_events: list[str] = field(factory=list)
    in_flight: list[str] = field(factory=list)
    open_handoffs: list[str] = field(factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """How many items of each sort are outstanding."""
        return {
            "waiting_children": len(self.waiting_children),
            "pending_timers": len(self.pending_timers),
            "undelivered_events": len(self.undelivered_events),
            "in_flight": len(self.in_flight),
            "open_handoffs": len(self.open_handoffs),
        }

    @property
    def empty(self) -> bool:
        """Whether nothing at all is outstanding."""
        return not any(self.counts.values())

    def summary(self) -> str:
        """One line describing what is outstanding, e.g. ``'2 waiting children, 1 timer'``."""
        parts = [f"{n} {name.replace('_', ' ')}" for name, n in self.counts.items() if n]
        return ", ".join(parts) if parts else "nothing unsettled"
