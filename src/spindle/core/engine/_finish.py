"""The finish lifecycle: the unsettled-work snapshot, the ``spindle_on_finish`` chain,
and the commit that ends a run with no node left."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any

from spindle.core.engine._results import storable
from spindle.core.errors import HookError
from spindle.core.model import (
    AuditEntry,
    HandoffEnvelope,
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    RunStatus,
    StepKind,
    StepStatus,
    UnsettledWork,
    WaitReason,
    follow_on_run_id,
    is_plain_json,
    run_key,
    utcnow,
)

if TYPE_CHECKING:
    import pluggy

    from spindle.core.engine._events import EventEmitter
    from spindle.core.engine._journal import Pending, RunJournal
    from spindle.core.engine._services import Services
    from spindle.core.store import Store

__all__ = ["FinishingRun", "finish_run", "run_finish_hooks", "snapshot_unsettled"]


class _Deferred(Awaitable[Any]):
    """A write a hook asked for: awaited by the hook, or by the engine when it returns.

    A plain (non-async) hook that calls ``run.audit(...)`` without ``await``
    would otherwise drop the entry with only a "never awaited" warning.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.started = False

    def __await__(self) -> Generator[Any, None, Any]:
        self.started = True
        return self.coro.__await__()


class FinishingRun:
    """What a ``spindle_on_finish`` implementation may act on.

    Attributes:
        state: the run's state (read it; change it only through the methods).
        output: the output as the previous hook left it.
    """

    def __init__(self, state: RunState, output: Any, store: Store, emitter: EventEmitter) -> None:
        self.state = state
        self.output = output
        self._store = store
        self._emitter = emitter
        self.handoffs: list[HandoffEnvelope] = []
        self.events: list[RunLifecycleEvent | None] = []
        self.fail_reason: str | None = None
        self.source = ""
        self._deferred: list[_Deferred] = []

    @property
    def run_id(self) -> str:
        """The finishing run's id."""
        return self.state.run_id

    def audit(self, message: str, **data: Any) -> Awaitable[AuditEntry]:
        """Persist an audit entry (per-run monotonic ``seq``) and emit an ``audit`` event.

        Await it in an async hook; a plain hook may call it without ``await``
        and the entry is written when the hook returns, in call order.
        """
        return self._defer(self._audit(message, data))

    def handoff(self, target: str, payload: Any = None) -> Awaitable[HandoffEnvelope]:
        """Persist an envelope; the engine starts ``target`` with ``payload`` after finishing.

        Like :meth:`audit`, awaiting it is optional.
        """
        return self._defer(self._handoff(target, payload))

    def _defer(self, coro: Coroutine[Any, Any, Any]) -> _Deferred:
        step = _Deferred(coro)
        self._deferred.append(step)
        return step

    async def settle(self) -> None:
        """Write what the last hook asked for and did not await."""
        steps, self._deferred = self._deferred, []
        for step in steps:
            if not step.started:
                await step

    async def _audit(self, message: str, data: dict[str, Any]) -> AuditEntry:
        self.state.audit_seq += 1
        entry = AuditEntry(
            self.state.run_id, self.state.audit_seq, message, dict(data), self.source, utcnow()
        )
        await self._store.append_audit(entry)
        self.events.append(
            self._emitter.build(
                self.state,
                LifecycleEventType.AUDIT,
                message=message,
                seq=entry.seq,
                data=dict(data),
            )
        )
        return entry

    async def _handoff(self, target: str, payload: Any) -> HandoffEnvelope:
        env = HandoffEnvelope(uuid.uuid4().hex, self.state.run_id, target, payload, utcnow())
        await self._store.put_handoff(env)
        self.handoffs.append(env)
        return env

    def set_disposition(self, disposition: str, *, fail: bool = False) -> None:
        """Label how the run ended (kept on the run); ``fail=True`` ends it as failed."""
        self.state.disposition = disposition
        if fail:
            self.fail_reason = f"disposition '{disposition}' set by {self.source or 'a hook'}"


