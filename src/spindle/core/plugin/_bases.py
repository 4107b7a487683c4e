"""The base classes plugin authors subclass: runtimes, executors, effect handlers.

(Stores live in :mod:`spindle.core.store`, observers and middleware beside
this module; each group base records itself with :class:`Plugin`, so the
registry finds it without importing any of them.)
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, final

from attrs import define, field

from spindle.core.model import EffectAnswer, EffectOutcome
from spindle.core.plugin import _structure  # noqa: F401 - plugin classes need its converter hooks
from spindle.core.plugin._plugin import Plugin

if TYPE_CHECKING:
    from pathlib import Path

    from spindle.core.model import Effect, RunState, WaitState
    from spindle.core.plugin._context import EffectContext, TaskContext
    from spindle.core.workflow import NodeSpec

__all__ = ["EffectHandler", "Executor", "Outcome", "Runtime"]

T = TypeVar("T")


@define
class Outcome:
    """What an executor reports for one payload.

    ``value`` becomes the node's result. ``stdout``/``stderr`` hold the tail
    of the task's output (the full text is kept in the run dir by executors
    that capture it); ``exit_code`` is set for processes.
    """

    value: Any = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    duration: float = 0.0
    details: dict[str, Any] = field(factory=dict)


class Runtime(Plugin, Generic[T], group="runtime"):
    """Prepares a payload of type ``T`` for an executor from a node's task context.

    Implement ``_setup_runtime``; callers use :meth:`setup_runtime`, which runs
    the runtime middleware around it. ``default_executor`` names the executor
    kind used when a node does not choose one. ``check`` reports definition
    problems at load time, before anything runs.
    """

    default_executor: ClassVar[str] = "inline"

    @abc.abstractmethod
    async def _setup_runtime(self, task: TaskContext) -> T:
        """Build the payload for ``task``."""

    @final
    def setup_runtime(self, task: TaskContext) -> Awaitable[T]:
        """Prepare the payload through the runtime middleware chain (await the result).

        The chain's own awaitable is handed back rather than awaited in another
        frame: this runs once per durable step. With no runtime middleware the
        chain is only its terminal, so ``_setup_runtime`` is called here directly.
        """
        chains = task.middleware
        if chains.bare_runtime:
            return self._setup_runtime(task)
        result: Awaitable[T] = chains.runtime(self, task)
        return result

    def implicit_inputs(self, offered: Sequence[str]) -> list[str]:
        """Which of the names ``offered`` this runtime reads without a declared input.

        A map's node is offered ``item`` and ``index``: a runtime that uses one
        of them by name (a command's ``{item}`` placeholder, a Python
        function's ``index`` parameter) says so here, and the node gets that
        input. None by default: the template then passes them through
        ``inputs:`` (``inputs: {x: item}``).
        """
        return []

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Return problems with this runtime's configuration for ``node`` (none by default).

        Args:
            node: the node being loaded.
            available: what a task may refer to: the node's input and output names,
                ``"ctx"``, ``"inputs.NAME"`` for every workflow input, and
                ``"secrets.NAME"`` for every secret one.
        """
        return []

    def executables(self) -> list[str] | None:
        """The programs this runtime starts, for load policies (None: not a process runtime)."""
        return None

    def run_paths(self) -> dict[str, str]:
        """This runtime's options that name a path relative to the run directory.

        Field name to path (``{"cwd": "build"}``), for the options that are set.
        The loader refuses one that leaves the run directory and the engine
        resolves each before the task runs, so a runtime with a working
        directory option lists it here. None by default.
        """
        return {}

    def read_files(self, workflow_dir: Path | None) -> list[Path]:
        """Files this runtime's payload reads whose content its result depends on (the
        script a ``python_script`` node runs): a cached node's fingerprint covers their
        content, so editing one misses the cache. None by default."""
        return []

    def executable_problems(self, node: NodeSpec, allowed: Sequence[str]) -> list[str]:
        """Why this runtime does not only start programs in ``allowed`` (one line each).

        Called at load time when a policy's ``allowed_executables`` is set. The
        default checks each of :meth:`executables`; a runtime that runs a shell
        line overrides it to refuse whatever could start another program
        (compound commands, substitutions, environment and shell overrides).
        """
        shown = ", ".join(allowed) or "none"
        return [
            f"executable '{exe}' is not in the policy's allowed executables ({shown})"
            for exe in self.executables() or ()
            if exe not in allowed
        ]

    def functions(self, resolve: bool = False) -> list[str] | None:
        """The Python callables this runtime calls, as ``module:qualname``, for load policies.

        Args:
            resolve: False: the names as the definition writes them, without
                importing anything. True: where each is defined (``__module__``
                and ``__qualname__`` of the imported object; for an instance, of
                its class), importing it if need be; a name that cannot be
                imported is left out (the load check reports it).

        Returns:
            None when the runtime calls no Python function named by the definition.
            A name the policy must refuse whatever its patterns say (a module that
            would come from the workflow's own directory) is ``"<reason>"``.
        """
        return None


class Executor(Plugin, Generic[T], group="executor"):
    """Executes a payload of type ``T`` somewhere and reports an :class:`Outcome`.

    Implement ``_execute``; callers use :meth:`execute`, which runs the execute
    middleware. ``accepts`` lists payload types this executor can run; the
    engine refuses a node that pairs it with a runtime producing anything else.
    """

    accepts: ClassVar[tuple[type, ...]] = (object,)

    @abc.abstractmethod
    async def _execute(self, payload: T, task: TaskContext) -> Outcome:
        """Run ``payload`` and return its outcome; raise to fail the node."""

    @final
    def execute(self, payload: T, task: TaskContext) -> Awaitable[Outcome]:
        """Run the payload through the execute middleware chain (await the result; the
        chain's awaitable is handed back, and with no execute middleware ``_execute``
        is called directly, as :meth:`Runtime.setup_runtime` does)."""
        chains = task.middleware
        if chains.bare_execute:
            return self._execute(payload, task)
        result: Awaitable[Outcome] = chains.execute(self, payload, task)
        return result

    async def aclose(self) -> None:
        """Release pools or connections; called when the engine closes."""


class EffectHandler(Plugin, group="effect"):
    """Resolves an :class:`Effect` a node requests: now, later (a wait), or never.

    The handler's attrs fields are the effect's options (``prompt``, ``choices``,
    ``key``...). ``handle`` returns an :class:`EffectOutcome`. When the outcome
    is a wait, the classmethod ``accept`` later validates the payload a ``resume`` delivers and
    returns the value to record (raise :class:`~spindle.InvalidAnswer` to refuse it).
    """

    #: Names of string fields that are templates: ``{inputs.NAME}`` (a workflow
    #: input), ``{run.id}`` and ``{NAME}`` (one of the node's own inputs) are
    #: filled in before :meth:`handle` sees them, so every run of one workflow
    #: can wait on its own key (``order-{inputs.order}-paid``). The workflow's
    #: load checks each placeholder names something declared and not secret.
    templates: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Resolve ``effect`` for ``run``."""

    @classmethod
    def answer(cls, wait: WaitState, payload: Any) -> EffectAnswer:
        """Decide what one answer to ``wait`` does: end it, or keep it open.

        The default ends the wait with what :meth:`accept` returns. A handler
        whose wait takes several answers (a quorum, "collect until") overrides
        it and returns :meth:`EffectAnswer.keep_waiting` with its new state
        until the wait is done; ``wait.data`` holds that state between answers.
        Each answer is recorded in the ledger before the next one is read, and
        answers to one run are taken one at a time.

        Raises:
            InvalidAnswer: the payload is refused (nothing is recorded).
        """
        return EffectAnswer.final(cls.accept(wait, payload))

    @classmethod
    def accept(cls, wait: WaitState, payload: Any) -> Any:
        """Validate a resume payload for ``wait`` and return the value to record.

        A classmethod: the wait itself carries what validation needs (``choices``),
        so a run resumed in another process validates without the handler's config.
        """
        return payload

    def check(self, node: NodeSpec) -> list[str]:
        """Return problems with this effect's configuration (none by default)."""
        return []

    def workflow_targets(self) -> dict[str, str]:
        """The workflows this effect starts runs of, by option name (none by default).

        A target ending in ``.yaml``, ``.yml`` or ``.json`` is a file, resolved
        as the run will resolve it (relative to the referring workflow file's
        directory); :func:`~spindle.load_workflow` refuses a file that does not
        exist, so a missing sub-workflow is found before the run starts rather
        than mid-run. Other targets are names the engine knows and are not checked,
        nor is a template option (:attr:`templates`) that holds a placeholder.
        """
        return {}

    def event_keys(self) -> list[str]:
        """The event keys this effect waits on (none by default).

        A finishing run's unsettled-work snapshot counts events delivered under
        these keys that no run consumed (``undelivered_events``).
        """
        return []

    @staticmethod
    def completed(value: Any = None) -> EffectOutcome:
        """Shorthand for :meth:`EffectOutcome.completed`."""
        return EffectOutcome.completed(value)
