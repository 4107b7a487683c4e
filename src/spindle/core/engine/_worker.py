"""A worker: claims runnable runs from a store and drives them, with bounded concurrency.

``spindle worker`` is one; a host application runs one with
:class:`Worker` (``await Worker(engine).run()``). Many workers, on one
machine or many, share one store: each claim leases the runs it takes
(:meth:`~spindle.core.store.WorkStore.claim_runs`), so no run is driven by
two workers, and queue limits hold across all of them. A worker

* announces itself in the store (``spindle workers``) and refreshes that
  record with its heartbeat; its id is in every record and event it writes;
* fires the store's due schedule slots before each claim (each slot starts
  one run across all workers, see ``_schedules``) and waits no longer than
  the next slot;
* takes over at once the runs a dead process on its own host held (their
  leases are known dead: the pid is gone); runs of dead workers elsewhere are
  claimed once their lease expires;
* on :meth:`Worker.stop` (``SIGTERM`` for ``spindle worker``) claims nothing
  more, lets the runs it drives finish for up to ``grace`` seconds, then stops
  driving the rest and hands their leases back expired, so another worker
  claims them at once; the ledger keeps every step already recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Awaitable, Collection, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from attrs import define

from spindle.core.engine._leases import pid_alive
from spindle.core.engine._schedules import serve_schedules
from spindle.core.errors import LeaseHeld, LeaseLost, SpindleError, StoreBusy, StoreFull
from spindle.core.model import Claim, RunState, WorkerInfo, check_worker_id, utcnow

if TYPE_CHECKING:
    from spindle.core.engine._engine import Engine
    from spindle.core.engine._retention import Retention

__all__ = ["Worker", "WorkerReport", "WorkerStats", "new_worker_id"]

log = logging.getLogger("spindle.worker")

# A full disk or a lock held too long passes: the run is left as last committed
# (its lease expires if it could not be given back) and is claimed again once
# due, instead of being given up like a broken run.
_PASSING = (StoreBusy, StoreFull)


def new_worker_id(host: str) -> str:
    """A worker id naming its host and process, unique among workers: ``HOST:PID:XXXXXX``."""
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerReport(Protocol):
    """What a worker tells as it goes (``spindle worker``'s progress display)."""

    def offered(self, run_id: str) -> None:
        """A run was claimed and its drive begins."""

    def ended(self, run_id: str, state: RunState) -> None:
        """The worker stopped driving a run (it completed, failed, waits...)."""

    def note(self, run_id: str | None, text: str) -> None:
        """Something the operator should read (a run that cannot be driven here...)."""


class _Silent:
    def offered(self, run_id: str) -> None:
        pass

    def ended(self, run_id: str, state: RunState) -> None:
        pass

    def note(self, run_id: str | None, text: str) -> None:
        log.warning("%s", text)


@define
class WorkerStats:
    """What a worker did: runs it drove to a stop, and those it handed back at shutdown."""

    driven: int = 0
    taken_over: int = 0
    handed_back: int = 0


class Worker:
    """Claims runnable runs (new, resumed, timers and retries due, leases expired) from
    the engine's store and drives up to ``concurrency`` of them at once.

    Args:
        engine: the engine to drive runs with (its store, plugins and workflows).
        concurrency: runs driven at once.
        queues: claim only runs of these queues (None: of any queue, and of none).
        poll: seconds between looks for due work when the store cannot push wake-ups.
        grace: seconds :meth:`stop` lets runs being driven finish before it stops them.
        worker_id: this worker's id (default: ``HOST:PID:RANDOM``).
        report: told of each claimed and finished run (default: logging).
        retention: a policy pruning old finished runs now and then (see
            :class:`~spindle.core.engine.Retention`); None keeps every run.

    Example::

        async with Engine("postgresql://db/spindle") as engine:
            worker = Worker(engine, concurrency=8, queues=["emails"])
            await worker.run()  # until worker.stop()
    """

    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = 4,
        queues: Collection[str] | None = None,
        poll: float = 1.0,
        grace: float = 30.0,
        worker_id: str | None = None,
        report: WorkerReport | None = None,
        retention: Retention | None = None,
    ) -> None:
        if concurrency < 1:  # (a bad worker_id is a ValueError too)
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.engine = engine
        self.concurrency = concurrency
        self.queues = sorted(set(queues)) if queues is not None else None
        self.poll = poll
        self.grace = grace
        self.worker_id = check_worker_id(worker_id or new_worker_id(engine.host))
        self.report: WorkerReport = report or _Silent()
        self.retention = retention
        self.stats = WorkerStats()
        self._stopping = asyncio.Event()
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._broken: set[str] = set()
        self._taken: set[str] = set()  # runs another worker took over from this one
        self._started = utcnow()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    @property
    def running(self) -> list[str]:
        """The ids of the runs this worker drives now."""
        return sorted(self._inflight)

    def stop(self) -> None:
        """Stop claiming; :meth:`run` returns once the runs being driven finish (or
        ``grace`` seconds pass, after which they are handed back). Safe from a
        signal handler on the worker's loop."""
        self._stopping.set()

    async def run(self, *, once: bool = False) -> WorkerStats:
        """Claim and drive runs until :meth:`stop` (with ``once``: until nothing is
        due and every run claimed has stopped). Returns what the worker did."""
        engine = self.engine
        await engine.open()
        engine.serve_as(self.worker_id, on_taken_over=self._taken.add)
        store = engine.store
        ttl = engine.services.leases.ttl
        beat_every = max(ttl / 3, 0.05)
        await self._announce()
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[bool] | None = None
        last_beat = loop.time()
        try:
            while not self._stopping.is_set():
                await self._tend()
                # A due slot starts a pending run; the next slot bounds the wait below.
                next_slot = await serve_schedules(engine, utcnow())
                asked = self.concurrency - len(self._inflight)
                got = await self._claim_more(once)
                if loop.time() - last_beat >= beat_every:
                    last_beat = loop.time()
                    await self._announce()
                if once and not got and not self._inflight:
                    break
                if asked > 0 and got == asked:
                    continue  # it got all it asked for: the slots are full now
                waits: set[asyncio.Future[Any]] = set(self._inflight.values())
                stop_wait = asyncio.ensure_future(self._stopping.wait())
                waits.add(stop_wait)
                if not once and len(self._inflight) < self.concurrency:
                    # Nothing more due now: wait for a push from the store (PostgreSQL's
                    # NOTIFY), a drive to end, or the poll interval.
                    if wake is None:
                        wake = asyncio.ensure_future(store.wait_for_work(self.poll))
                    waits.add(wake)
                timeout = min(beat_every, self.poll)
                if next_slot is not None:
                    timeout = max(0.0, min(timeout, (next_slot - utcnow()).total_seconds()))
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                if wake is not None and wake.done():
                    wake = None
        finally:
            if wake is not None:
                wake.cancel()
                with contextlib.suppress(BaseException):
                    await wake
            await self._wind_down()
        return self.stats

    async def _tend(self) -> None:
        """Run a retention pass if one is due (it never stops the worker)."""
        if self.retention is None:
            return
        try:
            result = await self.retention.tick(self.engine.store)
        except SpindleError as exc:
            self.report.note(None, f"retention: cannot prune now, retrying later: {exc}")
            return
        if result is not None and result.runs:
            self.report.note(
                None,
                f"retention: pruned {result.runs} run(s), {result.records} ledger record(s), "
                f"{result.events} inbox event(s), {result.artifacts} artifact(s)",
            )

    async def _claim_more(self, once: bool) -> int:
        """Claim what fits in the free slots and start driving it; also take over the
        runs dead local processes left. Returns how many drives it started."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        try:
            claims = await self.engine.claim(free, self.queues)
        except _PASSING as exc:
            if once:
                raise
            self.report.note(None, f"cannot look for due runs now, retrying: {exc}")
            return 0
        for claim in claims:
            self._start(claim.run_id, self._drive(claim))
        started = len(claims)
        if started < free:
            started += await self._take_over_dead(free - started)
        return started

    async def _take_over_dead(self, room: int) -> int:
        """Drive runs whose lease a process on this host that no longer exists holds."""
        leases = self.engine.services.leases
        try:
            held = await self.engine.store.held_leases(host=leases.host)
        except _PASSING:
            return 0
        taken = 0
        for run_id, lease in held:
            if taken >= room:
                break
            if run_id in self._inflight or run_id in self._broken:
                continue
            if lease.pid == leases.pid or pid_alive(lease.pid):
                continue
            self.stats.taken_over += 1
            self._start(run_id, self._drive_dead(run_id))
            taken += 1
        return taken

    def _start(self, run_id: str, drive: Coroutine[Any, Any, None]) -> None:
        self.report.offered(run_id)
        task = asyncio.ensure_future(drive)
        self._inflight[run_id] = task
        task.add_done_callback(functools.partial(self._done, run_id))

    def _done(self, run_id: str, _task: asyncio.Future[None]) -> None:
        self._inflight.pop(run_id, None)

    async def _drive(self, claim: Claim) -> None:
        await self._guarded(claim.run_id, self.engine.drive_claimed(claim))

    async def _drive_dead(self, run_id: str) -> None:
        await self._guarded(run_id, self.engine.drive(run_id))

    async def _guarded(self, run_id: str, drive: Awaitable[RunState]) -> None:
        """Await one drive; what goes wrong with one run never stops the worker."""
        try:
            state = await drive
        except LeaseHeld:
            return  # another worker has it now
        except LeaseLost:
            # This worker stalled past its lease (paused, cut off) and another took the
            # run over: its writes were refused, the other worker's drive counts.
            self.report.note(run_id, f"run {run_id} was taken over by another worker")
            return
        except _PASSING as exc:
            # Due again as soon as the store takes writes (its claim waits for that).
            self.report.note(run_id, f"run {run_id} interrupted, to be retried: {exc}")
            return
        except SpindleError as exc:
            # One run this worker cannot drive (its workflow no longer loads, say) must
            # not stop the others: report it, leave it as recorded, do not take it again.
            self._broken.add(run_id)
            self.report.note(run_id, f"run {run_id} cannot be driven here: {exc}")
            await self._park(run_id)
            return
        if run_id in self._taken:
            self._taken.discard(run_id)
            self.report.note(run_id, f"run {run_id} was taken over by another worker")
            return
        self.stats.driven += 1
        self.report.ended(run_id, state)

    async def _announce(self) -> None:
        leases = self.engine.services.leases
        info = WorkerInfo(
            worker_id=self.worker_id,
            host=leases.host,
            pid=leases.pid,
            started_at=self._started,
            seen_at=utcnow(),
            concurrency=self.concurrency,
            queues=self.queues,
            stopping=self._stopping.is_set(),
            ttl=leases.ttl,
        )
        try:
            await self.engine.store.put_worker(info)
        except _PASSING as exc:
            self.report.note(None, f"cannot announce worker {self.worker_id} now, retrying: {exc}")

    async def _wind_down(self) -> None:
        """Let the runs in flight finish within ``grace``; stop and hand back the rest."""
        if self._inflight:
            await self._announce()  # shown as stopping meanwhile
            _, late = await asyncio.wait(set(self._inflight.values()), timeout=self.grace)
            late_ids = [r for r, t in self._inflight.items() if t in late]
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
            for run_id in late_ids:
                await self._hand_back(run_id)
        with contextlib.suppress(SpindleError):
            await self.engine.store.remove_worker(self.worker_id)

    async def _park(self, run_id: str) -> None:
        """Keep ``run_id`` leased for one lease life without driving it: it is not due
        for anyone meanwhile (so it is not claimed again and again), and after that any
        worker may try it (one that can load its workflow, the store writable again)."""
        leases = self.engine.services.leases
        with contextlib.suppress(SpindleError):
            await leases.hold(run_id, leases.ttl)

    async def _hand_back(self, run_id: str) -> None:
        """Leave ``run_id`` due at once for another worker: a lease that has expired
        already (the stopped drive gave its own up, which would leave a running run
        that nobody claims)."""
        with contextlib.suppress(SpindleError):
            await self.engine.services.leases.hold(run_id, 0.0)
            self.stats.handed_back += 1
            self.report.note(run_id, f"run {run_id} handed back: the worker is stopping")