async def snapshot_unsettled(
    state: RunState, store: Store, in_flight: list[str], event_keys: Iterable[str] = ()
) -> UnsettledWork:
    """Collect what is still outstanding for a finishing run.

    ``event_keys`` are the keys the workflow's ``wait_event`` nodes listen on:
    events delivered under them that no run consumed count as undelivered.
    """
    children = [
        r.run_id for r in await store.list_runs(parent_run_id=state.run_id) if not r.status.terminal
    ]
    timers = [w for w in state.waits if w.reason in (WaitReason.TIMER, WaitReason.RETRY)]
    keys = {w.event_key for w in state.waits if w.event_key} | set(event_keys)
    undelivered = [
        e.event_id
        for k in sorted(keys)
        for e in await store.pending_events(k, for_run=state.run_id)
    ]
    handoffs = [h.envelope_id for h in await store.handoffs(state.run_id, open_only=True)]
    return UnsettledWork(children, timers, undelivered, list(in_flight), handoffs)


async def run_finish_hooks(
    pm: pluggy.PluginManager, finishing: FinishingRun, unsettled: UnsettledWork
) -> Any:
    """Call each ``spindle_on_finish`` implementation in pluggy order, chaining the output.

    Raises:
        HookError: an implementation raised; the message names its plugin.
    """
    for impl in pm.hook.spindle_on_finish.get_hookimpls()[::-1]:
        finishing.source = impl.plugin_name
        failure: Exception | None = None
        try:
            offered = {"run": finishing, "output": finishing.output, "unsettled": unsettled}
            # pluggy lets an implementation accept a subset of the spec's arguments.
            result = impl.function(**{k: offered[k] for k in impl.argnames})
            if hasattr(result, "__await__"):
                result = await result
        except Exception as exc:
            failure = exc
        try:  # what it asked for before it raised is written too
            await finishing.settle()
        except Exception as exc:
            failure = failure or exc
        if failure is not None:
            raise HookError(
                f"on_finish hook '{impl.plugin_name}' failed: {type(failure).__name__}: {failure}"
            ) from failure
        if result is not None:
            finishing.output = result
    finishing.source = ""
    return finishing.output


def final_status(finishing: FinishingRun) -> RunStatus:
    """The status a finishing run ends with, after its hooks."""
    return RunStatus.FAILED if finishing.fail_reason else RunStatus.COMPLETED


async def finish_run(
    services: Services,
    journal: RunJournal,
    pending: Pending,
    output: Any,
    *,
    in_flight: list[str],
    event_keys: Iterable[str],
) -> list[HandoffEnvelope]:
    """Run the finish lifecycle of a run with no node left, and commit its end.

    Returns the handoff envelopes the hooks created, for the engine to take up
    once the end is committed (their ``handoff_created`` events ride with it).

    Raises:
        HookError: a hook raised; ``pending`` then holds what the hooks had
            emitted, for the caller to fail the run with.
    """
    state = journal.state
    finishing = FinishingRun(state, output, services.store, services.emitter)
    try:
        if services.has_finish_hooks:
            # A finish that crashed after writing audit entries runs again: number
            # the new entries after the ones already kept.
            kept = await services.store.audit(state.run_id)
            if kept:
                state.audit_seq = max(state.audit_seq, kept[-1].seq)
            unsettled = await snapshot_unsettled(state, services.store, in_flight, event_keys)
            output = await run_finish_hooks(services.pm, finishing, unsettled)
    except HookError:
        raise
    except Exception as exc:  # reading the audit trail or the snapshot failed
        raise HookError(str(exc)) from exc
    finally:
        pending.events.extend(finishing.events)
    status = final_status(finishing)
    state.output = journal.secrets.scrub(output)
    state.status = status
    if status == RunStatus.FAILED:
        state.error = finishing.fail_reason
    journal.record(
        pending,
        "",
        StepKind.RUN,
        StepStatus.COMPLETED if status == RunStatus.COMPLETED else StepStatus.FAILED,
        run_key(state.run_id),
        # The output is made of recorded results, already what the ledger holds, unless
        # a hook changed it: plain JSON data needs no round trip to be recorded.
        result=output if is_plain_json(output) else storable("", output),
        error=state.error,
    )
    for env in finishing.handoffs:
        journal.event(
            pending,
            LifecycleEventType.HANDOFF_CREATED,
            envelope_id=env.envelope_id,
            target=env.target,
            follow_on_run_id=follow_on_run_id(env.envelope_id),
        )
    journal.event(
        pending,
        LifecycleEventType.RUN_COMPLETED
        if status == RunStatus.COMPLETED
        else LifecycleEventType.RUN_FAILED,
    )
    pending.release = True
    await journal.commit(pending)
    return finishing.handoffs
