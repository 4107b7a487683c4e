"""The run journal: a run's ledger position, what it recorded, and the one commit path.

Every change to a run — a node's outcome, a wait, an answer, the run's end,
a cancel — is appended to a :class:`Pending` batch and written by
:meth:`RunJournal.commit`: the run's state, the new ledger records and any
inbox events they consumed in **one transaction**, under the fencing token
of the lease this process holds, so a process whose lease was taken over
cannot write again. Lifecycle events are emitted only after their commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle.core.model import (
    NO_SECRETS,
    Lease,
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    Secrets,
    StepKind,
    StepRecord,
    StepStatus,
    chain,
    utcnow,
)
from spindle.core.store import Commit

if TYPE_CHECKING:
    from spindle.core.engine._events import EventEmitter
    from spindle.core.store import Store

__all__ = ["Pending", "RunJournal"]


@define
class Pending:
    """Records, consumed events and events that one commit writes and then emits.

    ``light`` marks a commit that changed nothing in the run state but its counters
    (a node completed); ``release`` gives the lease up in the same transaction.
    """

    records: list[StepRecord] = field(factory=list)
    consume: list[str] = field(factory=list)
    events: list[RunLifecycleEvent | None] = field(factory=list)
    light: bool = False
    release: bool = False


class RunJournal:
    """A run's ledger as the driver needs it, and the commits that extend it.

    Args:
        store: where the run is kept.
        emitter: numbers events and hands them to observers after each commit.
        state: the run's state (this journal changes it only through commits).
        token: the fencing token of the lease held on the run (None: no lease yet).
        ledger: the run's ledger so far.
        secrets: the clear secret values to scrub from records and events.
        on_record: called with every record, replayed or new, so the ready set
            follows the ledger.
        position: ``(record count, last record hash)`` instead of ``ledger``, for a
            commit that needs no replay (a cancel).
    """

    def __init__(
        self,
        store: Store,
        emitter: EventEmitter,
        state: RunState,
        token: int | None,
        ledger: Sequence[StepRecord] = (),
        secrets: Secrets | None = None,
        on_record: Callable[[StepRecord], None] | None = None,
        *,
        position: tuple[int, str] | None = None,
    ) -> None:
        self.store = store
        self.emitter = emitter
        self.state = state
        self.token = token
        self.secrets = secrets or NO_SECRETS
        if position is not None:
            self.count, self.head = position
        else:
            self.count = len(ledger)
            self.head = ledger[-1].record_hash if ledger else ""
        #: Recorded sub-steps and mid-function effects, by idempotency key.
        self.calls: dict[str, StepRecord] = {}
        #: The attempt a node is on, for nodes that failed and are being retried.
        self.attempts: dict[str, int] = {}
        self._on_record = on_record
        for rec in ledger:
            self._replay(rec)
        self._persisted_status = state.status
        self.released = False
        self._carry: Pending | None = None

    def _replay(self, rec: StepRecord) -> None:
        if rec.kind == StepKind.CALL:
            self.calls[rec.idempotency_key] = rec
        elif rec.kind == StepKind.RETRY:
            self.attempts[rec.node_id] = rec.attempt + 1
        if self._on_record is not None:
            self._on_record(rec)

    # --- building a batch --------------------------------------------------------

    def pending(self) -> Pending:
        """A batch to add records to: the deferred one if any, else a new one."""
        carry, self._carry = self._carry, None
        return carry if carry is not None else Pending()

    def defer(self, pending: Pending) -> None:
        """Keep ``pending`` for the next commit instead of writing it now.

        Only for a change nothing acts on before that commit: a last node's
        record when the run's end is committed next. Its records are replayed
        now so the finish can read the result.
        """
        for rec in pending.records:
            self._replay(rec)
        self._carry = pending

    def record(
        self,
        pending: Pending,
        node_id: str,
        kind: StepKind,
        status: StepStatus,
        key: str,
        *,
        attempt: int = 1,
        result: Any = None,
        error: str | None = None,
        started_at: Any = None,
    ) -> StepRecord:
        """Append a new record to ``pending`` (numbered and chained now)."""
        now = utcnow()
        if self.secrets:
            result = self.secrets.scrub(result)
            error = self.secrets.scrub(error)
        rec = StepRecord(
            self.state.run_id,
            self.count + len(pending.records),
            node_id,
            kind,
            status,
            key,
            attempt,
            result,
            error,
            started_at or now,
            now,
        )
        prev = pending.records[-1].record_hash if pending.records else self.head
        chain(rec, prev)
        pending.records.append(rec)
        return rec

    def event(
        self,
        pending: Pending,
        type_: LifecycleEventType,
        node_id: str | None = None,
        **payload: Any,
    ) -> None:
        """Queue an event to emit once ``pending`` is committed."""
        if self.emitter.active:
            if self.secrets:
                payload = self.secrets.scrub(payload)
            pending.events.append(self.emitter.build(self.state, type_, node_id, **payload))

    # --- the commit path -----------------------------------------------------------

    @staticmethod
    async def create(store: Store, state: RunState, lease: Lease | None = None) -> None:
        """Insert the new run ``state``; with ``lease`` (token 1) it is leased to us in the
        same write. (A run with no ledger needs no journal to start one.)"""
        await store.commit(Commit(state, create=True, lease=lease))

    async def commit(self, pending: Pending) -> None:
        """Write ``pending`` and the run state in one transaction, then emit its events.

        Raises:
            LeaseLost: the lease this journal writes under was taken over.
        """
        if pending.records:
            self.state.step_count = self.count + len(pending.records)
        self.state.updated_at = utcnow()
        light = pending.light and self.state.status == self._persisted_status
        await self.store.commit(
            Commit(
                self.state,
                pending.records,
                pending.consume,
                self.token,
                state_changed=not light,
                release_lease=pending.release,
            )
        )
        self._persisted_status = self.state.status
        self.released = self.released or pending.release
        if pending.records:
            self.count += len(pending.records)
            self.head = pending.records[-1].record_hash
            for rec in pending.records:
                self._replay(rec)
        await self.emitter.send(pending.events)
