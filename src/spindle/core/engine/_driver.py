"""Driving one run through its graph: the durable step loop.

A :class:`RunDriver` composes the run's journal (records and the one commit
path), its ready set (dependencies and launch order), the attempts (inputs,
contexts, tasks and effects) and the outcome handling (one handler per kind
of outcome). It loops: launch ready nodes up to the concurrency limit, take
the next finished one, **commit its outcome**, and only then act on it.
Timers due soon (retry backoffs, short ``wait_until``) are awaited
in-process; anything longer leaves the run ``waiting``.

A drive can be stopped from outside (:meth:`RunDriver.request_stop`): a
cancel stops the attempts in flight and records the run as cancelled; a
lost lease stops them and writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from spindle.core.engine._active import Stop, StopKind
from spindle.core.engine._answers import (
    AlreadyAnswered,
    Answer,
    choose_wait,
    partial_answer_batch,
)
from spindle.core.engine._attempt import Attempts, Finished
from spindle.core.engine._completed import commit_completed
from spindle.core.engine._due import due_timer, queued_answer, resolve_timer
from spindle.core.engine._ending import (
    cancel_batch,
    event_keys,
    fail_batch,
    run_failure,
    run_output,
    runaway,
    wait_batch,
)
from spindle.core.engine._finish import finish_run
from spindle.core.engine._hold import CreationTimer
from spindle.core.engine._inflight import InFlight
from spindle.core.engine._journal import Creation, Pending, RunJournal
from spindle.core.engine._outcomes import Ending, EndingKind, Outcomes
from spindle.core.engine._ready import ReadySet
from spindle.core.engine._results import Results
from spindle.core.errors import HookError, InvalidAnswer, LeaseLost
from spindle.core.model import (
    TERMINAL_STATUSES,
    HandoffEnvelope,
    LifecycleEventType,
    RunState,
    RunStatus,
    WaitReason,
    WaitState,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from spindle.core.engine._active import ActiveRun
    from spindle.core.engine._followon import FollowOn
    from spindle.core.engine._services import Services
    from spindle.core.model import LedgerChain, StepRecord
    from spindle.core.workflow import Workflow

__all__ = ["RunDriver"]

T = TypeVar("T")


class RunDriver:
    """Advances one run until it completes, fails, waits, parks or is stopped.

    Attributes:
        handoffs: envelopes the finish hooks created, for the engine to take up
            once the run's end is committed.
    """

    def __init__(
        self,
        services: Services,
        follow_on: FollowOn,
        active: ActiveRun,
        state: RunState,
        workflow: Workflow,
        ledger: Sequence[StepRecord],
        *,
        fresh: bool = False,
        chain: LedgerChain | None = None,
        creation: Creation | None = None,
    ) -> None:
        self.services = services
        self.state = state
        self.wf = workflow
        self.fresh = fresh
        self.ready = ReadySet(workflow)
        self.journal = RunJournal(
            services.store,
            services.emitter,
            state,
            active.lease.token,
            ledger,
            active.secrets,
            on_record=self.ready.replay,
            chain=chain or services.chain,
            creation=creation,
        )
        self.journal.kind_of = self.ready.kind_of
        self._hold = CreationTimer(self.journal, workflow)
        self.results = Results(services.store, state.run_id, services.limits.result_inline_limit)
        self.attempts = Attempts(
            services,
            state,
            workflow,
            self.ready,
            self.journal,
            self.results,
            active.secrets,
            lambda node, key, wait: follow_on.links(state.run_id, workflow, key, wait),
        )
        self.outcomes = Outcomes(
            services, state, workflow, self.journal, self.ready, self.results, self.attempts
        )
        self._flight = InFlight()
        self.inflight = self._flight.tasks  # by node id; the same dict for the whole drive
        self.max_steps = workflow.max_steps or services.limits.max_steps
        self.parked = False
        self.handoffs: list[HandoffEnvelope] = []
        self.stop: Stop | None = active.early_stop
        self._task = active.task
        self._in_attempt = False
        # Hooks do not change while the engine is open; asked once per drive, not per step.
        self._finish_hooks = services.has_finish_hooks

    # --- stopping from outside ----------------------------------------------------

    def request_stop(self, stop: Stop) -> None:
        """Stop the drive soon: attempts in flight are cancelled, the loop wakes up."""
        if self.stop is not None:
            return
        self.stop = stop
        self._flight.cancel()
        self._flight.wake()
        if self._in_attempt and self._task is not None:
            self._task.cancel()  # an attempt, or a short timer, awaited in the drive's task

    async def _stopped(self, stop: Stop) -> RunState:
        await self._cancel_inflight()
        if stop.kind is StopKind.LOST:
            raise LeaseLost(
                f"run {self.state.run_id}: another process took the run's lease over, so this "
                f"one stopped driving it"
            )
        await self.journal.commit(cancel_batch(self.journal, stop.reason, stop.event_id))
        return self.state

    # --- answering a wait before the loop ------------------------------------------

    async def answer(self, request: Answer) -> RunState | None:
        """Record the answer to one of the run's waits, with the run back to ``running``.

        Returns None to drive on, or the state to return as it is (the wait was
        answered already). A request naming no wait, for a run that waits on
        nothing, records nothing and drives on.

        Raises:
            RunNotWaiting, WaitKeyMismatch, InvalidAnswer: see :func:`choose_wait`.
        """
        choice = await choose_wait(self.services, self.state, self.wf, request)
        if isinstance(choice, AlreadyAnswered):
            return self.state
        if choice is None:
            return None  # nothing waits: a plain resume drives on
        wait, value, error, keep = choice
        if keep is not None:  # the wait stays open, with its new state
            batch = partial_answer_batch(self.journal, request, wait, value, keep)
            await self.journal.commit(batch)
            request.delivered = True
            return self.state
        pending = self.journal.pending()
        self.state.waits = [w for w in self.state.waits if w.key != wait.key]
        pending.consume.extend(request.consume)
        ending = None
        if wait.reason != WaitReason.RETRY:
            # A retry backoff answered by hand just ends early: the node runs again.
            ending = self.outcomes.resolve_wait(pending, wait, value, error=error)
        self._resumed(pending)
        request.delivered = True
        if ending is not None:
            await self._end(ending)
            return self.state
        await self.journal.commit(pending)
        self.ready.requeue(wait.node_id)
        return None

    def _resumed(self, pending: Pending) -> None:
        if self.state.status in (RunStatus.PENDING, RunStatus.WAITING):
            first = self.state.status == RunStatus.PENDING
            self.state.status = RunStatus.RUNNING
            self.state.error = None  # a parked run's reason no longer holds
            self.journal.event(
                pending,
                LifecycleEventType.RUN_STARTED if first else LifecycleEventType.RUN_RESUMED,
            )

    # --- the loop ------------------------------------------------------------------

    async def drive(self) -> RunState:
        """Run until nothing more can happen now; return the run's state."""
        if self.state.status in (RunStatus.PENDING, RunStatus.WAITING) or (
            self.fresh and self.services.emitter.active
        ):
            # From the moment a driver holds the run, it reads running; a run created
            # leased is running already and only announces itself.
            pending = self.journal.pending()
            if self.fresh:
                self.journal.event(pending, LifecycleEventType.RUN_STARTED)
            self._resumed(pending)
            await self.journal.commit(pending)
        try:
            while True:
                if self.stop is not None:
                    return await self._stopped(self.stop)
                if self.state.status in TERMINAL_STATUSES or self.parked:
                    return self.state
                if self.journal.count >= self.max_steps:
                    await self.fail_run(runaway(self.max_steps))
                    return self.state
                room = self.services.limits.concurrency - len(self.inflight)
                waits = self.state.waits
                busy = {*self.inflight, *(w.node_id for w in waits)} if waits else self.inflight
                ready = self.ready.pop(room, busy)
                if self.journal.creation is not None and self._hold.must_write(
                    ready, self.inflight
                ):
                    await self.journal.ensure_created()
                if len(ready) == 1 and not self.inflight:
                    # The sequential case: run the one ready node without a Task, which
                    # saves a scheduling round trip per step.
                    if self.journal.creation is None and not self.services.emitter.active:
                        finished = await self._interruptibly(self.attempts.run(ready[0]))
                    else:  # announced, or timed for the held creation
                        finished = await self._attempt_here(ready[0])
                    if finished is not None:
                        await self._handle(finished)
                    continue
                await self._launch(ready)
                if not self.inflight:
                    if await self._answer_due_waits():
                        continue
                    if self.state.waits:
                        return await self._suspend()
                    await self._finish()
                    return self.state
                finished = await self._flight.next()
                if finished is None:
                    continue
                more = self._flight.take_ended() if self.stop is None else []
                if more:
                    await self._handle_together([finished, *more])
                else:
                    await self._handle(finished)
        except BaseException:
            await self._cancel_inflight()
            with contextlib.suppress(Exception):
                await self.journal.ensure_created()  # recorded, to be resumed
            raise

    async def _attempt_here(self, node_id: str) -> Finished | None:
        if self.services.emitter.active:
            await self.attempts.announce(node_id)
        if self.journal.creation is None:  # the run is written: nothing to hold
            return await self._interruptibly(self.attempts.run(node_id))
        self._hold.arm()
        try:
            return await self._interruptibly(self.attempts.run(node_id))
        finally:
            await self._hold.disarm()

    async def _interruptibly(self, work: Awaitable[T]) -> T | None:
        """Await ``work`` in the drive's own task so that a stop can interrupt it;
        None when it did (the loop then carries the stop out)."""
        self._in_attempt = True
        try:
            done = await work
        except asyncio.CancelledError:
            if self.stop is None or self._task is None:
                raise
            self._task.uncancel()  # our own stop, not a cancel of the drive
            return None
        finally:
            self._in_attempt = False
        if self.stop is not None and self._task is not None and self._task.cancelling():
            # The work swallowed our stop's cancellation: take it back all the same.
            self._task.uncancel()
        return done

    async def _launch(self, ready: list[str]) -> None:
        for nid in ready:
            self._flight.launch(nid, self.attempts.run(nid))
            if self.services.emitter.active:
                await self.attempts.announce(nid)

    async def _cancel_inflight(self) -> None:
        await self._flight.cancel_all()

    async def _handle_together(self, fs: list[Finished]) -> None:
        """Act on several ended attempts: their completions share one commit."""
        last = not self.inflight and not self._finish_hooks
        for f in await commit_completed(self.outcomes, fs, last=last):
            if self.state.status.terminal or self.parked:
                return  # the run ended (a failure): the others are not acted on
            await self._handle(f)

    async def _handle(self, f: Finished) -> None:
        last = not self.inflight and not self._finish_hooks
        ending = await self.outcomes.act(f, last)
        if ending is not None:
            await self._end(ending)
            return
        if not self.ready.done(f.node_id) and not any(
            w.node_id == f.node_id for w in self.state.waits
        ):
            self.ready.requeue(f.node_id)  # e.g. its mid-function effect was answered at once

    async def _end(self, ending: Ending) -> None:
        if ending.kind is EndingKind.PARK:
            await self._park(ending.pending, ending.node_id, ending.message)
        else:
            await self._cancel_inflight()
            await self.fail_run(ending.message, ending.pending)

    # --- waits and timers -------------------------------------------------------------

    async def _answer_due_waits(self) -> bool:
        """Answer a wait without suspending: from an event the inbox holds for the run (sent
        while it was busy), or a timer due within ``max_inline_sleep``. True if one was."""
        queued = await queued_answer(self.services.store, self.state)
        if queued is not None:
            with contextlib.suppress(InvalidAnswer):  # refused: left in the inbox
                await self.answer(queued)
                return True
        due = due_timer(self.state.waits, self.services.limits.max_inline_sleep)
        if due is None:
            return False
        wait, delay = due
        if delay > 0:
            await self._interruptibly(asyncio.sleep(delay))
            if self.stop is not None:
                return True  # the loop carries the stop out
        await self.fire_timer(wait)
        return True

    async def fire_timer(self, wait: WaitState) -> None:
        """Resolve a due timer wait: a retry runs again, a sleep ends, an event wait times out."""
        pending, ending = resolve_timer(self.outcomes, self.journal, wait)
        if ending is not None:
            await self._end(ending)
            return
        await self.journal.commit(pending)
        self.ready.requeue(wait.node_id)  # a task that asked mid-function runs again

    async def _park(self, pending: Pending, node_id: str | None, message: str) -> None:
        """Stop without failing: the run waits until it is resumed with what it lacks."""
        await self._cancel_inflight()
        await self.journal.commit(wait_batch(self.journal, pending, node_id, reason=message))
        self.parked = True

    async def _suspend(self) -> RunState:
        node_id = self.state.waits[0].node_id
        await self.journal.commit(wait_batch(self.journal, self.journal.pending(), node_id))
        return self.state

    # --- ending --------------------------------------------------------------------

    async def _finish(self) -> None:
        pending = self.journal.pending()
        failure = run_failure(self.wf, self.ready)
        if failure is not None:
            await self.fail_run(failure, pending)
            return
        try:
            self.handoffs = await finish_run(
                self.services,
                self.journal,
                pending,
                await run_output(self.wf, self.ready, self.attempts.result_of),
                in_flight=list(self.inflight),
                event_keys=event_keys(self.wf, self.state) if self._finish_hooks else (),
            )
        except HookError as exc:
            await self.fail_run(str(exc), pending)

    async def fail_run(self, message: str, pending: Pending | None = None) -> None:
        """End the run as failed with ``message`` (committed with ``pending``)."""
        await self.journal.commit(fail_batch(self.journal, message, pending))
