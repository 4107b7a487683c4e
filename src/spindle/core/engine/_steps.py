"""The engine's side of a node attempt's sub-steps: each committed before it returns.

:class:`AttemptSteps` is the :class:`~spindle.core.plugin.StepLog` of one
attempt. Its commits go through the run's journal, records only (they never
write the run state the driver may be changing), numbered and chained when
written. Once the attempt has ended — it returned, raised, timed out, or its
run was stopped — its log is closed, and a task still running (a thread
Python cannot stop) gets :class:`~spindle.core.plugin.AttemptAbandoned` at its
next sub-step instead of writing to a run that moved on.

A sub-step whose commit fails in the store (a full disk, a lock held too
long) raises the :class:`~spindle.core.errors.StoreError` into the task, and
the log keeps it as :attr:`AttemptSteps.store_failure`: should the task end
with an error, the attempt re-raises that instead of recording a node failure
the node did not cause, so the drive stops with the run as it was last
committed, to be resumed once the store is fixed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from spindle.core.engine._journal import Pending
from spindle.core.engine._results import storable_sized, traceback_of
from spindle.core.errors import StoreError, TaskError
from spindle.core.model import (
    LifecycleEventType,
    StepKind,
    StepRecord,
    StepStatus,
    call_failure_key,
    call_key,
)
from spindle.core.plugin import AttemptAbandoned, StepHistory

if TYPE_CHECKING:
    from spindle.core.engine._journal import RunJournal
    from spindle.core.engine._results import Results

__all__ = ["AttemptSteps"]


class AttemptSteps:
    """Commits the sub-steps of one attempt of one node."""

    def __init__(
        self,
        journal: RunJournal,
        results: Results,
        node_id: str,
        max_steps: int,
        inline_sleep: float,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.inline_sleep = inline_sleep
        self._journal = journal
        self._results = results
        self._node_id = node_id
        self._max_steps = max_steps
        self.open = True
        #: The store's failure to commit one of this attempt's sub-steps, if any.
        self.store_failure: StoreError | None = None

    def close(self) -> None:
        """The attempt ended: refuse its sub-steps from now on."""
        self.open = False

    def _check(self) -> None:
        if not self.open:
            raise AttemptAbandoned(
                f"node '{self._node_id}': its attempt already ended (it timed out, or its "
                f"run was stopped); this sub-step is not recorded"
            )

    async def _commit(self, pending: Pending) -> None:
        try:
            await self._journal.commit_steps(pending)
        except StoreError as exc:
            self.store_failure = exc
            raise

    def history(self, key: str) -> StepHistory:
        """The failed attempts recorded for sub-step ``key`` in the node's current attempt."""
        failures = self._journal.step_failures.get(key)
        return StepHistory(len(failures), failures[-1]) if failures else StepHistory(0, None)

    async def value(self, record: StepRecord) -> Any:
        """A recorded sub-step's value, fetched from the artifact store if it was offloaded."""
        return await self._results.fetch(record.result)

    async def completed(self, index: int, value: Any, *, name: str, attempt: int) -> Any:
        """Commit sub-step ``index``; return its value as the ledger holds it."""
        self._check()
        journal = self._journal
        node_id = self._node_id
        stored, size = storable_sized(node_id, value)
        try:
            kept = await self._results.offload(node_id, stored, size)
        except StoreError as exc:
            self.store_failure = exc
            raise
        self._check()
        if journal.count >= self._max_steps:
            raise TaskError(
                f"node '{node_id}': the run exceeded max_steps={self._max_steps} ledger records "
                f"(a runaway loop?); raise max_steps in spindle.toml or the workflow if this "
                f"is expected",
                node_id=node_id,
            )
        pending = Pending()
        key = call_key(journal.state.run_id, node_id, index)
        journal.record(
            pending,
            node_id,
            StepKind.CALL,
            StepStatus.COMPLETED,
            key,
            attempt=attempt,
            result=kept,
            name=name,
        )
        journal.event(
            pending,
            LifecycleEventType.STEP_COMPLETED,
            node_id,
            step=name,
            call=index,
            attempt=attempt,
        )
        await self._commit(pending)
        return stored

    async def failed(
        self, index: int, error: BaseException, *, name: str, attempt: int, delay: float | None
    ) -> None:
        """Commit failed attempt ``attempt`` of sub-step ``index`` with its backoff."""
        self._check()
        journal = self._journal
        node_id = self._node_id
        message = f"{type(error).__name__}: {error}"
        pending = Pending()
        journal.record(
            pending,
            node_id,
            StepKind.CALL_FAILURE,
            StepStatus.FAILED,
            call_failure_key(journal.state.run_id, node_id, index, attempt),
            attempt=attempt,
            result={"delay": delay, **(traceback_of(error) or {})},
            error=message,
            name=name,
        )
        journal.event(
            pending,
            LifecycleEventType.STEP_FAILED,
            node_id,
            step=name,
            call=index,
            attempt=attempt,
            error=message,
            retry_in=delay,
        )
        await self._commit(pending)
