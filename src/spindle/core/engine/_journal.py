"""The run journal: a run's ledger position, what it says so far, and committing.

:class:`RunJournal` replays a run's ledger once (completed nodes and their
results, answered calls, attempts used, the ready set) and is the one place
that numbers, chains and commits new records. :class:`RunDriver` builds the
step loop on top of it.
"""

from __future__ import annotations

import heapq
import json
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle.core.errors import TaskError
from spindle.core.model import (
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
    chain,
    normalize_result,
    utcnow,
)
from spindle.core.store import Commit

if TYPE_CHECKING:
    from spindle.core.engine._engine import Engine
    from spindle.core.workflow import Workflow

__all__ = ["ARTIFACT", "Pending", "RunJournal"]

#: The key of a result kept in the artifact store: ``{"$artifact": {digest, size}}``.
ARTIFACT = "$artifact"


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
    """A run's ledger as the driver needs it, and the commits that extend it."""

    def __init__(
        self,
        engine: Engine,
        state: RunState,
        workflow: Workflow,
        token: int | None,
        ledger: list[StepRecord],
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.state = state
        self.wf = workflow
        self.token = token
        self.count = len(ledger)
        self.head = ledger[-1].record_hash if ledger else ""
        self.results: dict[str, Any] = {}
        self.failed: set[str] = set()
        self.skipped: set[str] = set()
        self.calls: dict[str, StepRecord] = {}
        self.attempts: dict[str, int] = {}
        self.secrets = engine.secrets_of(state.run_id)
        self._order = workflow.order()
        self._position = {n: i for i, n in enumerate(self._order)}
        self._deps = {n: workflow.dependencies(n) for n in self._order}
        self._dependants: dict[str, list[str]] = {n: [] for n in self._order}
        for n, deps in self._deps.items():
            for d in deps:
                self._dependants[d].append(n)
        # Ready-set bookkeeping is incremental (a counter of unfinished dependencies per
        # node) so a step costs O(dependants), not a scan of the whole graph. Launchable
        # nodes sit in a heap of definition positions (peers start in definition order,
        # a step pops in O(log n)); ``_queued`` avoids duplicates. A node leaves the heap
        # when launched and comes back only if it must run again (an answered call, a
        # retry timer); a node found waiting when popped is dropped until its wait ends.
        self._remaining = {n: len(deps) for n, deps in self._deps.items()}
        self._undone = len(self._order)
        self._heap: list[int] = []
        self._queued: set[str] = set()
        for rec in ledger:
            self._replay(rec)
        for n, left in self._remaining.items():
            if left == 0:
                self.requeue(n)
        self._persisted_status = state.status
        self.released = False
        self._carry: Pending | None = None

    def requeue(self, node_id: str) -> None:
        """Make ``node_id`` launchable (again), unless it is done or already queued."""
        if node_id not in self._queued and not self._done(node_id):
            self._queued.add(node_id)
            heapq.heappush(self._heap, self._position[node_id])

    # --- replay --------------------------------------------------------------

    def _replay(self, rec: StepRecord) -> None:
        if rec.kind == StepKind.NODE:
            was_done = self._done(rec.node_id)
            if rec.status == StepStatus.COMPLETED:
                self.results[rec.node_id] = rec.result
                self.failed.discard(rec.node_id)
            elif rec.status == StepStatus.FAILED:
                self.failed.add(rec.node_id)
            elif rec.status == StepStatus.SKIPPED:
                self.skipped.add(rec.node_id)
            if not was_done and rec.node_id in self._remaining:
                self._undone -= 1
                for dep in self._dependants.get(rec.node_id, ()):
                    self._remaining[dep] -= 1
                    if self._remaining[dep] == 0:
                        self.requeue(dep)
        elif rec.kind == StepKind.CALL:
            self.calls[rec.idempotency_key] = rec
        elif rec.kind == StepKind.RETRY:
            self.attempts[rec.node_id] = rec.attempt + 1

    def _done(self, node_id: str) -> bool:
        return node_id in self.results or node_id in self.failed or node_id in self.skipped

    # --- committing ----------------------------------------------------------------

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

    def pending(self) -> Pending:
        """A batch to add records to: the deferred one if any, else a new one."""
        carry, self._carry = self._carry, None
        return carry if carry is not None else Pending()

    def defer(self, pending: Pending) -> None:
        """Keep ``pending`` for the next commit instead of writing it now.

        Only for changes nothing acts on before that commit: the run's status at
        the start of a drive, and a last node's record when the run finishes next.
        The bookkeeping is applied now so the finish can read the result.
        """
        for rec in pending.records:
            self._replay(rec)
        self._carry = pending

    async def commit(self, pending: Pending, *, create: bool = False) -> None:
        """Write ``pending`` and the run state in one transaction, then emit its events."""
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
                create,
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
        await self.engine.emitter.send(pending.events)

    def event(
        self,
        pending: Pending,
        type_: LifecycleEventType,
        node_id: str | None = None,
        **payload: Any,
    ) -> None:
        """Queue an event to emit once ``pending`` is committed."""
        if self.engine.emitter.active:
            if self.secrets:
                payload = self.secrets.scrub(payload)
            pending.events.append(self.engine.emitter.build(self.state, type_, node_id, **payload))

    # --- results and answered waits ------------------------------------------------

    async def result_of(self, node_id: str) -> Any:
        """A completed node's result, fetched from the artifact store if it was offloaded."""
        result = self.results.get(node_id)
        if isinstance(result, dict) and len(result) == 1 and ARTIFACT in result:
            data = await self.store.get_artifact(result[ARTIFACT]["digest"])
            result = json.loads(data)
        return result

    async def _offload(self, node_id: str, value: Any) -> Any:
        """Keep a large result in the artifact store; the ledger holds a reference."""
        if value is None or isinstance(value, bool | int | float):
            return value
        limit = self.engine.settings.result_inline_limit
        if isinstance(value, str) and len(value) * 4 <= limit:
            return value  # cheap bound: a str never takes more than 4 bytes per char
        data = json.dumps(value, ensure_ascii=False).encode()
        if len(data) <= limit:
            return value
        ref = await self.store.put_artifact(
            self.state.run_id, data, name=f"{node_id}.result", media_type="application/json"
        )
        return {ARTIFACT: {"digest": ref.digest, "size": ref.size}}

    def _storable(self, node_id: str, value: Any) -> Any:
        try:
            value = normalize_result(value)
        except (TypeError, ValueError) as exc:
            raise TaskError(
                f"node '{node_id}' returned a value that cannot be recorded ({exc}); return "
                f"JSON-compatible data (dicts, lists, strings, numbers) or write a file output",
                node_id=node_id,
            ) from exc
        return value

    async def fire_timer(self, wait: WaitState) -> None:
        """Resolve a due timer wait: a retry becomes runnable, a sleep completes, an event
        wait times out."""
        pending = self.pending()
        self.state.waits = [w for w in self.state.waits if w.key != wait.key]
        if wait.reason == WaitReason.RETRY:
            await self.commit(pending)
            self.requeue(wait.node_id)
            return
        if wait.reason == WaitReason.EVENT:
            error = f"timed out waiting for event '{wait.event_key}'"
            self.resolve_wait(pending, wait, None, error=error)
        else:
            self.resolve_wait(pending, wait, wait.due_at.isoformat() if wait.due_at else None)
        await self.commit(pending)
        self.requeue(wait.node_id)  # a task that asked mid-function runs again

    def resolve_wait(
        self, pending: Pending, wait: WaitState, value: Any, *, error: str | None = None
    ) -> None:
        """Record the answer to ``wait`` (already removed from ``state.waits``)."""
        node_key = f"{self.state.run_id}:{wait.node_id}"
        self.record(
            pending,
            wait.node_id,
            StepKind.RESUME,
            StepStatus.COMPLETED,
            f"{self.state.run_id}:resume:{wait.key}",
            result={"key": wait.key},
        )
        status = StepStatus.FAILED if error else StepStatus.COMPLETED
        stored = None if error else self._storable(wait.node_id, value)
        if wait.call_key is not None:
            self.record(
                pending,
                wait.node_id,
                StepKind.CALL,
                status,
                wait.call_key,
                result=stored,
                error=error,
            )
        else:
            self.record(
                pending,
                wait.node_id,
                StepKind.NODE,
                status,
                node_key,
                result=stored,
                error=f"node '{wait.node_id}': {error}" if error else None,
            )
            self.event(
                pending,
                LifecycleEventType.NODE_FAILED if error else LifecycleEventType.NODE_COMPLETED,
                wait.node_id,
            )
