"""The shared vocabulary: run status, waits, effects, ledger records, events.

These attrs classes are what stores persist, observers receive and the CLI
prints. They are plain data: behaviour lives in the engine. Datetimes are
always timezone-aware UTC (:func:`utcnow`); the converter refuses naive ones.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from typing import Any

from attrs import define, field

__all__ = [
    "TERMINAL_STATUSES",
    "ArtifactRef",
    "AuditEntry",
    "Effect",
    "EffectOutcome",
    "EffectStatus",
    "HandoffEnvelope",
    "Lease",
    "LifecycleEventType",
    "RunLifecycleEvent",
    "RunState",
    "RunStatus",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "UnsettledWork",
    "WaitReason",
    "WaitState",
    "utcnow",
]


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# What that encoder writes for one string (the C function behind ensure_ascii=False).
_ENCODE_STR = json.encoder.encode_basestring


def _iso_json(value: datetime | None) -> str:
    return "null" if value is None else f'"{value.astimezone(UTC).isoformat()}"'


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


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
    kind that created it (it validates the answer).
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
        }


@define
class Effect:
    """A request a node makes of the engine, resolved by an effect handler.

    Args:
        kind: the effect handler kind (``ask_user``, ``wait_event``, ...).
        params: the handler's configuration (its attrs fields).
        key: the idempotency key of this request within the run.
    """

    kind: str
    params: dict[str, Any] = field(factory=dict)
    key: str = ""


class EffectStatus(enum.StrEnum):
    """What an effect handler decided."""

    COMPLETED = "completed"
    WAITING = "waiting"
    FAILED = "failed"


@define
class EffectOutcome:
    """The result of handling an effect: a value, a wait, or an error."""

    status: EffectStatus
    value: Any = None
    wait: WaitState | None = None
    error: str | None = None
    consumed_event_id: str | None = None

    @classmethod
    def completed(cls, value: Any = None, *, consumed_event_id: str | None = None) -> EffectOutcome:
        """The effect is resolved now with ``value``.

        ``consumed_event_id`` names an inbox event this resolution uses up; the
        engine marks it consumed in the same transaction as the ledger record.
        """
        return cls(EffectStatus.COMPLETED, value=value, consumed_event_id=consumed_event_id)

    @classmethod
    def waiting(cls, wait: WaitState) -> EffectOutcome:
        """The run must suspend until ``wait`` is resumed."""
        return cls(EffectStatus.WAITING, wait=wait)

    @classmethod
    def failed(cls, error: str) -> EffectOutcome:
        """The effect cannot be resolved; the node fails with ``error``."""
        return cls(EffectStatus.FAILED, error=error)


class StepKind(enum.StrEnum):
    """What a ledger record is about."""

    NODE = "node"  # a node's final outcome
    CALL = "call"  # an effect or memoized sub-step inside a node (ctx.step, ctx.ask_user)
    RETRY = "retry"  # a failed attempt that will be retried after a durable backoff
    WAIT = "wait"  # a node suspended on an effect
    RESUME = "resume"  # an answer delivered to a wait
    RUN = "run"  # run-level transitions (cancelled, finished, failed)


class StepStatus(enum.StrEnum):
    """The outcome a ledger record states."""

    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


@define
class StepRecord:
    """One append-only ledger entry.

    ``seq`` is gap-free from 0 per run; ``record_hash`` is the SHA-256 of
    ``prev_hash`` and the record's canonical body, so any edit breaks the chain.
    """

    run_id: str
    seq: int
    node_id: str
    kind: StepKind
    status: StepStatus
    idempotency_key: str
    attempt: int = 1
    result: Any = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    prev_hash: str = ""
    record_hash: str = ""
    _canonical: str | None = field(default=None, init=False, eq=False, repr=False)

    def canonical_body(self) -> str:
        """The record without its hashes as canonical JSON: what ``record_hash`` covers.

        Canonical means ``json.dumps(..., sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)`` of :meth:`to_dict` minus the hashes. Stores may keep
        this text (plus the two hashes) instead of serializing the record again.
        It is computed once per record and written out field by field, because it
        runs on every durable step (a test checks it against ``json.dumps``).
        """
        body = self._canonical
        if body is None:
            enc = _ENCODE_STR
            result = self.result
            if result is None:
                result_text = "null"
            elif isinstance(result, str):
                result_text = enc(result)
            else:
                result_text = _CANONICAL(result)
            body = self._canonical = (
                f'{{"attempt":{self.attempt:d},'
                f'"error":{"null" if self.error is None else enc(self.error)},'
                f'"finished_at":{_iso_json(self.finished_at)},'
                f'"idempotency_key":{enc(self.idempotency_key)},'
                f'"kind":{enc(self.kind.value)},'
                f'"node_id":{enc(self.node_id)},'
                f'"result":{result_text},'
                f'"run_id":{enc(self.run_id)},'
                f'"seq":{self.seq:d},'
                f'"started_at":{_iso_json(self.started_at)},'
                f'"status":{enc(self.status.value)}}}'
            )
        return body

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (what the converter gives, written out for speed:
        stores and the hash chain call this once per durable step)."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "node_id": self.node_id,
            "kind": self.kind.value,
            "status": self.status.value,
            "idempotency_key": self.idempotency_key,
            "attempt": self.attempt,
            "result": self.result,
            "error": self.error,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "prev_hash": self.prev_hash,
            "record_hash": self.record_hash,
        }


@define
class ArtifactRef:
    """A reference to content in the store's content-addressed artifact area."""

    digest: str
    size: int
    media_type: str = "application/octet-stream"
    name: str | None = None


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

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data (equal to the converter's output, but faster:
        stores write it on every commit that changes more than the counters)."""
        from spindle.core._converter import converter

        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "inputs": converter.unstructure(self.inputs),
            "output": converter.unstructure(self.output),
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
        }

    @property
    def wake_at(self) -> datetime | None:
        """The earliest due time of the run's timer waits, if any."""
        dues = [w.due_at for w in self.waits if w.due_at is not None]
        return min(dues) if dues else None


class LifecycleEventType(enum.StrEnum):
    """Every lifecycle event an observer can receive."""

    RUN_STARTED = "run_started"
    NODE_STARTED = "node_started"
    NODE_COMPLETED = "node_completed"
    NODE_FAILED = "node_failed"
    NODE_RETRYING = "node_retrying"
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
    """

    event_id: str
    run_id: str
    type: LifecycleEventType
    sequence: int
    occurred_at: datetime
    node_id: str | None = None
    payload: dict[str, Any] = field(factory=dict)


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
