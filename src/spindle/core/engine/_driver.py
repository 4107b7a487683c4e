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
import heapq
import random
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define

from spindle.core.engine._finish import finish_run
from spindle.core.engine._journal import Pending, RunJournal
from spindle.core.errors import SecretUnavailable, SpindleError, TaskError, TaskTimeout
from spindle.core.model import (
    Effect,
    EffectOutcome,
    EffectStatus,
    LifecycleEventType,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
    converter,
    utcnow,
)
from spindle.core.plugin import EffectContext, Suspend, TaskContext

if TYPE_CHECKING:
    from spindle.core.engine._engine import Engine
    from spindle.core.workflow import NodeSpec, Workflow

__all__ = ["RunDriver"]


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


class RunDriver(RunJournal):
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
        super().__init__(engine, state, workflow, token, ledger)
        self.fresh = fresh
        self.inflight: dict[str, asyncio.Task[_Finished]] = {}
        self._finished: asyncio.Queue[asyncio.Task[_Finished]] = asyncio.Queue()
        self.max_steps = workflow.max_steps or engine.settings.max_steps
        self._run_dir: Path | None = None
        self.inputs_view = {**state.inputs, **self.secrets.values}
        self.parked = False

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
        """Pop up to the free concurrency's worth of launchable nodes, in definition order."""
        room = self.engine.settings.concurrency - len(self.inflight)
        out: list[str] = []
        heap, names = self._heap, self._order
        waiting = {w.node_id for w in self.state.waits} if self.state.waits else ()
        while heap and len(out) < room:
            nid = names[heapq.heappop(heap)]
            self._queued.discard(nid)
            # A node may have been queued before it started waiting or finished; a
            # waiting node is queued again when its wait ends.
            if nid in self.inflight or nid in waiting or self._done(nid):
                continue
            out.append(nid)
        return out

    async def _launch(self, ready: list[str]) -> None:
        for nid in ready:
            task = asyncio.ensure_future(self._attempt(nid))
            task.add_done_callback(self._finished.put_nowait)
            self.inflight[nid] = task
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
        # Finished attempts arrive through a queue (their done-callback puts them
        # there): asyncio.wait over every in-flight task would cost O(in flight)
        # callbacks per step, which dominates a wide fan-out.
        task = await self._finished.get()
        while task.cancelled():
            task = await self._finished.get()
        finished = task.result()
        del self.inflight[finished.node_id]
        return finished

    async def _cancel_inflight(self) -> None:
        tasks = list(self.inflight.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.inflight.clear()
        self._finished = asyncio.Queue()  # forget the cancelled attempts

    # --- one node attempt ------------------------------------------------------------

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
        await self._act(f)
        if not self._done(f.node_id) and not any(w.node_id == f.node_id for w in self.state.waits):
            self.requeue(f.node_id)  # e.g. its mid-function effect was answered at once

    async def _act(self, f: _Finished) -> None:
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
        pending: Pending,
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

    async def _node_error(
        self, pending: Pending, node: NodeSpec, attempt: int, error: BaseException, f: _Finished
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

    async def _park(self, pending: Pending, node: NodeSpec, message: str) -> None:
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

    async def fail_run(self, message: str, pending: Pending | None = None) -> None:
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
