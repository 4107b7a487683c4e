"""Acting on what an attempt produced: one handler per kind of outcome.

Each handler turns a :class:`~spindle.core.engine._attempt.Finished` into
ledger records and run-state changes and commits them through the journal —
a result, a retry with its durable backoff, a wait, a failure the run
tolerates. What only the driver can do (stop other attempts, end the run)
comes back as an :class:`Ending` for it to carry out.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from attrs import frozen

from spindle.core.engine._attempt import FinishedKind
from spindle.core.engine._completed import node_result, record_completed
from spindle.core.engine._results import describe, storable, traceback_of
from spindle.core.errors import SecretUnavailable, StoreError, TaskError
from spindle.core.model import (
    EffectOutcome,
    EffectStatus,
    LifecycleEventType,
    StepKind,
    StepStatus,
    WaitReason,
    WaitState,
    attempt_key,
    node_key,
    resume_key,
    retry_wait_key,
    utcnow,
)

if TYPE_CHECKING:
    from spindle.core.engine._attempt import Attempts, Finished
    from spindle.core.engine._journal import Pending, RunJournal
    from spindle.core.engine._ready import ReadySet
    from spindle.core.engine._results import Results
    from spindle.core.engine._services import Services
    from spindle.core.model import RunState
    from spindle.core.workflow import NodeSpec, Workflow

__all__ = ["Ending", "EndingKind", "Outcomes"]


class EndingKind(enum.StrEnum):
    """What the driver must do after an outcome."""

    FAIL = "fail"  # end the run as failed (other attempts are stopped first)
    PARK = "park"  # stop without failing: the run waits for what it lacks (a secret)


@frozen
class Ending:
    """An outcome the run cannot go on from, with the batch it must be committed with."""

    kind: EndingKind
    message: str
    pending: Pending
    node_id: str | None = None


class Outcomes:
    """Records what attempts of one run's nodes produced."""

    def __init__(
        self,
        services: Services,
        state: RunState,
        workflow: Workflow,
        journal: RunJournal,
        ready: ReadySet,
        results: Results,
        attempts: Attempts,
    ) -> None:
        self.services = services
        self.state = state
        self.wf = workflow
        self.journal = journal
        self.ready = ready
        self.results = results
        self.attempts = attempts

    def act(self, f: Finished, last: bool) -> Awaitable[Ending | None]:
        """Record ``f``; ``last`` says nothing else runs or needs a commit before the finish.

        Returns the handler's coroutine for the caller to await (a frame less a step).
        """
        node = self.ready.node(f.node_id)
        attempt = self.journal.attempts.get(f.node_id, 1)
        pending = self.journal.pending()
        return _HANDLERS[f.kind](self, pending, node, attempt, f, last)

    # --- one handler per kind ----------------------------------------------------

    async def _skipped(
        self, pending: Pending, node: NodeSpec, attempt: int, f: Finished, last: bool
    ) -> None:
        rid = self.state.run_id
        self.journal.record(
            pending,
            node.id,
            StepKind.NODE,
            StepStatus.SKIPPED,
            node_key(rid, node.id),
            started_at=f.started_at,
            result=f.value,
        )
        why = f.value if isinstance(f.value, dict) else {"skipped_by": "failed"}
        self.journal.event(pending, LifecycleEventType.NODE_SKIPPED, node.id, **why)
        await self.journal.commit(pending)

    async def _opened(
        self, pending: Pending, node: NodeSpec, attempt: int, f: Finished, last: bool
    ) -> None:
        return None  # a map's items started: its record comes when they ended

    async def _returned(
        self, pending: Pending, node: NodeSpec, attempt: int, f: Finished, last: bool
    ) -> Ending | None:
        try:
            result = await node_result(self.services, self.results, self.state.run_id, node, f)
        except StoreError:
            raise  # keeping the result failed, not the node: the drive stops, to resume
        except Exception as exc:
            return await self._raised(pending, node, attempt, f, last, error=exc)
        record_completed(self.journal, pending, node.id, attempt, result, f)
        if (
            last
            and self.ready.undone == 1
            and not self.state.waits
            and f.via is None
            and not self.ready.adds_nodes(f.node_id)
        ):
            # The run's last node: its record and the run's end commit together.
            self.journal.defer(pending)
        else:
            await self.journal.commit(pending)
        return None

    async def _raised(
        self,
        pending: Pending,
        node: NodeSpec,
        attempt: int,
        f: Finished,
        last: bool,
        *,
        error: BaseException | None = None,
    ) -> Ending | None:
        error = error if error is not None else f.error
        assert error is not None  # an ERROR outcome carries its exception
        message = describe(node.id, error)
        if isinstance(error, SecretUnavailable):
            return Ending(EndingKind.PARK, message, pending, node.id)
        policy = node.retry
        mro = [c.__qualname__ for c in type(error).__mro__]
        mro += [f"{c.__module__}.{c.__qualname__}" for c in type(error).__mro__]
        if (
            policy is not None
            and attempt < policy.max_attempts
            and policy.retries(type(error).__name__, mro)
        ):
            delay = policy.delay(attempt, random.random())
            self.journal.record(
                pending,
                node.id,
                StepKind.RETRY,
                StepStatus.FAILED,
                attempt_key(self.state.run_id, node.id, attempt),
                attempt=attempt,
                result=traceback_of(error),
                error=message,
                started_at=f.started_at,
            )
            self.state.waits.append(
                WaitState(
                    retry_wait_key(node.id, attempt + 1),
                    WaitReason.RETRY,
                    node.id,
                    due_at=utcnow() + timedelta(seconds=delay),
                )
            )
            self.journal.event(
                pending,
                LifecycleEventType.NODE_RETRYING,
                node.id,
                attempt=attempt,
                error=message,
                delay=delay,
            )
            await self.journal.commit(pending)
            return None
        return await self._failed(
            pending, node, message, attempt, f.started_at, traceback_of(error)
        )

    async def _suspended(
        self, pending: Pending, node: NodeSpec, attempt: int, f: Finished, last: bool
    ) -> Ending | None:
        assert f.effect is not None and f.ctx is not None  # a SUSPEND carries both
        # A handler may start runs or read the store about this one: it must exist.
        await self.journal.ensure_created()
        try:
            handler = self.services.registry.create(
                "effect",
                {"kind": f.effect.kind, **f.effect.params},
                path=f"nodes.{node.id} (ctx.{f.effect.kind})",
            )
            outcome, links = await self.attempts.handle_effect(
                node, f.effect, handler, f.ctx.inputs, f.effect.key
            )
        except Exception as exc:
            return await self._raised(pending, node, attempt, f, last, error=exc)
        f.links = links
        return await self._effect_outcome(pending, node, attempt, f, outcome, f.effect.key)

    async def _decided(
        self, pending: Pending, node: NodeSpec, attempt: int, f: Finished, last: bool
    ) -> Ending | None:
        assert f.outcome is not None  # an EFFECT carries the handler's outcome
        return await self._effect_outcome(pending, node, attempt, f, f.outcome, None)

    # --- shared steps ------------------------------------------------------------

    async def _effect_outcome(
        self,
        pending: Pending,
        node: NodeSpec,
        attempt: int,
        f: Finished,
        outcome: EffectOutcome,
        call: str | None,
    ) -> Ending | None:
        journal = self.journal
        if outcome.consumed_event_id:
            pending.consume.append(outcome.consumed_event_id)
        for envelope_id, target, follow_on in getattr(f.links, "handoffs", ()):
            journal.event(
                pending,
                LifecycleEventType.HANDOFF_CREATED,
                node.id,
                envelope_id=envelope_id,
                target=target,
                follow_on_run_id=follow_on,
            )
        key = node_key(self.state.run_id, node.id)
        if outcome.status == EffectStatus.COMPLETED:
            value = storable(node.id, outcome.value)
            if call is None:
                journal.record(
                    pending,
                    node.id,
                    StepKind.NODE,
                    StepStatus.COMPLETED,
                    key,
                    attempt=attempt,
                    result=value,
                    started_at=f.started_at,
                )
                journal.event(pending, LifecycleEventType.NODE_COMPLETED, node.id)
            else:
                journal.record(
                    pending,
                    node.id,
                    StepKind.CALL,
                    StepStatus.COMPLETED,
                    call,
                    attempt=attempt,
                    result=value,
                    name=f.effect.kind if f.effect is not None else None,
                )
            await journal.commit(pending)
            return None
        if outcome.status == EffectStatus.WAITING:
            wait = outcome.wait
            assert wait is not None  # a WAITING outcome carries its wait
            wait.node_id = node.id
            wait.call_key = call
            if wait.kind is None and f.effect is not None:
                wait.kind = f.effect.kind
            self.state.waits.append(wait)
            journal.record(
                pending,
                node.id,
                StepKind.WAIT,
                StepStatus.WAITING,
                call or key,
                attempt=attempt,
                result={"key": wait.key, "reason": wait.reason.value},
            )
            await journal.commit(pending)
            return None
        error = TaskError(f"node '{node.id}': {outcome.error}", node_id=node.id)
        return await self._raised(pending, node, attempt, f, False, error=error)

    async def _failed(
        self,
        pending: Pending,
        node: NodeSpec,
        message: str,
        attempt: int,
        started: Any,
        details: dict[str, str] | None = None,
    ) -> Ending | None:
        """Record ``node`` failed; the run goes on only if the node says ``continue_on_failure``."""
        self.journal.record(
            pending,
            node.id,
            StepKind.NODE,
            StepStatus.FAILED,
            node_key(self.state.run_id, node.id),
            attempt=attempt,
            result=details,
            error=message,
            started_at=started,
        )
        self.journal.event(
            pending, LifecycleEventType.NODE_FAILED, node.id, attempt=attempt, error=message
        )
        if node.continue_on_failure:
            await self.journal.commit(pending)
            return None
        return Ending(EndingKind.FAIL, message, pending, node.id)

    def resolve_wait(
        self, pending: Pending, wait: WaitState, value: Any, *, error: str | None = None
    ) -> Ending | None:
        """Record the answer to ``wait`` (already removed from the run's waits).

        A mid-function wait records the call's answer (the task runs again and
        reads it). An effect node's wait records the node's outcome; answered
        with an error, the node failed, and the run with it unless the node
        says ``continue_on_failure``: then the returned :class:`Ending` must be
        carried out, else ``pending`` is for the caller to commit.
        """
        rid = self.state.run_id
        journal = self.journal
        journal.record(
            pending,
            wait.node_id,
            StepKind.RESUME,
            StepStatus.COMPLETED,
            resume_key(rid, wait.key),
            result={"key": wait.key},
        )
        status = StepStatus.FAILED if error else StepStatus.COMPLETED
        stored = None if error else storable(wait.node_id, value)
        if wait.call_key is not None:
            journal.record(
                pending,
                wait.node_id,
                StepKind.CALL,
                status,
                wait.call_key,
                result=stored,
                error=error,
                name=wait.kind,
            )
            return None
        node = self.ready.node(wait.node_id)
        if error:
            message = f"node '{wait.node_id}': {error}"
            journal.record(
                pending, node.id, StepKind.NODE, status, node_key(rid, node.id), error=message
            )
            journal.event(pending, LifecycleEventType.NODE_FAILED, node.id, error=message)
            if node.continue_on_failure:
                return None
            return Ending(EndingKind.FAIL, message, pending, node.id)
        journal.record(
            pending, node.id, StepKind.NODE, status, node_key(rid, node.id), result=stored
        )
        journal.event(pending, LifecycleEventType.NODE_COMPLETED, node.id)
        return None


#: One handler per kind of outcome (looked up per step: built once, not per run).
_HANDLERS: dict[
    FinishedKind, Callable[[Outcomes, Pending, NodeSpec, int, Finished, bool], Awaitable[Any]]
] = {
    FinishedKind.SKIP: Outcomes._skipped,
    FinishedKind.OK: Outcomes._returned,
    FinishedKind.ERROR: Outcomes._raised,
    FinishedKind.SUSPEND: Outcomes._suspended,
    FinishedKind.EFFECT: Outcomes._decided,
    FinishedKind.OPENED: Outcomes._opened,
}
