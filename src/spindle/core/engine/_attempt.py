"""One attempt of one node: its inputs, its context, its task or its effect.

:meth:`Attempts.run` never raises for what a node does: whatever happens
(a result, an exception, a mid-function effect, an effect's outcome) comes
back as a :class:`Finished` for the outcome handling to record. Nothing
here writes to the store's runs or ledger.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spindle.core.engine._added import check_added
from spindle.core.engine._caching import CachePlan, plan_cache
from spindle.core.engine._finished import Finished, FinishedKind
from spindle.core.engine._results import pick
from spindle.core.engine._steps import AttemptSteps
from spindle.core.errors import SecretUnavailable, StoreError, TaskTimeout
from spindle.core.model import (
    Effect,
    EffectOutcome,
    LifecycleEventType,
    Secrets,
    call_wait_key,
    converter,
    node_key,
)
from spindle.core.plugin import EffectContext, EffectHandler, RunLinks, Suspend, TaskContext
from spindle.core.workflow import fill_templates

if TYPE_CHECKING:
    from pathlib import Path

    from spindle.core.engine._journal import RunJournal
    from spindle.core.engine._ready import ReadySet
    from spindle.core.engine._results import Results
    from spindle.core.engine._services import Services
    from spindle.core.model import RunState
    from spindle.core.workflow import InputSpec, NodeSpec, Workflow

__all__ = ["Attempts", "Finished", "FinishedKind", "LinksFactory"]

#: Builds the ``ctx.runs`` of an effect request: (node, effect key, wait key) -> links.
LinksFactory = Callable[["NodeSpec", str, str], RunLinks]


class Attempts:
    """Runs attempts of the nodes of one run."""

    def __init__(
        self,
        services: Services,
        state: RunState,
        workflow: Workflow,
        ready: ReadySet,
        journal: RunJournal,
        results: Results,
        secrets: Secrets,
        links: LinksFactory,
    ) -> None:
        self.services = services
        self.state = state
        self.wf = workflow
        self.ready = ready
        self.journal = journal
        self.results = results
        self.secrets = secrets
        self._links = links
        self._run_dir: Path | None = None
        self._secret_texts = secrets.texts  # fixed for the run: read once, not per task
        self.inputs_view = {**state.inputs, **secrets.values}
        # One view for every task of the run (it reads inputs_view when asked).
        self._workflow_inputs = _WorkflowInputs(
            self.inputs_view, workflow.inputs, secrets, state.run_id
        )
        self._max_steps = workflow.max_steps or services.limits.max_steps

    @property
    def run_dir(self) -> Path:
        """The run's working directory (the path is built on first need)."""
        if self._run_dir is None:
            self._run_dir = self.services.run_dir(self.state.run_id)
        return self._run_dir

    async def run(self, node_id: str) -> Finished:
        """Attempt ``node_id`` once and report how it ended."""
        ready = self.ready
        node = ready.node(node_id)
        started = datetime.now(UTC)  # utcnow() without its call: once a step
        if ready.failed or ready.skipped or ready.inactive:
            reason = ready.skip_reason(node_id)
            if reason is not None:
                why: dict[str, Any] = {"skipped_by": reason}
                if reason == "failed":
                    why["after"] = ready.ended_badly(node_id)
                return Finished(node_id, FinishedKind.SKIP, started, value=why)
        if (
            node.when is not None
            or node.branch is not None
            or node.map is not None
            or node.loop is not None
            or (ready.listed_by and node_id in ready.listed_by)
        ):
            from spindle.core.engine._control import control_attempt

            decided = await control_attempt(self, node, started)
            if decided is not None:
                return decided
        try:
            inputs = await self.resolve_inputs(node) if node.inputs else {}
        except Exception as exc:
            return Finished(node_id, FinishedKind.ERROR, started, error=exc)
        plan = None
        if node.runtime is not None and (
            node.cache is not None
            or self.wf.cache is not None
            or self.services.cache_default is not None
        ):
            try:
                plan = await self.cache_plan(node, inputs)
            except StoreError:
                raise  # the store failed, not the node: the drive stops, to resume
            except Exception as exc:
                return Finished(node_id, FinishedKind.ERROR, started, error=exc)
            if plan is not None and plan.hit is not None:
                return Finished(
                    node_id, FinishedKind.OK, started, value=plan.hit.result, cached=plan
                )
        if node.effect is not None:
            try:
                handler = fill_templates(node.effect, self.state.run_id, self.state.inputs, inputs)
                params = converter.unstructure(handler)
                params.pop("kind", None)
                effect = Effect(handler.kind_name, params, node_key(self.state.run_id, node_id))
                outcome, links = await self.handle_effect(node, effect, handler, inputs, None)
            except Exception as exc:
                return Finished(node_id, FinishedKind.ERROR, started, error=exc)
            return Finished(
                node_id, FinishedKind.EFFECT, started, effect=effect, outcome=outcome, links=links
            )
        ctx = self.task_context(node, inputs)
        try:
            if node.timeout is None:
                value = await self.services.node_call(ctx)
            else:
                try:
                    async with asyncio.timeout(node.timeout):
                        value = await self.services.node_call(ctx)
                except TimeoutError:
                    raise TaskTimeout(
                        f"node '{node_id}' timed out after {node.timeout:g}s", node_id=node_id
                    ) from None
        except Suspend as s:
            return Finished(node_id, FinishedKind.SUSPEND, started, effect=s.effect, ctx=ctx)
        except Exception as exc:
            steps = ctx.steps
            if isinstance(steps, AttemptSteps) and steps.store_failure is not None:
                # The store failed, not the node: stop the drive (see _steps).
                if exc is steps.store_failure:
                    raise
                raise steps.store_failure from exc
            return Finished(node_id, FinishedKind.ERROR, started, error=exc, ctx=ctx)
        finally:
            if isinstance(ctx.steps, AttemptSteps):
                ctx.steps.close()  # a thread still running it can record nothing more
        # By position (every step ends here): value, error, effect, outcome, ctx, links,
        # via, cached.
        return Finished(
            node_id, FinishedKind.OK, started, value, None, None, None, ctx, None, None, plan
        )

    async def cache_plan(self, node: NodeSpec, inputs: dict[str, Any]) -> CachePlan | None:
        """The node's cache plan (None: not cached); on a hit its output files are written."""
        return await plan_cache(
            self.wf,
            node,
            inputs,
            self.inputs_view,
            self.services.store,
            self.results,
            self.run_dir,
            self.services.cache_default,
        )

    async def announce(self, node_id: str) -> None:
        """Emit ``node_started`` for the attempt about to run.

        Not tied to a commit: after a crash the node starts again and this event
        is sent again (at-least-once), with the same sequence number.
        """
        emitter = self.services.emitter
        if node_id in self.ready.groups:
            return  # a map or loop gathering what it opened: it started already
        if emitter.active:
            event = emitter.build(
                self.state,
                LifecycleEventType.NODE_STARTED,
                node_id,
                node_kind=self.journal.kind_of(node_id),
                attempt=self.journal.attempts.get(node_id, 1),
            )
            await emitter.send([event])

    # --- inputs and contexts ---------------------------------------------------------

    def workflow_input(self, name: str) -> Any:
        """A workflow input's value; a secret not given to this process is an error."""
        return self._workflow_inputs.value(name)

    async def result_of(self, node_id: str) -> Any:
        """A completed node's result, fetched from the artifact store if it was offloaded."""
        return await self.results.fetch(self.ready.results.get(node_id))

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
            out[name] = pick(self.ready.node(head), await self.result_of(head), member or None)
        return out

    def task_context(self, node: NodeSpec, inputs: dict[str, Any]) -> TaskContext:
        """The context a task (its runtime and executor) receives."""
        run_dir = self._run_dir or self.run_dir  # the property's call only the first time
        emitter = self.services.emitter
        outputs: dict[str, Path | None] = {}
        if node.outputs:
            run_dir.mkdir(parents=True, exist_ok=True)  # the task writes its outputs here
            outputs = {
                name: (run_dir / spec.path if spec.path else None)
                for name, spec in node.outputs.items()
            }
        # By position, in the field order (a keyword call matches 18 names a step).
        return TaskContext(
            self.state.run_id,  # run_id
            node.id,  # node_id
            node,  # node
            inputs,  # inputs
            outputs,  # outputs
            run_dir,  # run_dir
            self._workflow_inputs,  # workflow_inputs
            self.journal.attempts.get(node.id, 1),  # attempt
            node.runtime,  # runtime
            node.executor,  # executor
            self.services.chains,  # middleware
            self.wf,  # workflow
            self.journal.calls,  # recorded
            {},  # new_calls
            self._secret_texts,  # secret_values
            AttemptSteps(  # steps
                self.journal,
                self.results,
                node.id,
                self._max_steps,
                self.services.limits.max_inline_sleep,  # inline_sleep
            ),
            functools.partial(check_added, self.ready, self.wf, node.id),  # node_check
            emitter.observers.task_env if emitter.active else None,  # env_source
        )

    async def handle_effect(
        self,
        node: NodeSpec,
        effect: Effect,
        handler: EffectHandler,
        inputs: dict[str, Any],
        call: str | None,
    ) -> tuple[EffectOutcome, RunLinks]:
        """Hand ``effect`` to ``handler`` through the effect middleware; return its outcome
        and the links it could start runs through."""
        wait_key = node.id if call is None else call_wait_key(node.id, call)
        links = self._links(node, effect.key, wait_key)
        ectx = EffectContext(
            links,
            self.services.store,
            self.services.registry,
            node.id,
            node,
            self.wf,
            self.run_dir,
            wait_key,
            call,
            inputs,
        )
        outcome: EffectOutcome = await self.services.chains.effect(
            handler, self.state, effect, ectx
        )
        return outcome, links


class _WorkflowInputs(Mapping[str, Any]):
    """The run's inputs as a task sees them: a secret this process lacks raises.

    It holds what it reads, not the :class:`Attempts`: a reference back would
    close a cycle that leaves each run's objects to the garbage collector.
    """

    def __init__(
        self, view: dict[str, Any], specs: Mapping[str, InputSpec], secrets: Secrets, run_id: str
    ) -> None:
        self._view = view
        self._specs = specs
        self._secrets = secrets
        self._run_id = run_id

    def value(self, name: str) -> Any:
        """A workflow input's value; a secret not given to this process is an error."""
        spec = self._specs.get(name)
        if spec is not None and spec.secret and name not in self._secrets.values:
            raise SecretUnavailable(
                f"secret input '{name}' of run {self._run_id} is not available in this "
                f"process (secrets are never stored); pass it again: spindle resume "
                f"{self._run_id} --input {name}=VALUE"
            )
        return self._view.get(name)

    def __getitem__(self, name: str) -> Any:
        if name not in self._view:
            raise KeyError(name)
        return self.value(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._view)

    def __len__(self) -> int:
        return len(self._view)
