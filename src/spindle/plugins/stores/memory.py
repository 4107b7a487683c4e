"""The ``memory://`` store: everything in dicts, gone when the process ends.

It is the store for tests, examples and throwaway runs, and the reference
the contract suite compares the durable stores against, so it enforces the
same rules: ledger continuity, fencing tokens, one consumer per inbox event,
``RunNotFound`` for unknown runs.

Isolation: what is committed is copied (containers deeply, attrs objects
field by field), and what is returned is copied again, so a caller that
mutates its ``RunState`` after a commit, or mutates a loaded one, never
changes what the store holds. Objects that are neither containers nor
spindle models (a user's own class in a result) are shared, not copied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs
from attrs import define, field

from spindle.core.errors import ConfigError, RunNotFound, StoreError
from spindle.core.model import (
    ArtifactRef,
    AuditEntry,
    HandoffEnvelope,
    Lease,
    RunState,
    RunStatus,
    StepRecord,
    utcnow,
)
from spindle.core.store import (
    Commit,
    InboxEvent,
    Store,
    artifact_digest,
    check_ack,
    check_aware,
    check_durability,
    check_records,
    digest_hex,
    event_waits,
    lease_expiry,
    lease_lost,
    may_acquire,
    new_event,
    run_exists,
    unconsumable,
)
from spindle.plugins.stores._common import parse_options, split_url, to_json

__all__ = ["MemoryStore"]

T = TypeVar("T")

# --- copying --------------------------------------------------------------------

_Cloner = Callable[[Any], Any]
_CLONERS: dict[type, _Cloner | None] = {}


def _clone(value: T) -> T:
    """Copy ``value``: dicts and lists deeply, attrs objects field by field."""
    return _copy(value)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    try:
        cloner = _CLONERS[kind]
    except KeyError:
        cloner = _CLONERS[kind] = _make_cloner(kind)
    return value if cloner is None else cloner(value)


_IMMUTABLE = (str, int, float, bool, bytes, datetime, type(None))


def _immutable(annotation: Any) -> bool:
    """Whether values of this (resolved) field type never need copying."""
    import enum
    import types
    import typing

    if isinstance(annotation, type):
        return issubclass(annotation, _IMMUTABLE) or issubclass(annotation, enum.Enum)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_immutable(a) for a in typing.get_args(annotation))
    return False


def _make_cloner(cls: type) -> _Cloner | None:
    # Generated per class, as attrs and cattrs generate theirs: a straight-line
    # copy is several times faster than ``copy.copy`` on slotted classes, and
    # the memory store copies on every commit. ``object.__setattr__`` also
    # fills frozen classes; ``__init__`` is skipped, so validators do not rerun.
    # Fields typed as immutable values (strings, numbers, datetimes, enums) are
    # shared, not copied: only containers and Any-typed data are cloned.
    if not attrs.has(cls):
        return None
    try:
        attrs.resolve_types(cls)
    except Exception:  # unresolvable annotations: copy every field, to be safe
        fixed: set[str] = set()
    else:
        fixed = {a.name for a in attrs.fields(cls) if _immutable(a.type)}
    lines = ["def clone(obj):", "    new = _new(_cls)"]
    lines += [
        f"    _set(new, {a.name!r}, obj.{a.name})"
        if a.name in fixed
        else f"    _set(new, {a.name!r}, _clone(obj.{a.name}))"
        for a in attrs.fields(cls)
    ]
    lines.append("    return new")
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_cls": cls,
        "_clone": _copy,
    }
    # The source is built from attrs field names only, never from data.
    exec("\n".join(lines), namespace)
    return namespace["clone"]  # type: ignore[no-any-return]


def _json_copy(value: Any, what: str) -> Any:
    # Payloads and definitions go through JSON, as they do in the durable
    # stores, so a test on the memory store sees the same data a user of the
    # SQLite store would (tuples become lists, datetimes strings).
    return json.loads(to_json(value, what))


# --- per-run bookkeeping ----------------------------------------------------------


class _Run:
    """Everything the store keeps about one run."""

    __slots__ = ("head", "keys", "lease", "order", "records", "state", "token", "waits")

    def __init__(self, state: RunState, order: int) -> None:
        self.state = state
        self.order = order  # creation order, to break created_at ties like a rowid
        self.records: list[StepRecord] = []
        self.keys: dict[str, StepRecord] = {}  # idempotency key -> latest record
        self.head = ""
        self.token = 0  # the last lease token handed out (0: never leased)
        self.lease: Lease | None = None
        self.waits: dict[str, datetime] = {}  # event key -> when the wait began


@define
class MemoryStore(Store, kind="memory"):
    """Keeps runs, ledgers, artifacts and the inbox in process memory.

    Nothing survives the process, so it suits tests and experiments; it
    enforces the same contract as the durable stores. Its methods never
    await, so each one is atomic on the event loop that calls it; it is not
    meant to be shared between threads.

    Example::

        store = MemoryStore.from_url("memory://")
    """

    _runs: dict[str, _Run] = field(factory=dict, init=False, repr=False, eq=False)
    _definitions: dict[str, str] = field(factory=dict, init=False, repr=False, eq=False)
    _events: dict[str, InboxEvent] = field(factory=dict, init=False, repr=False, eq=False)
    _waiters: dict[str, dict[str, datetime]] = field(factory=dict, init=False, repr=False, eq=False)
    _blobs: dict[str, bytes] = field(factory=dict, init=False, repr=False, eq=False)
    _refs: dict[str, list[ArtifactRef]] = field(factory=dict, init=False, repr=False, eq=False)
    _audit: dict[str, dict[int, AuditEntry]] = field(factory=dict, init=False, repr=False, eq=False)
    _handoffs: dict[str, HandoffEnvelope] = field(factory=dict, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        check_durability(self.durability, self.url or "memory://")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStore:
        """Build a memory store from ``memory://`` (``?durability=`` is accepted and moot).

        Raises:
            ConfigError: the URL is not ``memory://`` or has an unknown option.
        """
        rest, query = split_url(url, "memory")
        if rest:
            raise ConfigError(f"store URL {url!r}: a memory store has no location; use 'memory://'")
        return cls(url=url, **{**parse_options(url, query, {"durability": str}), **options})

    def _run(self, run_id: str) -> _Run:
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

    # --- runs ------------------------------------------------------------------

    async def commit(self, commit: Commit) -> None:
        """Apply the run's new state, ledger records and consumed events atomically.

        Every check runs before anything is written, so a refused commit
        leaves the store as it was.

        Raises:
            LeaseLost: ``commit.token`` is not the run's current lease token.
            LedgerError: the records do not continue the run's ledger.
            RunNotFound: the run does not exist and ``commit.create`` is false.
            StoreError: the run already exists (``create``), or an event to
                consume is unknown or consumed by another run.
        """
        state = commit.state
        run_id = state.run_id
        records = commit.records
        entry = self._runs.get(run_id)
        if commit.create:
            if entry is not None:
                raise run_exists(run_id, "the memory store")
            if commit.token is not None:
                raise lease_lost(run_id, commit.token, 0, new=True)
            count, head = 0, ""
        else:
            if entry is None:
                raise self._missing(run_id)
            if commit.token is not None and commit.token != entry.token:
                raise lease_lost(run_id, commit.token, entry.token)
            count, head = len(entry.records), entry.head
        if records:
            head = check_records(run_id, records, count, head)
        for event_id in commit.consume_events:
            self._check_consumable(event_id, run_id)

        lease = commit.lease
        if lease is not None and not commit.create:
            raise StoreError(f"run {run_id!r}: Commit.lease is only for creating a run")

        # Every check passed: write.
        if entry is None:
            entry = self._runs[run_id] = _Run(_clone(state), len(self._runs))
            if lease is not None:
                entry.token = 1
                entry.lease = _clone(lease)
                entry.lease.token = 1
        elif commit.state_changed:
            entry.state = _clone(state)
        else:
            # The hot path: only the counters moved (Commit.state_changed is false).
            kept = entry.state
            kept.step_count = state.step_count
            kept.event_seq = state.event_seq
            kept.updated_at = state.updated_at
        for record in records:
            copy = _clone(record)
            entry.records.append(copy)
            entry.keys[copy.idempotency_key] = copy
        entry.head = head
        # step_count is the store's to keep: the ledger's length, whatever the state said.
        entry.state.step_count = len(entry.records)
        if commit.state_changed and (state.waits or entry.waits):
            self._set_waits(entry, run_id, event_waits(state))
        for event_id in commit.consume_events:
            self._events[event_id].consumed_by = run_id
        if commit.release_lease and entry.lease is not None and entry.lease.token == commit.token:
            entry.lease = None

    def _check_consumable(self, event_id: str, run_id: str) -> None:
        event = self._events.get(event_id)
        if event is None:
            raise unconsumable(event_id, run_id, None, "the memory store")
        if event.consumed_by not in (None, run_id):
            raise unconsumable(event_id, run_id, event.consumed_by, "the memory store")

    def _set_waits(self, entry: _Run, run_id: str, waits: dict[str, datetime]) -> None:
        if waits == entry.waits:
            return
        for key in entry.waits:
            waiters = self._waiters[key]
            del waiters[run_id]
            if not waiters:
                del self._waiters[key]
        for key, since in waits.items():
            self._waiters.setdefault(key, {})[run_id] = since
        entry.waits = waits

    async def load_run(self, run_id: str) -> RunState:
        """Return a copy of the run's state. Raises ``RunNotFound``."""
        return _clone(self._run(run_id).state)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs matching every given filter, newest first (by ``created_at``)."""
        entries = [
            e
            for e in self._runs.values()
            if (status is None or e.state.status == status)
            and (workflow is None or e.state.workflow == workflow)
            and (parent_run_id is None or e.state.parent_run_id == parent_run_id)
        ]
        entries.sort(key=lambda e: (e.state.created_at, e.order), reverse=True)
        return [_clone(e.state) for e in entries[:limit]]

    async def due_runs(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Runs with work and no live driver, the longest-due first.

        Due means: pending; waiting with a timer due at or before ``now``; or
        running under a lease that expired (its driver crashed). A run whose
        lease is still live is left to its holder.
        """
        check_aware(now)
        due: list[tuple[datetime, int, str]] = []
        for run_id, e in self._runs.items():
            lease = e.lease
            if lease is not None and lease.expires_at > now:
                continue
            status = e.state.status
            if status == RunStatus.PENDING:
                due.append((e.state.created_at, e.order, run_id))
            elif status == RunStatus.WAITING:
                wake_at = e.state.wake_at
                if wake_at is not None and wake_at <= now:
                    due.append((wake_at, e.order, run_id))
            elif status == RunStatus.RUNNING and lease is not None:
                due.append((lease.expires_at, e.order, run_id))
        due.sort()
        return [run_id for _, _, run_id in due[:limit]]

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

    # --- ledger ------------------------------------------------------------------

    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every record of the run in ``seq`` order. Raises ``RunNotFound``."""
        return [_clone(r) for r in self._run(run_id).records]

    async def find_step(self, run_id: str, idempotency_key: str) -> StepRecord | None:
        """The latest record of the run with this idempotency key, or None."""
        entry = self._runs.get(run_id)
        record = None if entry is None else entry.keys.get(idempotency_key)
        return None if record is None else _clone(record)

    async def ledger_head(self, run_id: str) -> tuple[int, str]:
        """``(record count, last record_hash or "")``. Raises ``RunNotFound``."""
        entry = self._run(run_id)
        return len(entry.records), entry.head

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
        return _clone(ref)

    async def get_artifact(self, digest: str) -> bytes:
        """The content with this digest. Raises ``KeyError``."""
        digest_hex(digest)
        try:
            return self._blobs[digest]
        except KeyError:
            raise KeyError(f"no artifact {digest} in the memory store") from None

    async def run_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The artifacts ``run_id`` references, in the order they were first put."""
        return [_clone(r) for r in self._refs.get(run_id, ())]

    # --- inbox -----------------------------------------------------------------------

    async def deliver_event(self, key: str, payload: Any) -> InboxEvent:
        """Keep an event under ``key`` until a run consumes it."""
        event = new_event(key, _json_copy(payload, f"event {key!r} payload"), utcnow())
        self._events[event.event_id] = event
        return _clone(event)

    async def pending_events(self, key: str | None = None) -> list[InboxEvent]:
        """Unconsumed events (of ``key``, or all), oldest first."""
        return [
            _clone(e)
            for e in self._events.values()
            if e.consumed_by is None and (key is None or e.key == key)
        ]

    async def waiting_on(self, event_key: str) -> list[str]:
        """Runs with an open wait on ``event_key``, the longest-waiting first."""
        waiters = self._waiters.get(event_key, {})
        return sorted(waiters, key=lambda run_id: (waiters[run_id], run_id))

    # --- leases -----------------------------------------------------------------------

    async def acquire_lease(
        self,
        run_id: str,
        *,
        owner: str,
        host: str,
        pid: int,
        ttl: float,
        now: datetime,
        steal_token: int | None = None,
    ) -> Lease | None:
        """Take the run's lease with the next fencing token, or return None.

        Raises:
            RunNotFound: no such run.
        """
        expires_at = lease_expiry(now, ttl)
        entry = self._run(run_id)
        if not may_acquire(entry.lease, owner=owner, now=now, steal_token=steal_token):
            return None
        entry.token += 1
        entry.lease = Lease(
            owner=owner, host=host, pid=pid, expires_at=expires_at, token=entry.token
        )
        return _clone(entry.lease)

    async def renew_lease(
        self, run_id: str, *, owner: str, token: int, ttl: float, now: datetime
    ) -> bool:
        """Extend our lease to ``now + ttl``; False when it is no longer ours."""
        expires_at = lease_expiry(now, ttl)
        entry = self._holding(run_id, owner, token)
        if entry is None or entry.lease is None:
            return False
        entry.lease.expires_at = expires_at
        return True

    async def release_lease(self, run_id: str, *, owner: str, token: int) -> None:
        """Give the lease up if it is still ours; the token counter is kept."""
        entry = self._holding(run_id, owner, token)
        if entry is not None:
            entry.lease = None

    def _holding(self, run_id: str, owner: str, token: int) -> _Run | None:
        """The run if ``owner`` holds its lease under ``token``, else None."""
        entry = self._runs.get(run_id)
        lease = None if entry is None else entry.lease
        if lease is None or lease.owner != owner or lease.token != token:
            return None
        return entry

    async def get_lease(self, run_id: str) -> Lease | None:
        """The run's current lease, expired or not. Raises ``RunNotFound``."""
        return _clone(self._run(run_id).lease)

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
        entries[entry.seq] = _clone(entry)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries in ``seq`` order. Raises ``RunNotFound``."""
        self._run(run_id)
        entries = self._audit.get(run_id, {})
        return [_clone(entries[seq]) for seq in sorted(entries)]

    async def put_handoff(self, envelope: HandoffEnvelope) -> None:
        """Persist an envelope; storing the same envelope id again keeps the first."""
        if envelope.envelope_id not in self._handoffs:
            stored = _clone(envelope)
            stored.payload = _json_copy(envelope.payload, f"handoff {envelope.envelope_id!r}")
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
        return [_clone(e) for e in found]
