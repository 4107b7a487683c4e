"""The engine's worker-facing API: drive what a worker claimed, under its identity.

:class:`~spindle.core.engine.Engine` inherits it; :class:`~spindle.Worker`
uses it. An engine serving as a worker takes leases under the worker's id and
writes that id into every ledger record and lifecycle event it makes, so a
ledger tells which worker drove each step and ``spindle workers`` can tell
which runs each worker holds.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from spindle.core.errors import LeaseHeld
from spindle.core.model import Claim, RunState, utcnow

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from spindle.core.engine._drives import Drives
    from spindle.core.engine._services import Services
    from spindle.core.store import Store

__all__ = ["Serving"]


class Serving(abc.ABC):
    """Driving claimed runs, as a worker (see the module docstring)."""

    store: Store
    services: Services
    owner: str
    _drives: Drives

    @abc.abstractmethod
    async def open(self) -> Any:
        """Open the store."""

    @abc.abstractmethod
    async def drive(self, run_id: str) -> RunState:
        """Drive a run under a lease taken here."""

    @property
    def worker_id(self) -> str | None:
        """The id of the worker this engine serves (None: it serves none)."""
        return self.services.emitter.worker

    def serve_as(
        self, worker_id: str, *, on_taken_over: Callable[[str], None] | None = None
    ) -> None:
        """Take leases as ``worker_id`` from now on and write it into every ledger record
        and event (a worker calls it once, before it claims anything); ``on_taken_over``
        is told each run whose lease another process took while this engine drove it."""
        self._drives.on_taken_over = on_taken_over
        self.owner = worker_id
        self.services.leases.owner = worker_id
        self.services.emitter.worker = worker_id

    async def drive_claimed(self, claim: Claim) -> RunState:
        """Drive the run a claim (:meth:`Store.claim_runs`) leased to this engine.

        Raises:
            LeaseLost: the lease was taken over meanwhile (its holder stalled).
        """
        await self.open()
        return await self._drives.drive(claim.run_id, lease=claim.lease)

    async def claim(self, limit: int, queues: Collection[str] | None = None) -> list[Claim]:
        """Lease up to ``limit`` due runs (of ``queues``, if given) to this engine under
        the queues' limits (:meth:`Store.claim_runs`), to drive with :meth:`drive_claimed`."""
        await self.open()
        leases = self.services.leases
        return await self.store.claim_runs(
            utcnow(),
            owner=leases.owner,
            host=leases.host,
            pid=leases.pid,
            ttl=leases.ttl,
            limit=limit,
            queues=queues,
        )

    async def run_due(self, *, limit: int = 100) -> list[RunState]:
        """Drive every run with due work (pending, or a timer due now), one after the
        other, each claimed under the queues' limits: a worker's loop in one call."""
        out: list[RunState] = []
        while len(out) < limit:
            claims = await self.claim(1)
            if not claims:
                return out
            try:
                out.append(await self.drive_claimed(claims[0]))
            except LeaseHeld:
                continue
        return out
