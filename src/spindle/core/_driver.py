"""Driving one run through its graph: the durable step loop.

A :class:`RunDriver` replays the run's ledger once (which nodes completed,
which calls are answered, how many attempts each node used), then loops:
launch ready nodes up to the concurrency limit, take the next finished one,
**commit its outcome** (ledger records + run state, one transaction), and
only then act on it (emit events, launch dependants). Timers due soon
(retry backoffs, short ``wait_until``) are awaited in-process; anything
longer leaves the run ``waiting`` for a worker or ``spindle resume``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle.core._context import EffectContext, Suspend, TaskContext
from spindle.core._converter import converter
from spindle.core._finish import finish_run
from spindle.core._ledger import chain, normalize_result
from spindle.core._models import (
    Effect,
    EffectOutcome,
    EffectStatus,
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
    utcnow,
)
from spindle.core._store import Commit
from spindle.core.errors import SecretUnavailable, SpindleError, TaskError, TaskTimeout

if TYPE_CHECKING:
    from spindle.core._engine import Engine
    from spindle.core._workflow import NodeSpec, Workflow

__all__ = ["RunDriver"]

_ARTIFACT = "$artifact"


@define
class _Finished:
    """What one node attempt produced, before it is committed."""

    node_id: str
    kind: str  # "ok" | "suspend" | "error" | "effect"
    value: Any = None
    error: BaseException | None = None
    effect: Effect | None = None
    outcome: EffectOutcome | None = None
    ctx: TaskContext | None = None
    started_at: Any = None


@define
class _Pending:
    """Records, consumed events and events that one commit writes and then emits.

    ``light`` marks a commit that changed nothing in the run state but its counters
    (a node completed); ``release`` gives the lease up in the same transaction.
    """

    records: list[StepRecord] = field(factory=list)
    consume: list[str] = field(factory=list)
    events: list[RunLifecycleEvent | None] = field(factory=list)
    light: bool = False
    release: bool = False


class RunDriver:
    """Advances one run until it completes, fails, waits or is cancelled."""

    def __init__(
        self,
        engine: Engine,
        state: RunState,
        workflow: Workflow,
        token: int | None,
        ledger: list[StepRecord],
        *,
        fresh: bool = False,
    ) -> None:
        self.engine = engine
        self.fresh = fresh
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
        self.inflight: dict[str, asyncio.Task[_Finished]] = {}
        self.max_steps = workflow.max_steps or engine.settings.max_steps
        self._run_dir: Path | None = None
        self.secrets = engine.secrets_of(state.run_id)
        self.inputs_view = {**state.inputs, **self.secrets.values}
        self._order = workflow.order()
        self._position = {n: i for i, n in enumerate(self._order)}
        self._deps = {n: workflow.dependencies(n) for n in self._order}
        self._dependants: dict[str, list[str]] = {n: [] for n in self._order}
        for n, deps in self._deps.items():
            for d in deps:
                self._dependants[d].append(n)
        for rec in ledger:
            self._replay(rec)
        # Ready-set bookkeeping is incremental (a counter of unfinished dependencies per
        # node) so a step costs O(dependants), not a scan of the whole graph. A node stays
        # queued until it is done, so a node that waited or awaits a retry runs again once
        # its wait is gone.
        self._remaining = {
            n: sum(1 for d in deps if not self._done(d)) for n, deps in self._deps.items()
        }
        self._persisted_status = state.status
        self.released = False
        self.parked = False
        self._undone = sum(1 for n in self._order if not self._done(n))
        self._carry: _Pending | None = None
        self._queue: set[str] = {
            n for n, left in self._remaining.items() if left == 0 and not self._done(n)
        }

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
            if not was_done and hasattr(self, "_remaining"):
                self._undone -= 1
                self._queue.discard(rec.node_id)
                for dep in self._dependants.get(rec.node_id, ()):
                    self._remaining[dep] -= 1
                    if self._remaining[dep] == 0:
                        self._queue.add(dep)
        elif rec.kind == StepKind.CALL:
            self.calls[rec.idempotency_key] = rec
        elif rec.kind == StepKind.RETRY:
            self.attempts[rec.node_id] = rec.attempt + 1

    def _done(self, node_id: str) -> bool:
        return node_id in self.results or node_id in self.failed or node_id in self.skipped

    # --- committing ----------------------------------------------------------------

    def record(
        self,
        pending: _Pending,
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

    def pending(self) -> _Pending:
        """A batch to add records to: the deferred one if any, else a new one."""
        carry, self._carry = self._carry, None
        return carry if carry is not None else _Pending()

    def defer(self, pending: _Pending) -> None:
        """Keep ``pending`` for the next commit instead of writing it now.

        Only for changes nothing acts on before that commit: the run's status at
        the start of a drive, and a last node's record when the run finishes next.
        The bookkeeping is applied now so the finish can read the result.
        """
        for rec in pending.records:
            self._replay(rec)
        self._carry = pending

    async def commit(self, pending: _Pending, *, create: bool = False) -> None:
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
        pending: _Pending,
        type_: LifecycleEventType,
        node_id: str | None = None,
        **payload: Any,
    ) -> None:
        """Queue an event to emit once ``pending`` is committed."""
        if self.engine.emitter.active:
            if self.secrets:
                payload = self.secrets.scrub(payload)
            pending.events.append(self.engine.emitter.build(self.state, type_, node_id, **payload))

    # --- the loop ------------------------------------------------------------------

    async def drive(self) -> RunState:
        """Run until nothing more can happen now; return the run's state."""
        if self.fresh or self.state.status in (RunStatus.PENDING, RunStatus.WAITING):
            pending = self.pending()
            first = self.fresh or self.state.status == RunStatus.PENDING
            self.state.status = RunStatus.RUNNING
            self.state.error = None  # a parked run's reason no longer holds
            if self.engine.emitter.active:
                self.event(
                    pending,
                    LifecycleEventType.RUN_STARTED if first else LifecycleEventType.RUN_RESUMED,
                )
                await self.commit(pending)
            else:
                # Nobody hears about the transition, so it rides with the first real
                # commit (one transaction less per drive); a crash before then leaves
                # the run pending, which resumes the same way.
                self.defer(pending)
        try:
            while True:
                if self.state.status.terminal or self.parked:
                    return self.state
                if self.count >= self.max_steps:
                    await self.fail_run(
                        f"run exceeded max_steps={self.max_steps} ledger records (a runaway "
                        f"loop?); raise max_steps in spindle.toml or the workflow if this is "
                        f"expected"
                    )
                    return self.state
                ready = self._ready()
                if len(ready) == 1 and not self.inflight:
                    # The sequential case: run the one ready node without a Task, which
                    # saves a scheduling round trip per step.
                    await self._started(ready[0])
                    await self._handle(await self._attempt(ready[0]))
                    continue
                await self._launch(ready)
                if not self.inflight:
                    if await self._fire_due_timers():
                        continue
                    if self.state.waits:
                        return await self._suspend()
                    await self._finish()
                    return self.state
                finished = await self._next_finished()
                await self._handle(finished)
        except BaseException:
            await self._cancel_inflight()
            raise

    def _ready(self) -> list[str]:
        if not self._queue:
            return []
        waiting = {w.node_id for w in self.state.waits}
        out = [
            n
            for n in self._queue
            if n not in self.inflight and n not in waiting and not self._done(n)
        ]
        if len(out) > 1:
            out.sort(key=self._position.__getitem__)
        return out

    async def _launch(self, ready: list[str]) -> None:
        limit = self.engine.settings.concurrency
        for nid in ready:
            if len(self.inflight) >= limit:
                break
            self.inflight[nid] = asyncio.ensure_future(self._attempt(nid))
            await self._started(nid)

    async def _started(self, node_id: str) -> None:
        emitter = self.engine.emitter
        if emitter.active:
            # Not tied to a commit: after a crash the node starts again and this event
            # is sent again (at-least-once), with the same sequence number.
            event = emitter.build(
                self.state,
                LifecycleEventType.NODE_STARTED,
                node_id,
                attempt=self.attempts.get(node_id, 1),
            )
            await emitter.send([event])

    async def _next_finished(self) -> _Finished:
        if len(self.inflight) == 1:
            ((nid, task),) = self.inflight.items()
            result = await task
            del self.inflight[nid]
            return result
        done, _ = await asyncio.wait(self.inflight.values(), return_when=asyncio.FIRST_COMPLETED)
        task = next(iter(done))
        for nid, t in list(self.inflight.items()):
            if t is task:
                del self.inflight[nid]
        return task.result()

    async def _cancel_inflight(self) -> None:
        tasks = list(self.inflight.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.inflight.clear()

    # --- one node attempt ------------------------------------------------------------

    async def result_of(self, node_id: str) -> Any:
        """A completed node's result, fetched from the artifact store if it was offloaded."""
        result = self.results.get(node_id)
        if isinstance(result, dict) and len(result) == 1 and _ARTIFACT in result:
            data = await self.store.get_artifact(result[_ARTIFACT]["digest"])
            result = json.loads(data)
        return result

    def workflow_input(self, name: str) -> Any:
        """A workflow input's value; a secret not given to this process is an error."""
        spec = self.wf.inputs.get(name)
        if spec is not None and spec.secret and name not in self.secrets.values:
            raise SecretUnavailable(
                f"secret input '{name}' of run {self.state.run_id} is not available in this "
                f"process (secrets are never stored); pass it again: spindle resume "
                f"{self.state.run_id} --input {name}=VALUE"
            )
        return self.inputs_view.get(name)

    async def resolve_inputs(self, node: NodeSpec) -> dict[str, Any]:
        """The node's ``inputs`` mapping with every reference replaced by its value."""
        out: dict[str, Any] = {}
        for name, ref in node.inputs.items():
            if isinstance(ref, dict):
                out[name] = ref.get("value")
                continue
            head, _, member = ref.partition(".")
            if head == "inputs":
                out[name] = self.workflow_input(member)
                continue
            out[name] = _pick(self.wf.nodes[head], await self.result_of(head), member or None)
        return out

    def _task_context(self, node: NodeSpec, inputs: dict[str, Any]) -> TaskContext:
        run_dir = self._run_dir
        if run_dir is None:
            run_dir = self._run_dir = self.engine.run_dir(self.state.run_id)
        if node.outputs:
            run_dir.mkdir(parents=True, exist_ok=True)  # the task writes its outputs here
        outputs = {
            name: (run_dir / spec.path if spec.path else None)
            for name, spec in node.outputs.items()
        }
        return TaskContext(
            run_id=self.state.run_id,
            node_id=node.id,
            node=node,
            inputs=inputs,
            outputs=outputs,
            run_dir=run_dir,
            workflow_inputs=_WorkflowInputs(self),
            secret_values=self.secrets.texts,
            attempt=self.attempts.get(node.id, 1),
            runtime=node.runtime,
            executor=node.executor,
            middleware=self.engine.chains,
            workflow=self.wf,
            recorded=self.calls,
        )

    async def _attempt(self, node_id: str) -> _Finished:
        node = self.wf.nodes[node_id]
        started = utcnow()
        if any(d in self.failed or d in self.skipped for d in self._deps[node_id]):
            return _Finished(node_id, "skip", started_at=started)
        try:
            inputs = await self.resolve_inputs(node)
        except Exception as exc:
            return _Finished(node_id, "error", error=exc, started_at=started)
        if node.effect is not None:
            params = converter.unstructure(node.effect)
            params.pop("kind", None)
            effect = Effect(node.effect.kind_name, params, f"{self.state.run_id}:{node_id}")
            try:
                outcome = await self._handle_effect(
                    node, effect, node.effect, inputs, call_key=None
                )
            except Exception as exc:
                return _Finished(node_id, "error", error=exc, started_at=started)
            return _Finished(node_id, "effect", effect=effect, outcome=outcome, started_at=started)
        ctx = self._task_context(node, inputs)
        try:
            if node.timeout is not None:
                try:
                    async with asyncio.timeout(node.timeout):
                        value = await self.engine.node_call(ctx)
                except TimeoutError:
                    raise TaskTimeout(
                        f"node '{node_id}' timed out after {node.timeout:g}s", node_id=node_id
                    ) from None
            else:
                value = await self.engine.node_call(ctx)
        except Suspend as s:
            return _Finished(node_id, "suspend", effect=s.effect, ctx=ctx, started_at=started)
        except Exception as exc:
            return _Finished(node_id, "error", error=exc, ctx=ctx, started_at=started)
        return _Finished(node_id, "ok", value=value, ctx=ctx, started_at=started)

    async def _handle_effect(
        self,
        node: NodeSpec,
        effect: Effect,
        handler: Any,
        inputs: dict[str, Any],
        call_key: str | None,
    ) -> EffectOutcome:
        wait_key = node.id if call_key is None else f"{node.id}.{call_key.rsplit(':', 1)[-1]}"
        ectx = EffectContext(
            self.engine,
            self.store,
            self.engine.registry,
            node.id,
            node,
            self.wf,
            self.engine.run_dir(self.state.run_id),
            wait_key,
            call_key,
            inputs,
        )
        outcome: EffectOutcome = await self.engine.chains.effect(handler, self.state, effect, ectx)
        return outcome

    # --- acting on outcomes ------------------------------------------------------------

    async def _handle(self, f: _Finished) -> None:
        node = self.wf.nodes[f.node_id]
        attempt = self.attempts.get(f.node_id, 1)
        pending = self.pending()
        if f.ctx is not None:
            for key, value in f.ctx.new_calls.items():
                self.record(
                    pending,
                    f.node_id,
                    StepKind.CALL,
                    StepStatus.COMPLETED,
                    key,
                    attempt=attempt,
                    result=self._storable(f.node_id, value),
                )
        if f.kind == "skip":
            self.record(
                pending,
                f.node_id,
                StepKind.NODE,
                StepStatus.SKIPPED,
                f"{self.state.run_id}:{f.node_id}",
                started_at=f.started_at,
            )
            await self.commit(pending)
        elif f.kind == "ok":
            try:
                result = await self._node_result(node, f)
            except Exception as exc:
                await self._node_error(pending, node, attempt, exc, f)
                return
            self.record(
                pending,
                f.node_id,
                StepKind.NODE,
                StepStatus.COMPLETED,
                f"{self.state.run_id}:{f.node_id}",
                attempt=attempt,
                result=result,
                started_at=f.started_at,
            )
            self.event(pending, LifecycleEventType.NODE_COMPLETED, f.node_id, attempt=attempt)
            pending.light = True
            if (
                self._undone == 1
                and not self.inflight
                and not self.state.waits
                and (not self.engine.has_finish_hooks)
            ):
                # The run's last node: its record and the run's end commit together.
                self.defer(pending)
            else:
                await self.commit(pending)
        elif f.kind == "error":
            assert f.error is not None
            await self._node_error(pending, node, attempt, f.error, f)
        elif f.kind == "suspend":
            assert f.effect is not None and f.ctx is not None
            try:
                handler = self.engine.registry.create(
                    "effect",
                    {"kind": f.effect.kind, **f.effect.params},
                    path=f"nodes.{f.node_id} (ctx.{f.effect.kind})",
                )
                outcome = await self._handle_effect(
                    node, f.effect, handler, f.ctx.inputs, call_key=f.effect.key
                )
            except Exception as exc:
                await self._node_error(pending, node, attempt, exc, f)
                return
            await self._effect_outcome(pending, node, f, outcome, call_key=f.effect.key)
        elif f.kind == "effect":
            assert f.outcome is not None
            await self._effect_outcome(pending, node, f, f.outcome, call_key=None)

    async def _effect_outcome(
        self,
        pending: _Pending,
        node: NodeSpec,
        f: _Finished,
        outcome: EffectOutcome,
        call_key: str | None,
    ) -> None:
        attempt = self.attempts.get(node.id, 1)
        node_key = f"{self.state.run_id}:{node.id}"
        if outcome.consumed_event_id:
            pending.consume.append(outcome.consumed_event_id)
        if outcome.status == EffectStatus.COMPLETED:
            value = self._storable(node.id, outcome.value)
            if call_key is None:
                self.record(
                    pending,
                    node.id,
                    StepKind.NODE,
                    StepStatus.COMPLETED,
                    node_key,
                    attempt=attempt,
                    result=value,
                    started_at=f.started_at,
                )
                self.event(pending, LifecycleEventType.NODE_COMPLETED, node.id)
            else:
                self.record(
                    pending,
                    node.id,
                    StepKind.CALL,
                    StepStatus.COMPLETED,
                    call_key,
                    attempt=attempt,
                    result=value,
                )
            await self.commit(pending)
        elif outcome.status == EffectStatus.WAITING:
            wait = outcome.wait
            assert wait is not None
            wait.node_id = node.id
            wait.call_key = call_key
            if wait.kind is None and f.effect is not None:
                wait.kind = f.effect.kind
            self.state.waits.append(wait)
            self.record(
                pending,
                node.id,
                StepKind.WAIT,
                StepStatus.WAITING,
                call_key or node_key,
                attempt=attempt,
                result={"key": wait.key, "reason": wait.reason.value},
            )
            await self.commit(pending)
        else:
            error = TaskError(f"node '{node.id}': {outcome.error}", node_id=node.id)
            await self._node_error(pending, node, attempt, error, f)

    async def _node_result(self, node: NodeSpec, f: _Finished) -> Any:
        value = self._storable(node.id, f.value)
        if node.outputs:
            assert f.ctx is not None
            outputs = await self.engine.tasks.collect_outputs(
                self.state.run_id, node, f.ctx, f.value
            )
            value = {"value": value, "outputs": outputs}
        return await self._offload(node.id, value)

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
        return {_ARTIFACT: {"digest": ref.digest, "size": ref.size}}

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

    async def _node_error(
        self, pending: _Pending, node: NodeSpec, attempt: int, error: BaseException, f: _Finished
    ) -> None:
        message = _describe(node.id, error)
        if isinstance(error, SecretUnavailable):
            await self._park(pending, node, message)
            return
        policy = node.retry
        mro = [c.__qualname__ for c in type(error).__mro__]
        mro += [f"{c.__module__}.{c.__qualname__}" for c in type(error).__mro__]
        if (
            policy is not None
            and attempt < policy.max_attempts
            and policy.retries(type(error).__name__, mro)
        ):
            delay = policy.delay(attempt, random.random())
            due = utcnow() + timedelta(seconds=delay)
            self.record(
                pending,
                node.id,
                StepKind.RETRY,
                StepStatus.FAILED,
                f"{self.state.run_id}:{node.id}:attempt{attempt}",
                attempt=attempt,
                error=message,
                started_at=f.started_at,
            )
            self.state.waits.append(
                WaitState(f"{node.id}:retry{attempt + 1}", WaitReason.RETRY, node.id, due_at=due)
            )
            self.event(
                pending,
                LifecycleEventType.NODE_RETRYING,
                node.id,
                attempt=attempt,
                error=message,
                delay=delay,
            )
            await self.commit(pending)
            return
        self.record(
            pending,
            node.id,
            StepKind.NODE,
            StepStatus.FAILED,
            f"{self.state.run_id}:{node.id}",
            attempt=attempt,
            error=message,
            started_at=f.started_at,
        )
        self.event(pending, LifecycleEventType.NODE_FAILED, node.id, attempt=attempt, error=message)
        if node.continue_on_failure:
            await self.commit(pending)
            return
        await self._cancel_inflight()
        await self.fail_run(message, pending)

    # --- waits and timers -------------------------------------------------------------

    async def _fire_due_timers(self) -> bool:
        timers = [w for w in self.state.waits if w.due_at is not None]
        if not timers:
            return False
        wait = min(timers, key=lambda w: w.due_at)  # type: ignore[arg-type,return-value]
        assert wait.due_at is not None
        delay = (wait.due_at - utcnow()).total_seconds()
        if delay > self.engine.settings.max_inline_sleep:
            return False
        if delay > 0:
            await asyncio.sleep(delay)
        await self.fire_timer(wait)
        return True

    async def fire_timer(self, wait: WaitState) -> None:
        """Resolve a due timer wait: a retry becomes runnable, a sleep completes, an event
        wait times out."""
        pending = self.pending()
        self.state.waits = [w for w in self.state.waits if w.key != wait.key]
        if wait.reason == WaitReason.RETRY:
            await self.commit(pending)
            return
        if wait.reason == WaitReason.EVENT:
            error = f"timed out waiting for event '{wait.event_key}'"
            self.resolve_wait(pending, wait, None, error=error)
        else:
            self.resolve_wait(pending, wait, wait.due_at.isoformat() if wait.due_at else None)
        await self.commit(pending)

    def resolve_wait(
        self, pending: _Pending, wait: WaitState, value: Any, *, error: str | None = None
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

    async def _park(self, pending: _Pending, node: NodeSpec, message: str) -> None:
        """Stop without failing: the run waits until it is resumed with what it lacks."""
        await self._cancel_inflight()
        self.state.status = RunStatus.WAITING
        self.state.error = self.secrets.scrub(message)
        self.event(pending, LifecycleEventType.RUN_WAITING, node.id, waits=[], reason=message)
        pending.release = True
        await self.commit(pending)
        self.parked = True

    async def _suspend(self) -> RunState:
        pending = self.pending()
        self.state.status = RunStatus.WAITING
        first = self.state.waits[0]
        self.event(
            pending,
            LifecycleEventType.RUN_WAITING,
            first.node_id,
            waits=[w.key for w in self.state.waits],
        )
        pending.release = True
        await self.commit(pending)
        return self.state

    # --- ending --------------------------------------------------------------------

    async def output(self) -> Any:
        """The run's output: the ``output`` node's result (or ``NODE.OUTPUT``), else leaves."""
        if self.wf.output:
            head, _, member = self.wf.output.partition(".")
            return _pick(self.wf.nodes[head], await self.result_of(head), member or None)
        dependants = {d for deps in self._deps.values() for d in deps}
        leaves = [n for n in self._order if n not in dependants and n in self.results]
        return {n: _pick(self.wf.nodes[n], await self.result_of(n), None) for n in leaves}

    async def _finish(self) -> None:
        pending = self.pending()
        if self.failed and not all(self.wf.nodes[n].continue_on_failure for n in self.failed):
            await self.fail_run("a node failed", pending)
            return
        await finish_run(self.engine, self, pending)

    async def fail_run(self, message: str, pending: _Pending | None = None) -> None:
        """End the run as failed with ``message`` (committed with ``pending``)."""
        pending = pending or self.pending()
        self.state.status = RunStatus.FAILED
        self.state.error = self.secrets.scrub(message)
        self.state.waits = []
        self.record(
            pending, "", StepKind.RUN, StepStatus.FAILED, f"{self.state.run_id}:run", error=message
        )
        self.event(pending, LifecycleEventType.RUN_FAILED, error=message)
        pending.release = True
        await self.commit(pending)
        await self.engine.after_terminal(self.state)


class _WorkflowInputs(Mapping[str, Any]):
    """The run's inputs as a task sees them: a secret this process lacks raises."""

    def __init__(self, driver: RunDriver) -> None:
        self._driver = driver

    def __getitem__(self, name: str) -> Any:
        if name not in self._driver.inputs_view:
            raise KeyError(name)
        return self._driver.workflow_input(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._driver.inputs_view)

    def __len__(self) -> int:
        return len(self._driver.inputs_view)


def _pick(node: NodeSpec, result: Any, member: str | None) -> Any:
    """What a reference to ``node`` (or ``node.member``) resolves to, given its result."""
    if not node.outputs or not isinstance(result, dict):
        return result
    if member:
        return result.get("outputs", {}).get(member)
    return result.get("value")


def _describe(node_id: str, error: BaseException) -> str:
    if isinstance(error, SpindleError):
        text = str(error)
        return text if node_id in text else f"node '{node_id}': {text}"
    return f"node '{node_id}' failed: {type(error).__name__}: {error}"
