"""A run's durable state: its status, its open waits and its lease.

These attrs classes are what stores persist and the CLI prints. They are
plain data: behaviour lives in the engine. Datetimes are always
timezone-aware UTC (:func:`~spindle.core.model.utcnow`); the converter
refuses naive ones.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from attrs import define, field
from cattrs.gen import make_dict_unstructure_fn, override

from spindle.core.model._converter import converter
from spindle.core.model._head import LedgerHead
from spindle.core.model._time import _iso, utcnow
from spindle.core.model._work import QueueSpot

__all__ = ["TERMINAL_STATUSES", "Lease", "RunState", "RunStatus", "WaitReason", "WaitState"]

# Values the converter unstructures to themselves.
_SCALARS = frozenset({str, int, float, bool, type(None)})


class RunStatus(enum.StrEnum):
    """Where a run is in its life: ``pending → running → (waiting ↔ running)* → end``."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the run can never change again."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class WaitReason(enum.StrEnum):
    """Why a run (or one of its nodes) is suspended."""

    EVENT = "event"
    TIMER = "timer"
    USER = "user"
    SUBWORKFLOW = "subworkflow"
    RETRY = "retry"
    HANDOFF = "handoff"


@define
class WaitState:
    """One open wait of a run.

    ``key`` is what ``resume`` names; ``event_key`` is what ``emit`` delivers to
    (for event waits); ``due_at`` is when a timer or retry fires; ``child_run_id``
    links a sub-workflow wait to its child run; ``kind`` is the effect handler
    kind that created it (it validates the answer). ``data`` is the handler's
    own JSON state for a wait that takes several answers (the approvals so far).
    """

    key: str
    reason: WaitReason
    node_id: str
    prompt: str | None = None
    choices: list[str] | None = None
    event_key: str | None = None
    due_at: datetime | None = None
    child_run_id: str | None = None
    call_key: str | None = None
    created_at: datetime = field(factory=utcnow)
    kind: str | None = None
    data: dict[str, Any] = field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The wait as JSON-ready data (equal to the converter's output, but faster)."""
        return {
            "key": self.key,
            "reason": self.reason.value,
            "node_id": self.node_id,
            "prompt": self.prompt,
            "choices": None if self.choices is None else list(self.choices),
            "event_key": self.event_key,
            "due_at": _iso(self.due_at),
            "child_run_id": self.child_run_id,
            "call_key": self.call_key,
            "created_at": _iso(self.created_at),
            "kind": self.kind,
            "data": dict(self.data),
        }


@define
class Lease:
    """Who drives a run: an owner id, its host and pid, an expiry and a fencing token."""

    owner: str
    host: str
    pid: int
    expires_at: datetime
    token: int


@define
class RunState:
    """The durable state of one run, without its ledger.

    ``definition_id`` names the serialized workflow kept in the store (with a
    content hash per node), so a run can be resumed without the original file
    and a changed definition is detected node by node.

    ``head`` is filled in by the store when it loads the run: the
    :class:`LedgerHead` its last commit wrote (None when the run was last
    written by a store older than ledger heads). It is not part of the stored
    state (:meth:`to_dict`) nor of equality.
    """

    run_id: str
    workflow: str
    status: RunStatus = RunStatus.PENDING
    inputs: dict[str, Any] = field(factory=dict)
    output: Any = None
    error: str | None = None
    waits: list[WaitState] = field(factory=list)
    parent_run_id: str | None = None
    parent_wait_key: str | None = None
    definition_id: str = ""
    created_at: datetime = field(factory=utcnow)
    updated_at: datetime = field(factory=utcnow)
    step_count: int = 0
    event_seq: int = 0
    audit_seq: int = 0
    disposition: str | None = None
    labels: dict[str, str] = field(factory=dict)
    queue: QueueSpot | None = None
    head: LedgerHead | None = field(default=None, eq=False)

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data (equal to the converter's output, but faster:
        stores write it on every commit that changes more than the counters)."""
        from spindle.core.model._converter import converter

        inputs, output = self.inputs, self.output
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            # What the converter makes of no inputs and of a scalar, without asking it.
            "inputs": {} if type(inputs) is dict and not inputs else converter.unstructure(inputs),
            "output": output if type(output) in _SCALARS else converter.unstructure(output),
            "error": self.error,
            "waits": [w.to_dict() for w in self.waits],
            "parent_run_id": self.parent_run_id,
            "parent_wait_key": self.parent_wait_key,
            "definition_id": self.definition_id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "step_count": self.step_count,
            "event_seq": self.event_seq,
            "audit_seq": self.audit_seq,
            "disposition": self.disposition,
            "labels": dict(self.labels),
            # Only a queued run has one: the stored state of every other run (and the
            # digest over it) is what it was before queues.
            **({} if self.queue is None else {"queue": self.queue.to_dict()}),
        }

    @property
    def wake_at(self) -> datetime | None:
        """The earliest due time of the run's timer waits, if any."""
        dues = [w.due_at for w in self.waits if w.due_at is not None]
        return min(dues) if dues else None


# An unqueued run's converter form has no ``queue`` (as RunState.to_dict): the
# digests of runs stored before queues existed still hold.
converter.register_unstructure_hook(
    RunState,
    make_dict_unstructure_fn(RunState, converter, queue=override(omit_if_default=True)),
)
