"""The store contract: runs, ledger, artifacts, inbox, timers, leases, audit, handoffs,
schedules (``_schedules``).

A store is chosen by URL scheme (``memory://``, ``sqlite:///path``,
``postgresql://...``): the scheme is the entry-point kind in
``spindle.store``. The contract is split into parts so its pieces can be
read (and later implemented) separately; :class:`Store` is their union.

The one write primitive that matters is :meth:`RunStore.commit`: the run's
new state, its new ledger records and any inbox events they consumed are
written in **one transaction**, so a run is never saved without its ledger
record or the reverse. A commit carries the lease's fencing token; a store
refuses (``LeaseLost``) a commit whose token is no longer current.

A store whose medium fails raises :class:`~spindle.core.errors.StoreError`
(``StoreFull``, ``StoreBusy``, ``StoreReadOnly``, ``StoreCorrupt``) with a
message naming where it keeps its data and what to do, never its driver's
own exception; a write that fails has changed nothing. The engine treats a
``StoreError`` raised while it keeps a node's outcome as the store's fault,
not the node's: the drive stops and the run resumes from its last commit.

**The ledger head.** In that same transaction the store writes the run's
:class:`~spindle.core.model.LedgerHead` beside the run: the ledger's record
count and the ``record_hash`` of its last record after the commit (which
the store computes from the records it appends), and the commit's
``state_digest`` and ``ledger_key_id`` verbatim. ``load_run`` and
``list_runs`` return it as ``RunState.head``. It is what lets ``spindle
ledger verify`` notice records removed from the end of a ledger and a run
whose stored state was edited, and lets a drive refuse such a run. A store
that keeps runs written before it recorded heads returns ``head=None`` for
them until their next commit; one that wrote a head for a run and cannot
find it any more returns :data:`~spindle.core.model.MISSING_HEAD`. Keep the
head apart from a large state if an update rewrites the whole record, and
near the records a commit appends: every commit writes it (the SQLite store
keeps it as a ledger row at the key after the run's last record, on the page
the records go to).

The shared contract suite (``spindle.testing.StoreContract``, which
``tests/stores/test_contract.py`` runs on every built-in store) is the
definition of a store: every implementation must pass it.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from attrs import define

from spindle.core.model import (
    ArtifactRef,
    AuditEntry,
    HandoffEnvelope,
    Lease,
    RunState,
    RunStatus,
    StepRecord,
)
from spindle.core.plugin import Plugin
from spindle.core.store._cache import CacheStore
from spindle.core.store._prune import PruneStore
from spindle.core.store._schedules import ScheduleStore
from spindle.core.store._work import WorkStore

__all__ = [
    "ArtifactStore",
    "Commit",
    "InboxEvent",
    "InboxStore",
    "LeaseStore",
    "LedgerStore",
    "RunStore",
    "Store",
]


@define
class Commit:
    """One atomic change to a run.

    Attributes:
        state: the run's new state (always written).
        records: ledger records to append; their ``seq`` must continue the run's ledger.
        consume_events: inbox event ids delivered by this change (marked consumed).
        token: the fencing token of the lease this process holds, or None if unleased.
        create: the run is new (insert instead of update).
        state_changed: False promises that only ``step_count``, ``event_seq`` and
            ``updated_at`` differ from the state last committed, so a store may
            update just those instead of rewriting the whole state (the hot path).
        lease: with ``create``, take this lease (token 1) in the same transaction,
            so a run started to be driven at once costs no separate lease write.
        release_lease: give up the lease ``token`` names in the same transaction
            (a drive's last commit).
        state_digest: the digest of the run's state after this commit, chained onto
            the ledger's new last hash (computed by the engine; the store keeps it in
            the run's head as given, "" if none).
        ledger_key_id: the fingerprint of the key the run's chain is keyed with, or
            None for a plain chain (kept in the run's head as given; never the key).
        state_text: ``state_text(state)`` (the state's canonical JSON without its
            counters), when the engine computed it for ``state_digest`` anyway; a
            store may keep it as the state instead of serializing the state again
            (the counters are kept apart). None: the store serializes ``state``.
    """

    state: RunState
    records: Sequence[StepRecord] = ()
    consume_events: Sequence[str] = ()
    token: int | None = None
    create: bool = False
    state_changed: bool = True
    lease: Lease | None = None
    release_lease: bool = False
    state_digest: str = ""
    ledger_key_id: str | None = None
    state_text: str | None = None


@define
class InboxEvent:
    """An event delivered with ``emit`` and kept until a run consumes it.

    ``run_id`` is the run it is queued for: an event emitted while the run
    waiting on its key was busy is kept for that run alone, which takes it when
    it next stops to wait. None: the first run to wait on the key takes it.
    """

    event_id: str
    key: str
    payload: Any
    created_at: datetime
    consumed_by: str | None = None
    run_id: str | None = None


class RunStore(PruneStore):
    """Runs: create, load, commit, list, the due-work query workers poll, and pruning."""

    @abc.abstractmethod
    async def commit(self, commit: Commit) -> None:
        """Write a run's state and its new ledger records in one transaction.

        Raises:
            LeaseLost: ``commit.token`` is not the run's current lease token (a
                creating commit carries none: a new run has no lease).
            LedgerError: the records do not continue the ledger (wrong ``seq``/``prev_hash``).
            RunNotFound: the run does not exist and ``commit.create`` is false.
            StoreError: ``commit.create`` and the run exists (said first, whatever
                the commit's token).
        """

    @abc.abstractmethod
    async def load_run(self, run_id: str) -> RunState:
        """Return the run's state; its ``step_count`` is the ledger's length and its
        ``head`` the :class:`~spindle.core.model.LedgerHead` the last commit wrote
        (None for a run no commit has written a head for).

        Raises ``RunNotFound``.
        """

    @abc.abstractmethod
    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs matching every given filter, newest first (each with its ``head``)."""

    @abc.abstractmethod
    async def due_runs(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Ids of runs with work to do, oldest first.

        That is: pending runs, waiting runs with a timer due at or before ``now``,
        and running runs whose lease expired (their driver died).
        """

    @abc.abstractmethod
    async def put_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Keep a workflow definition under its content id (idempotent)."""

    @abc.abstractmethod
    async def get_definition(self, definition_id: str) -> dict[str, Any]:
        """Return a definition stored with :meth:`put_definition`. Raises ``KeyError``."""


class LedgerStore(abc.ABC):
    """The append-only, hash-chained ledger of each run (appended through ``commit``)."""

    @abc.abstractmethod
    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every record of the run in ``seq`` order."""

    @abc.abstractmethod
    async def find_step(self, run_id: str, idempotency_key: str) -> StepRecord | None:
        """The latest record with this idempotency key, through an index (never a scan)."""

    @abc.abstractmethod
    async def ledger_head(self, run_id: str) -> tuple[int, str]:
        """``(number of records, record_hash of the last one or "")``, read off the
        ledger itself (``RunState.head`` is where the store's head says it should end)."""


class ArtifactStore(abc.ABC):
    """Content-addressed blobs with per-run references."""

    @abc.abstractmethod
    async def put_artifact(
        self,
        run_id: str,
        data: bytes,
        *,
        name: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        """Store ``data`` (deduplicated by SHA-256) and reference it from ``run_id``."""

    @abc.abstractmethod
    async def get_artifact(self, digest: str) -> bytes:
        """Return the content with this digest. Raises ``KeyError``."""

    @abc.abstractmethod
    async def run_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The artifacts a run references."""


class InboxStore(abc.ABC):
    """Events delivered by ``emit``, kept until a run consumes them (never lost)."""

    @abc.abstractmethod
    async def deliver_event(
        self, key: str, payload: Any, *, run_id: str | None = None
    ) -> InboxEvent:
        """Record an event under ``key`` (queued for ``run_id``, if given) and return it."""

    @abc.abstractmethod
    async def pending_events(
        self, key: str | None = None, *, for_run: str | None = None
    ) -> list[InboxEvent]:
        """Unconsumed events (of one key, or all), oldest first.

        With ``for_run``, only those that run may take: events queued for it and
        events queued for no run. Without, every pending event.
        """

    @abc.abstractmethod
    async def queue_event(self, event_id: str, run_id: str | None) -> bool:
        """Queue a pending event for ``run_id`` instead (None: for whichever run waits first).

        An event queued for a run stays its own only while the run waits on the
        event's key: a commit whose state drops the last wait on that key (a
        timeout, a cancel, the run's end) releases it to any run, in the same
        transaction, so no event is stranded.

        Returns False when the event was consumed already (it is left as it is).

        Raises:
            StoreError: there is no such event.
        """

    @abc.abstractmethod
    async def waiting_on(self, event_key: str) -> list[str]:
        """Ids of runs with an open wait on ``event_key``."""


class LeaseStore(abc.ABC):
    """Exclusive, expiring claims on runs, with fencing tokens."""

    @abc.abstractmethod
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
        """Take the lease if free, expired, already ours, or its token equals ``steal_token``.

        Returns the new lease (its ``token`` one higher than any before) or None.
        """

    @abc.abstractmethod
    async def renew_lease(
        self, run_id: str, *, owner: str, token: int, ttl: float, now: datetime
    ) -> bool:
        """Extend our lease; False when it was taken over."""

    @abc.abstractmethod
    async def release_lease(self, run_id: str, *, owner: str, token: int) -> None:
        """Give the lease up (no-op when it is no longer ours)."""

    @abc.abstractmethod
    async def get_lease(self, run_id: str) -> Lease | None:
        """The current lease of a run, expired or not, or None."""


class AuditStore(abc.ABC):
    """Audit entries and handoff envelopes written by the finish lifecycle."""

    @abc.abstractmethod
    async def append_audit(self, entry: AuditEntry) -> None:
        """Persist an audit entry (``seq`` unique per run)."""

    @abc.abstractmethod
    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries in ``seq`` order."""

    @abc.abstractmethod
    async def put_handoff(self, envelope: HandoffEnvelope) -> None:
        """Persist a handoff envelope."""

    @abc.abstractmethod
    async def ack_handoff(self, envelope_id: str, run_id: str) -> None:
        """Mark an envelope acknowledged by the follow-on run ``run_id``."""

    @abc.abstractmethod
    async def handoffs(
        self, source_run_id: str | None = None, *, open_only: bool = False
    ) -> list[HandoffEnvelope]:
        """Envelopes (of one source run, or all), oldest first."""


@define
class Store(
    RunStore,
    LedgerStore,
    ArtifactStore,
    InboxStore,
    LeaseStore,
    AuditStore,
    WorkStore,
    ScheduleStore,
    CacheStore,
    Plugin,
    group="store",
):
    """Base of store plugins; the entry-point kind is the URL scheme.

    Construct with :meth:`from_url`. ``durability`` is ``normal`` (survives a
    killed process) or ``full`` (every commit fsynced, survives power loss).
    """

    url: str = ""
    durability: str = "normal"

    #: The schema version this code reads and writes (None: the store keeps none).
    schema_target: ClassVar[int | None] = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Store:
        """Build the store for ``url``; subclasses parse what they need from it."""
        return cls(url=url, **options)

    async def open(self) -> None:
        """Open connections and create or migrate the schema."""

    async def aclose(self) -> None:
        """Release connections."""

    async def wait_for_work(self, timeout: float) -> bool:
        """Wait until there may be new work to claim (a run created pending, an event
        delivered), or ``timeout`` seconds: True when woken early.

        A worker calls it between looks at :meth:`due_runs`. A store that can push
        wake-ups across processes (PostgreSQL's LISTEN/NOTIFY) returns as soon as
        one arrives; the default just sleeps, so a worker polls.
        """
        await asyncio.sleep(timeout)
        return False

    async def schema_version(self) -> int | None:
        """The version of the schema the store's medium holds (0: none yet), without
        changing it; None for a store that keeps no schema (``memory://``)."""
        return None

    async def upgrade(self) -> tuple[int | None, int | None]:
        """Bring the medium's schema to this spindle's version (``spindle db upgrade``)
        and leave the store open: ``(version before, version after)``.

        A store that migrates when it opens (SQLite) simply opens; one shared by
        many processes (PostgreSQL) migrates only here, under a lock.
        """
        before = await self.schema_version()
        await self.open()
        return before, await self.schema_version()

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
