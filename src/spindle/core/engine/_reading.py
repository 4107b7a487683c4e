"""The engine's read-only API: runs, ledgers, the inbox and audit trails, as stored.

:class:`~spindle.core.engine.Engine` inherits it; nothing here changes a run.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from spindle.core.model import (
    RESERVED_EVENT_PREFIX,
    AuditEntry,
    LedgerChain,
    LedgerVerification,
    RunState,
    RunStatus,
    StepRecord,
    verify_run,
)
from spindle.core.store import Store

if TYPE_CHECKING:
    from spindle.core.config import Settings

__all__ = ["RunReads"]

# How often verify_ledger reads a live run again for a ledger that matches its head.
_SNAPSHOT_TRIES = 5


class RunReads(abc.ABC):
    """Reading runs from the engine's store (opened on first use)."""

    store: Store
    settings: Settings

    @abc.abstractmethod
    async def open(self) -> Any:
        """Open the store."""

    async def get_run(self, run_id: str) -> RunState:
        """The run's state. Raises ``RunNotFound``."""
        await self.open()
        return await self.store.load_run(run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs, newest first, filtered by status and workflow name."""
        await self.open()
        st = RunStatus(status) if status is not None else None
        return await self.store.list_runs(status=st, workflow=workflow, limit=limit)

    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every ledger record of the run. Raises ``RunNotFound``."""
        await self.open()
        await self.store.load_run(run_id)
        return await self.store.ledger(run_id)

    async def verify_ledger(self, run_id: str) -> LedgerVerification:
        """Check the run's ledger: its hash chain (an HMAC chain under ``ledger_key``
        when the run is keyed), that it ends where its head says (no record
        removed from its end or added), and that the run's stored state (status,
        output, error, waits) matches the digest committed with its last record.

        Reports ok, the count, the first bad index and why; a keyed ledger checked
        without its key has ``key_problem`` set rather than being called broken.
        Raises ``RunNotFound``.
        """
        await self.open()
        state = await self.store.load_run(run_id)
        for _ in range(_SNAPSHOT_TRIES):
            records = await self.store.ledger(run_id)
            # A run being driven elsewhere may commit between the two reads: the
            # ledger read matches the head only if the head did not move meanwhile.
            again = await self.store.load_run(run_id)
            if again.head == state.head:
                break
            state = again
        return verify_run(state, records, LedgerChain(self.settings.ledger_key))

    async def pending_events(self, key: str | None = None) -> list[Any]:
        """Events in the inbox that no run has consumed yet (of one key, or all).

        Engine requests kept there (keys starting with ``spindle:``) are not listed.
        """
        await self.open()
        events = await self.store.pending_events(key)
        if key is None:
            events = [e for e in events if not e.key.startswith(RESERVED_EVENT_PREFIX)]
        return events

    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries."""
        await self.open()
        return await self.store.audit(run_id)
