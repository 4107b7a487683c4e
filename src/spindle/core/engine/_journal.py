"""The run journal: a run's ledger position, what it recorded, and the one commit path.

Every change to a run — a node's outcome, a wait, an answer, the run's end,
a cancel — is appended to a :class:`Pending` batch and written by
:meth:`RunJournal.commit`: the run's state, the new ledger records and any
inbox events they consumed in **one transaction**, under the fencing token
of the lease this process holds, so a process whose lease was taken over
cannot write again. Lifecycle events are emitted only after their commit.

Records are numbered and chained here, with the run's
:class:`~spindle.core.model.LedgerChain` (plain, or keyed), and each commit
carries the digest of the run's state as stored after it, chained onto the
ledger's new head: the store keeps both in the run's ledger head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle.core.engine._gate import Gate
from spindle.core.model import (
    NO_SECRETS,
    PLAIN_CHAIN,
    Lease,
    LedgerChain,
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    Secrets,
    StepKind,
    StepRecord,
    StepStatus,
    failed_call,
    state_hash,
    state_text_and_hash,
)
from spindle.core.store import Commit

if TYPE_CHECKING:
    from spindle.core.engine._events import EventEmitter
    from spindle.core.store import Store

__all__ = ["Creation", "Pending", "RunJournal"]


@define
class Creation:
    """A new run whose creation is held back to share its first commit.

    Starting a run and committing its first step need not be two transactions
    when nothing acts on the run's existence in between (``Engine.run`` of a
    new run, before its first node ends): the journal's first commit inserts
    the run, leased with ``lease``. ``state_hash`` is the hash of the state as
    created, computed (and so checked for JSON data) before anything runs.
    """

    lease: Lease
    state_hash: str
    state_text: str | None = None  # what was hashed, for the store to keep as it is


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


def _no_kind(node_id: str) -> str | None:
    return None


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
        chain: how the run's records and state are hashed (the run's own chain:
            keyed when the run was created with a key).
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
        chain: LedgerChain = PLAIN_CHAIN,
        creation: Creation | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        #: Set while the run is not written yet: its first commit creates it.
        self.creation = creation
        # The hash of the state as last committed (what its digest covers): a commit
        # that leaves the state alone digests it again without re-encoding it.
        self._state_hash = creation.state_hash if creation is not None else state_hash(state)
        self.emitter = emitter
        #: What a node is (its kind, for events); the driver sets it from its ready set.
        self.kind_of: Callable[[str], str | None] = _no_kind
        self.state = state
        self.token = token
        self.secrets = secrets or NO_SECRETS
        self._scrubs = bool(self.secrets)  # asked for every record and event
        if position is not None:
            self.count, self.head = position
        else:
            self.count = len(ledger)
            self.head = ledger[-1].record_hash if ledger else ""
        #: Recorded sub-steps and mid-function effects, by idempotency key.
        self.calls: dict[str, StepRecord] = {}
        #: The attempt a node is on, for nodes that failed and are being retried.
        self.attempts: dict[str, int] = {}
        #: Failed attempts of sub-steps in their node's current attempt, by call key.
        self.step_failures: dict[str, list[StepRecord]] = {}
        #: The attempt each failed node failed on, for a retry to number the next.
        self._failed_on: dict[str, int] = {}
        self._on_record = on_record
        for rec in ledger:
            self._replay(rec)
        self._persisted_status = state.status
        self.released = False
        self._carry: Pending | None = None
        # Sub-steps commit from the tasks that make them, beside the driver's own
        # commits: one at a time, each numbered and chained when it is written.
        self._gate = Gate()

    def _replay(self, rec: StepRecord) -> None:
        kind = rec.kind
        if kind == StepKind.CALL:
            self.calls[rec.idempotency_key] = rec
        elif kind == StepKind.CALL_FAILURE:
            self.step_failures.setdefault(failed_call(rec.idempotency_key), []).append(rec)
        elif kind == StepKind.RETRY:
            self.attempts[rec.node_id] = rec.attempt + 1
            self._fresh_budgets({rec.node_id})
        elif kind == StepKind.NODE:
            if rec.status == StepStatus.FAILED:
                self._failed_on[rec.node_id] = rec.attempt
            else:
                self._failed_on.pop(rec.node_id, None)
        elif kind == StepKind.RUN and rec.status == StepStatus.RETRIED:
            # The run was opened again: each failed node goes on from its next attempt.
            for node_id, attempt in self._failed_on.items():
                self.attempts[node_id] = attempt + 1
            self._fresh_budgets(set(self._failed_on))
            self._failed_on.clear()
        if self._on_record is not None:
            self._on_record(rec)

    def _fresh_budgets(self, nodes: set[str]) -> None:
        """A node tried again gives its sub-steps a fresh budget of attempts."""
        for key in [k for k, v in self.step_failures.items() if v[0].node_id in nodes]:
            del self.step_failures[key]

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
        attempt: int = 1,
        result: Any = None,
        error: str | None = None,
        started_at: Any = None,
        *,
        name: str | None = None,
    ) -> StepRecord:
        """Append a new record to ``pending``; it is numbered and chained when committed.

        ``attempt`` to ``started_at`` may be given by position: a step's completion
        does, as keywords cost its call a little more (it runs on every step)."""
        now = datetime.now(UTC)  # utcnow() without its call: once a step
        if self._scrubs:
            result = self.secrets.scrub(result)
            error = self.secrets.scrub(error)
        rec = StepRecord(
            self.state.run_id,
            -1,
            node_id,
            kind,
            status,
            key,
            attempt,
            result,
            error,
            started_at or now,
            now,
            "",
            "",
            name,
        )
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
            if self._scrubs:
                payload = self.secrets.scrub(payload)
            kind = None if node_id is None else self.kind_of(node_id)
            pending.events.append(
                self.emitter.build(self.state, type_, node_id, node_kind=kind, **payload)
            )

    # --- the commit path -----------------------------------------------------------

    @staticmethod
    async def create(
        store: Store,
        state: RunState,
        lease: Lease | None = None,
        records: Sequence[StepRecord] = (),
        chain: LedgerChain = PLAIN_CHAIN,
    ) -> None:
        """Insert the new run ``state``; with ``lease`` (token 1) it is leased to us in the
        same write. ``records`` (results a rerun reuses) are numbered, chained and written
        with it, and the head is ``chain``'s (keyed, or not, for the run's life). (A run
        with no ledger yet needs no journal to start one.)"""
        prev = ""
        for seq, rec in enumerate(records):
            rec.seq = seq
            chain.chain(rec, prev)
            prev = rec.record_hash
        state.step_count = len(records)
        text, hashed = state_text_and_hash(state)
        digest = chain.state_digest(len(records), prev, hashed)
        await store.commit(
            Commit(
                state,
                records,
                create=True,
                lease=lease,
                state_digest=digest,
                ledger_key_id=chain.key_id,
                state_text=text,
            )
        )

    async def commit(self, pending: Pending) -> None:
        """Write ``pending`` and the run state in one transaction, then emit its events.

        Raises:
            LeaseLost: the lease this journal writes under was taken over.
        """
        gate = self._gate
        if gate.busy:  # spelled out: ``async with`` costs two more calls a step
            await gate.wait()
        else:
            gate.busy = True
        try:
            light = pending.light and self.state.status == self._persisted_status
            # A held run is written whole even when only its counters moved; its hash,
            # taken when it was made, still holds then.
            # (state_changed, rehash) by position: every step commits here.
            await self._write(pending, not light or self.creation is not None, not light)
            self._persisted_status = self.state.status
            self.released = self.released or pending.release
        finally:
            gate.release()

    async def commit_steps(self, pending: Pending) -> None:
        """Write sub-step records only: the run state's counters move, nothing else.

        A task commits its sub-steps while the driver may be between changing
        the state and committing it: such a commit must never write the state.
        """
        async with self._gate:
            held = self.creation is not None
            await self._write(pending, state_changed=held, rehash=held)

    async def ensure_created(self) -> None:
        """Write the run now if its creation is still held back (its first node takes long,
        several run at once, or the drive stops): from then on it is visible and can be
        cancelled from elsewhere."""
        if self.creation is None:
            return
        async with self._gate:
            if self.creation is not None:
                await self._write(Pending(), state_changed=True, rehash=True)

    async def _write(self, pending: Pending, state_changed: bool, rehash: bool) -> None:
        """Number, chain and commit ``pending``; ``state_changed`` writes the whole state,
        ``rehash`` hashes it anew (else the hash of the state as last committed holds)."""
        records = pending.records
        prev, seq = self.head, self.count
        chain = self.chain
        worker = self.emitter.worker
        for rec in records:
            rec.seq = seq
            if worker is not None:
                rec.worker = worker
            chain.chain(rec, prev)
            prev, seq = rec.record_hash, seq + 1
        if records:
            self.state.step_count = seq
        self.state.updated_at = datetime.now(UTC)  # (utcnow(), as above)
        # A commit that leaves the stored state alone (rehash false) digests the state as
        # last committed, not the one in memory (the driver may be changing it).
        creation = self.creation
        text: str | None
        if rehash:
            text, hashed = state_text_and_hash(self.state)
        else:
            hashed = self._state_hash
            # A held run's text, taken with its hash, holds as long as the hash does.
            text = creation.state_text if creation is not None else None
        if creation is None:
            # By position, in the field order (every step commits here).
            commit = Commit(
                self.state,
                records,
                pending.consume,
                self.token,
                False,  # create
                state_changed,
                None,  # lease
                pending.release,  # release_lease
                chain.state_digest(seq, prev, hashed),
                chain.key_id,  # ledger_key_id
                text,  # state_text: None unless the state is written (rehash implies it)
            )
        else:
            # The run's first write inserts it; a drive that also ends here leaves it
            # unleased rather than taking the lease and giving it up in one go.
            commit = Commit(
                self.state,
                records,
                pending.consume,
                create=True,
                lease=None if pending.release else creation.lease,
                state_digest=chain.state_digest(seq, prev, hashed),
                ledger_key_id=chain.key_id,
                state_text=text,
            )
        await self.store.commit(commit)
        self.creation = None
        self._state_hash = hashed
        if records:
            self.count, self.head = seq, prev
            for rec in records:
                self._replay(rec)
        if pending.events:
            await self.emitter.send(pending.events)
