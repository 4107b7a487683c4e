"""Per-run state of the runs an engine drives now: one record each, dropped at the end.

An :class:`ActiveRun` holds what belongs to one drive and nothing longer:
the lease, the task driving it, the clear values of its secret inputs, its
driver, and a way to stop it (a cancel, or the lease taken over). When the
drive ends the record is dropped.

Secrets given before a drive starts (``Engine.start``, ``give_secrets``,
``resume --input``) wait in :class:`ActiveRuns` until that drive takes them;
a drive that leaves its run waiting hands them back for the next one, so
they live in this process until the run ends or the engine closes, and
never in the store.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import define, frozen

from spindle.core.errors import LeaseHeld
from spindle.core.model import NO_SECRETS, Lease, Secrets

if TYPE_CHECKING:
    from spindle.core.engine._driver import RunDriver

__all__ = ["ActiveRun", "ActiveRuns", "Stop", "StopKind"]


class StopKind(enum.StrEnum):
    """Why a drive must stop before the run would stop by itself."""

    CANCEL = "cancel"  # somebody cancelled the run: the driver records it
    LOST = "lost"  # the lease was taken over: this process must not write again


@frozen
class Stop:
    """A request to stop a drive now.

    Attributes:
        kind: cancel (record the run as cancelled) or lost (stop writing).
        reason: what the run's error will say, for a cancel.
        event_id: the inbox event that carried the request from another process,
            consumed in the same transaction that records the cancel.
    """

    kind: StopKind
    reason: str = ""
    event_id: str | None = None


@define(eq=False)
class ActiveRun:
    """One run this engine drives now."""

    run_id: str
    lease: Lease
    secrets: Secrets
    task: asyncio.Task[Any] | None
    driver: RunDriver | None = None
    #: A stop asked for before the driver existed; the driver takes it on start.
    early_stop: Stop | None = None
    ended: bool = False
    #: The task renewing the lease and watching for cancel requests, once started.
    keeper: asyncio.Task[None] | None = None
    _finished: asyncio.Event | None = None

    async def wait_ended(self) -> None:
        """Wait until this drive has ended (made on demand: most drives are never awaited)."""
        if self.ended:
            return
        if self._finished is None:
            self._finished = asyncio.Event()
        await self._finished.wait()

    def request_stop(self, stop: Stop) -> None:
        """Ask the drive to stop (the first request wins)."""
        if self.driver is not None:
            self.driver.request_stop(stop)
        elif self.early_stop is None:
            self.early_stop = stop


class ActiveRuns:
    """The runs an engine drives now, and secrets handed over for runs it will drive."""

    def __init__(self) -> None:
        self._runs: dict[str, ActiveRun] = {}
        self._given: dict[str, Secrets] = {}

    def give(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Hold the clear values of secret inputs for the next drive of ``run_id``."""
        if values:
            known = self._given.get(run_id)
            merged = {**(known.values if known else {}), **values}
            self._given[run_id] = Secrets(merged)

    def begin(self, run_id: str, lease: Lease, task: asyncio.Task[Any] | None) -> ActiveRun:
        """Record a drive of ``run_id`` starting under ``lease``.

        Raises:
            LeaseHeld: this engine drives the run already (see :meth:`refuse_second`).
        """
        self.refuse_second(run_id)
        secrets = self._given.pop(run_id, None) or NO_SECRETS
        active = self._runs[run_id] = ActiveRun(run_id, lease, secrets, task)
        return active

    def refuse_second(self, run_id: str) -> None:
        """Refuse a second drive of a run this engine drives already.

        A lease is re-entrant for its owner, so the engine itself must refuse:
        taking the lease again would bump the fencing token under the drive in
        progress.

        Raises:
            LeaseHeld: this engine drives ``run_id`` now.
        """
        if run_id in self._runs:
            raise LeaseHeld(
                f"run {run_id} is already being driven by this engine; wait for that "
                f"drive to finish"
            )

    def end(self, active: ActiveRun, *, run_ended: bool) -> None:
        """Drop the record of a drive that ended.

        Its secrets are dropped with it once the run ended; a run that will be
        driven again (it waits) keeps them for that drive in this engine.
        """
        if self._runs.get(active.run_id) is active:
            del self._runs[active.run_id]
        if not run_ended:
            self.give(active.run_id, active.secrets.values)
        active.driver = None
        active.secrets = NO_SECRETS
        active.ended = True
        if active._finished is not None:
            active._finished.set()

    def get(self, run_id: str) -> ActiveRun | None:
        """The record of ``run_id`` if this engine drives it now."""
        return self._runs.get(run_id)

    def clear(self) -> None:
        """Forget secrets held for drives that never started (the engine closes)."""
        self._given.clear()
