"""The memory store's dicts, and the tables kept beside runs and ledgers.

:class:`~spindle.plugins.stores.memory.MemoryStore` is split as the SQLite
store is, so each module holds one concept: this base owns the store's dicts
(one :class:`RunEntry` per run, looked up or refused with ``RunNotFound``) and
the tables around runs -- definitions, the inbox, artifacts, audit entries and
handoffs; ``memory.py`` holds what a run's progress goes through: the commit,
run queries, the ledger and leases.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from attrs import define, field

from spindle.core.errors import RunNotFound, StoreError
from spindle.core.model import (
    ArtifactRef,
    AuditEntry,
    HandoffEnvelope,
    Lease,
    RunState,
    StepRecord,
    utcnow,
)
from spindle.core.store import (
    InboxEvent,
    Store,
    artifact_digest,
    check_ack,
    check_durability,
    digest_hex,
    may_take,
    new_event,
    no_event,
)
from spindle.plugins.stores._common import to_json
from spindle.plugins.stores._memory_copy import clone, json_copy

__all__ = ["MemoryBase", "RunEntry"]


class RunEntry:
    """Everything the store keeps about one run."""

    __slots__ = (
        "claimed_at",
        "head",
        "keys",
        "lease",
        "order",
        "records",
        "state",
        "token",
        "waits",
    )

    def __init__(self, state: RunState, order: int) -> None:
        self.state = state
        self.order = order  # creation order, to break created_at ties like a rowid
        self.records: list[StepRecord] = []
        self.keys: dict[str, StepRecord] = {}  # idempotency key -> latest record
        self.head = ""
        self.token = 0  # the last lease token handed out (0: never leased)
        self.lease: Lease | None = None
        self.waits: dict[str, datetime] = {}  # event key -> when the wait began
        self.claimed_at: datetime | None = None  # first claimed by a worker (its start)


@define
class MemoryBase(Store):
    """The memory store's dicts and the side tables (the rest is ``MemoryStore``)."""

    _runs: dict[str, RunEntry] = field(factory=dict, init=False, repr=False, eq=False)
    _definitions: dict[str, str] = field(factory=dict, init=False, repr=False, eq=False)
    _events: dict[str, InboxEvent] = field(factory=dict, init=False, repr=False, eq=False)
    # Whether any event was ever queued for a run: until then, nothing to release.
    _queued_any: bool = field(default=False, init=False, repr=False, eq=False)
    _waiters: dict[str, dict[str, datetime]] = field(factory=dict, init=False, repr=False, eq=False)
    _blobs: dict[str, bytes] = field(factory=dict, init=False, repr=False, eq=False)
    _refs: dict[str, list[ArtifactRef]] = field(factory=dict, init=False, repr=False, eq=False)
    _audit: dict[str, dict[int, AuditEntry]] = field(factory=dict, init=False, repr=False, eq=False)
    _handoffs: dict[str, HandoffEnvelope] = field(factory=dict, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        check_durability(self.durability, self.url or "memory://")

    def _run(self, run_id: str) -> RunEntry:
        entry = self._runs.get(run_id)
        if entry is None:
            raise self._missing(run_id)
        return entry

    @staticmethod
    def _missing(run_id: str) -> RunNotFound:
        return RunNotFound(
            f"run {run_id!r} not found in the memory store; memory runs live only as "
            "long as the process that created them"
        )

    # --- definitions -----------------------------------------------------------------

    async def put_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Keep a definition under its content id; the first one stored wins."""
        text = to_json(definition, f"definition {definition_id!r}")
        self._definitions.setdefault(definition_id, text)

    async def get_definition(self, definition_id: str) -> dict[str, Any]:
        """Return a stored definition. Raises ``KeyError``."""
        text = self._definitions.get(definition_id)
        if text is None:
            raise KeyError(f"no workflow definition {definition_id!r} in the memory store")
        return json.loads(text)  # type: ignore[no-any-return]

    # --- artifacts -----------------------------------------------------------------

    async def put_artifact(
        self,
        run_id: str,
        data: bytes,
        *,
        name: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        """Keep ``data`` once per digest and reference it from ``run_id``."""
        digest = artifact_digest(data)
        self._blobs.setdefault(digest, bytes(data))
        ref = ArtifactRef(digest=digest, size=len(data), media_type=media_type, name=name)
        refs = self._refs.setdefault(run_id, [])
        for i, old in enumerate(refs):
            if old.digest == digest and old.name == name:
                refs[i] = ref
                break
        else:
            refs.append(ref)
        return clone(ref)

    async def get_artifact(self, digest: str) -> bytes:
        """The content with this digest. Raises ``KeyError``."""
        digest_hex(digest)
        try:
            return self._blobs[digest]
        except KeyError:
            raise KeyError(f"no artifact {digest} in the memory store") from None

    async def run_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The artifacts ``run_id`` references, in the order they were first put."""
        return [clone(r) for r in self._refs.get(run_id, ())]

    # --- inbox -----------------------------------------------------------------------

    async def deliver_event(
        self, key: str, payload: Any, *, run_id: str | None = None
    ) -> InboxEvent:
        """Keep an event under ``key`` (for ``run_id``, if given) until a run consumes it."""
        payload = json_copy(payload, f"event {key!r} payload")
        event = new_event(key, payload, utcnow(), run_id)
        self._queued_any = self._queued_any or run_id is not None
        self._events[event.event_id] = event
        return clone(event)

    async def pending_events(
        self, key: str | None = None, *, for_run: str | None = None
    ) -> list[InboxEvent]:
        """Unconsumed events (of ``key``, or all; those ``for_run`` may take), oldest first."""
        return [
            clone(e)
            for e in self._events.values()
            if e.consumed_by is None and (key is None or e.key == key) and may_take(e, for_run)
        ]

    async def queue_event(self, event_id: str, run_id: str | None) -> bool:
        """Queue a pending event for ``run_id`` (None: any run); False if consumed."""
        event = self._events.get(event_id)
        if event is None:
            raise no_event(event_id, "the memory store")
        if event.consumed_by is not None:
            return False
        event.run_id = run_id
        self._queued_any = self._queued_any or run_id is not None
        return True

    async def waiting_on(self, event_key: str) -> list[str]:
        """Runs with an open wait on ``event_key``, the longest-waiting first."""
        waiters = self._waiters.get(event_key, {})
        return sorted(waiters, key=lambda run_id: (waiters[run_id], run_id))

    # --- audit and handoffs ----------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        """Persist an audit entry.

        Raises:
            RunNotFound: no such run.
            StoreError: the run already has an entry with this ``seq``.
        """
        self._run(entry.run_id)
        entries = self._audit.setdefault(entry.run_id, {})
        if entry.seq in entries:
            raise StoreError(
                f"run {entry.run_id!r} already has audit entry seq {entry.seq}; number "
                "audit entries from the run's audit_seq"
            )
        entries[entry.seq] = clone(entry)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries in ``seq`` order. Raises ``RunNotFound``."""
        self._run(run_id)
        entries = self._audit.get(run_id, {})
        return [clone(entries[seq]) for seq in sorted(entries)]

    async def put_handoff(self, envelope: HandoffEnvelope) -> None:
        """Persist an envelope; storing the same envelope id again keeps the first."""
        if envelope.envelope_id not in self._handoffs:
            stored = clone(envelope)
            stored.payload = json_copy(envelope.payload, f"handoff {envelope.envelope_id!r}")
            self._handoffs[envelope.envelope_id] = stored

    async def ack_handoff(self, envelope_id: str, run_id: str) -> None:
        """Record that run ``run_id`` took the envelope up (idempotent for that run).

        Raises:
            StoreError: no such envelope, or another run already acknowledged it.
        """
        envelope = self._handoffs.get(envelope_id)
        if envelope is None:
            raise StoreError(f"no handoff envelope {envelope_id!r} in the memory store")
        check_ack(envelope_id, envelope.acknowledged_run_id, run_id)
        envelope.acknowledged_run_id = run_id

    async def handoffs(
        self, source_run_id: str | None = None, *, open_only: bool = False
    ) -> list[HandoffEnvelope]:
        """Envelopes (of one source run, or all), oldest first."""
        found = [
            e
            for e in self._handoffs.values()
            if (source_run_id is None or e.source_run_id == source_run_id)
            and (not open_only or e.open)
        ]
        found.sort(key=lambda e: e.created_at)  # stable: insertion order breaks ties
        return [clone(e) for e in found]
