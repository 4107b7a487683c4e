"""Observers: read-only listeners for lifecycle events.

Anything with ``async on_event(event)`` is a :class:`RunObserver`; a plain
function (sync or async) taking the event is accepted too
(:func:`ensure_observer`). :class:`CompositeObserver` fans one event out to
many bindings: a *required* observer's failure propagates to the engine
(which records it and fails the operation); an optional one's failure is
logged with the observer's name and the event type, and dispatch continues.

Two optional methods let an observer that follows runs across processes (a
tracer) give something back, without the engine knowing what it is:

* ``run_labels(event, workflow, labels) -> Mapping[str, str]`` is called when
  a ``run_started`` or ``run_resumed`` event is built, *before* the commit it
  belongs to, with the run's stored labels; what it returns is merged into the
  run's labels and written in that same commit (the ``otel`` observer keeps the
  run span's trace context there, so a resume in another process continues the
  trace).
* ``task_env(run_id, node_id) -> Mapping[str, str]`` is asked when a task's
  executor starts another process for the node (``subprocess``,
  ``process_pool``, ``dask``): the variables it returns are put in that
  process's environment (the ``otel`` observer returns ``TRACEPARENT``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from attrs import define, field

from spindle.core.model import RunLifecycleEvent
from spindle.core.plugin._plugin import Plugin

__all__ = [
    "CallbackObserver",
    "CompositeObserver",
    "NullObserver",
    "ObserverBinding",
    "ObserverPlugin",
    "RunObserver",
    "ensure_observer",
]

log = logging.getLogger("spindle.observers")


@runtime_checkable
class RunObserver(Protocol):
    """Anything that wants to hear about lifecycle events."""

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Receive one event; must not change run state."""


@define
class ObserverPlugin(Plugin, group="observer"):
    """Convenience base for observer plugins configured from ``spindle.toml``.

    Observers need not subclass it — the registry accepts any class with
    ``async on_event`` — but subclasses get config structuring and listing
    metadata like every other kind.
    """

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Receive one event (subclasses override)."""

    async def aclose(self) -> None:
        """Flush and release resources (files, exporters)."""


class NullObserver:
    """Ignores every event; the engine skips building events when this is all it has."""

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Do nothing."""


class CallbackObserver:
    """Wraps a plain function (sync or async) taking the event."""

    def __init__(
        self, callback: Callable[[RunLifecycleEvent], Any], name: str | None = None
    ) -> None:
        self.callback = callback
        self.name = name or getattr(callback, "__qualname__", repr(callback))

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Call the callback, awaiting it if it returns an awaitable."""
        result = self.callback(event)
        if inspect.isawaitable(result):
            await result

    def __repr__(self) -> str:
        return f"CallbackObserver({self.name})"


def ensure_observer(obj: RunObserver | Callable[[RunLifecycleEvent], Any] | None) -> RunObserver:
    """Turn ``None``, a callable or an observer into an observer.

    Raises:
        TypeError: ``obj`` is none of those.
    """
    if obj is None:
        return NullObserver()
    if isinstance(obj, RunObserver):
        return obj
    if callable(obj):
        return CallbackObserver(obj)
    raise TypeError(
        f"expected an observer (with 'async on_event(event)'), a callable or None, "
        f"got {type(obj).__name__} {obj!r}"
    )


@define
class ObserverBinding:
    """An observer and whether its failures must propagate (``required``).

    ``observer`` may be anything :func:`ensure_observer` accepts: an observer,
    or a plain function (sync or async) taking the event, which is wrapped in
    a :class:`CallbackObserver`. The binding's ``name`` (used when an optional
    observer's failure is logged) defaults to the observer's ``name``, which
    for a function is its qualified name, else to the observer's class name.

    Example::

        async def notify(event: RunLifecycleEvent) -> None: ...

        Engine(observers=[ObserverBinding(notify, required=True)])
    """

    observer: RunObserver = field(converter=ensure_observer)
    required: bool = False
    name: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.name:
            self.name = getattr(self.observer, "name", None) or type(self.observer).__qualname__


@define
class CompositeObserver:
    """Dispatches each event to every binding, in order."""

    bindings: list[ObserverBinding] = field(factory=list)

    @classmethod
    def of(cls, observers: Iterable[Any], *, required: bool = False) -> CompositeObserver:
        """Bind each of ``observers`` (observers, callables or bindings)."""
        bindings = [
            o if isinstance(o, ObserverBinding) else ObserverBinding(o, required) for o in observers
        ]
        return cls([b for b in bindings if not isinstance(b.observer, NullObserver)])

    def add(self, observer: Any, *, required: bool = False) -> None:
        """Bind one more observer."""
        self.bindings.append(ObserverBinding(observer, required))

    @property
    def active(self) -> bool:
        """Whether any observer is bound (the engine builds no events otherwise)."""
        return bool(self.bindings)

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Deliver ``event`` to each binding; re-raise the first required failure."""
        first_error: BaseException | None = None
        for b in self.bindings:
            try:
                await b.observer.on_event(event)
            except Exception as exc:
                if b.required:
                    if first_error is None:
                        first_error = exc
                    continue
                log.warning(
                    "observer %s failed on %s for run %s: %s: %s",
                    b.name,
                    event.type.value,
                    event.run_id,
                    type(exc).__name__,
                    exc,
                )
        if first_error is not None:
            raise first_error

    def run_labels(
        self, event: RunLifecycleEvent, workflow: str, labels: Mapping[str, str]
    ) -> dict[str, str]:
        """The labels the observers with a ``run_labels`` method want stored with the run.

        Called before the commit of a ``run_started`` or ``run_resumed`` event,
        in the middle of the engine's change to the run: a failure here is logged
        and never fails the run, even for a required observer (what the labels
        carry helps an observer, the run does not depend on it).
        """
        out: dict[str, str] = {}
        for b in self.bindings:
            method = getattr(b.observer, "run_labels", None)
            if method is not None:
                found = self._asked(b, "run_labels", event.run_id, method, event, workflow, labels)
                out.update(found)
        return out

    def task_env(self, run_id: str, node_id: str) -> dict[str, str]:
        """The environment the observers with a ``task_env`` method give the node's process
        (a failure is logged, as in :meth:`run_labels`)."""
        out: dict[str, str] = {}
        for b in self.bindings:
            method = getattr(b.observer, "task_env", None)
            if method is not None:
                out.update(self._asked(b, "task_env", run_id, method, run_id, node_id))
        return out

    @staticmethod
    def _asked(
        b: ObserverBinding, what: str, run_id: str, method: Callable[..., Any], *args: Any
    ) -> Mapping[str, str]:
        try:
            found = method(*args)
            if not isinstance(found, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in found.items()
            ):
                raise TypeError(
                    f"{what}() must return a mapping of str to str, got {type(found).__name__}"
                )
            return found
        except Exception as exc:
            log.warning(
                "observer %s failed in %s for run %s: %s: %s",
                b.name,
                what,
                run_id,
                type(exc).__name__,
                exc,
            )
            return {}

    async def aclose(self) -> None:
        """Close every observer that has ``aclose``."""
        for b in self.bindings:
            close = getattr(b.observer, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:  # closing one must not stop closing the rest
                    log.warning("observer %s failed to close: %s", b.name, exc)
