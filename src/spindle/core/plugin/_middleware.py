"""Middleware: onion layers around one engine stage, composed once.

Every stage has one calling convention; a layer receives ``call_next`` and
the stage's positional arguments, and may change the arguments, the result,
catch exceptions, or not call ``call_next`` at all (short-circuit)::

    stage      arguments                         returns
    runtime    (runtime, task)                   the payload
    execute    (executor, payload, task)         an Outcome
    effect     (handler, run, effect, ctx)       an EffectOutcome
    node       (task,)                           the node's result value
    run        (run,)                            the RunState after driving

Order: layers are sorted by ``priority`` (lower is *outer*, default 0), ties
kept in configuration order. The composed chain for a stage is built once by
:class:`MiddlewareChains`; with no layers the stage calls its terminal
directly, so an engine without middleware pays nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from attrs import define

from spindle.core.plugin._plugin import Plugin

__all__ = ["STAGES", "CallNext", "Middleware", "MiddlewareChains", "compose"]

STAGES: tuple[str, ...] = ("runtime", "execute", "effect", "node", "run")

#: The next layer (or, innermost, the stage itself) a middleware awaits:
#: ``return await call_next(*args)`` with the stage's arguments, changed or not.
CallNext = Callable[..., Awaitable[Any]]


@define
class Middleware(Plugin, group="middleware"):
    """Base of middleware plugins: an onion layer around one or more stages.

    Subclasses set ``stages`` (a subset of :data:`STAGES`) and implement
    ``async __call__(self, call_next, *args)``. ``priority`` orders layers:
    lower numbers wrap the others.
    """

    stages: ClassVar[frozenset[str]] = frozenset(STAGES)
    priority: int = 0

    async def __call__(self, call_next: CallNext, *args: Any) -> Any:
        """Run this layer; the default passes straight through."""
        return await call_next(*args)


def compose(layers: Sequence[Middleware], terminal: CallNext) -> CallNext:
    """Wrap ``terminal`` in ``layers`` (first = outermost) and return the entry callable."""
    call: CallNext = terminal
    for layer in reversed(layers):
        call = _bind(layer, call)
    return call


def _bind(layer: Middleware, call_next: CallNext) -> CallNext:
    async def step(*args: Any) -> Any:
        return await layer(call_next, *args)

    step.__qualname__ = f"{type(layer).__qualname__}.__call__"
    return step


def _terminal_runtime(runtime: Any, task: Any) -> Awaitable[Any]:
    return runtime._setup_runtime(task)  # type: ignore[no-any-return]


def _terminal_execute(executor: Any, payload: Any, task: Any) -> Awaitable[Any]:
    return executor._execute(payload, task)  # type: ignore[no-any-return]


def _terminal_effect(handler: Any, run: Any, effect: Any, ctx: Any) -> Awaitable[Any]:
    return handler.handle(run, effect, ctx)  # type: ignore[no-any-return]


class MiddlewareChains:
    """The composed chain for every stage, built once from a list of layers.

    ``node`` and ``run`` stages wrap engine internals, so their terminals are
    supplied by the caller through :meth:`wrap`; the plugin stages (runtime,
    execute, effect) dispatch to the plugin instance passed as first argument.
    """

    def __init__(self, layers: Sequence[Middleware] = ()) -> None:
        ordered = sorted(enumerate(layers), key=lambda p: (p[1].priority, p[0]))
        self.layers: list[Middleware] = [m for _, m in ordered]
        self._by_stage: dict[str, list[Middleware]] = {
            s: [m for m in self.layers if s in type(m).stages] for s in STAGES
        }
        self.runtime: CallNext = compose(self._by_stage["runtime"], _terminal_runtime)
        self.execute: CallNext = compose(self._by_stage["execute"], _terminal_execute)
        self.effect: CallNext = compose(self._by_stage["effect"], _terminal_effect)
        #: No layer wraps the runtime (execute) stage: its chain only calls the plugin's
        #: own ``_setup_runtime`` (``_execute``), which the base class then calls directly.
        self.bare_runtime = not self._by_stage["runtime"]
        self.bare_execute = not self._by_stage["execute"]

    def has(self, stage: str) -> bool:
        """Whether any layer wraps ``stage``."""
        return bool(self._by_stage[stage])

    def wrap(self, stage: str, terminal: CallNext) -> CallNext:
        """Compose the layers of ``stage`` around ``terminal`` (call once, keep the result)."""
        return compose(self._by_stage[stage], terminal)


EMPTY_CHAINS = MiddlewareChains()
