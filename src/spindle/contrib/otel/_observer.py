"""The ``otel`` observer: lifecycle events as OpenTelemetry spans."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle import ObserverPlugin, RunLifecycleEvent
from spindle._version import __version__
from spindle.contrib.otel._setup import build_provider, require_api
from spindle.core.model import LifecycleEventType

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from spindle.contrib.otel._spans import RunTraces

__all__ = ["TRACE_LABEL", "OtelObserver"]

#: The run label that keeps the W3C traceparent of the run's first span.
TRACE_LABEL = "otel.traceparent"

E = LifecycleEventType
_RUN_OPEN = frozenset({E.RUN_STARTED, E.RUN_RESUMED})
_RUN_LEVEL = frozenset(
    {E.RUN_WAITING, E.RUN_COMPLETED, E.RUN_FAILED, E.RUN_CANCELLED, E.HANDOFF_CREATED, E.AUDIT}
)


@define
class OtelObserver(ObserverPlugin, kind="otel"):
    """Makes an OpenTelemetry trace of each run: run, node and sub-step spans.

    Attributes:
        exporter: where spans go. ``none`` (the default): the global
            TracerProvider, which the host application configures (the API's
            no-op one if it does not); ``console``: a provider of the observer's
            own printing each span to stderr; ``otlp``: a provider of its own
            exporting over OTLP (needs ``opentelemetry-exporter-otlp-proto-http``
            or ``-grpc``; the endpoint defaults to ``OTEL_EXPORTER_OTLP_ENDPOINT``).
        service_name: the ``service.name`` of the observer's own provider
            (``console``, ``otlp``); a global provider has its own resource.
        endpoint: the OTLP endpoint (``exporter = "otlp"`` only).

    Raises:
        ConfigError: OpenTelemetry is not installed (``pip install 'spindle[otel]'``),
            or the exporter is unknown or not installed.
    """

    exporter: str = "none"
    service_name: str = "spindle"
    endpoint: str | None = None
    # Typed Any: config structuring resolves every annotation of the class, and the
    # OpenTelemetry types must not be needed to import this module (see require_api).
    _provider: Any = field(default=None, init=False, repr=False, eq=False)  # TracerProvider
    _owned: bool = field(default=False, init=False, repr=False, eq=False)
    _traces: Any = field(default=None, init=False, repr=False, eq=False)  # RunTraces

    def __attrs_post_init__(self) -> None:
        require_api()
        from opentelemetry import trace

        from spindle.contrib.otel._spans import RunTraces

        provider = build_provider(self.exporter, self.service_name, self.endpoint)
        self._owned = provider is not None
        self._provider = provider
        # Without a provider of its own the API's proxy tracer follows the global
        # provider, even one the host sets after the engine was built.
        tracer = (
            provider.get_tracer("spindle", __version__)
            if provider is not None
            else trace.get_tracer("spindle", __version__)
        )
        self._traces = RunTraces(tracer)

    @classmethod
    def using(cls, provider: TracerProvider) -> OtelObserver:
        """An observer sending its spans to ``provider`` (the host's, or a test's); the
        observer flushes it when it closes but does not shut it down.

        Example::

            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
            Engine(observers=[OtelObserver.using(provider)])
        """
        observer = cls()
        observer._provider = provider
        observer._traces.tracer = provider.get_tracer("spindle", __version__)
        return observer

    # --- the observer protocol ------------------------------------------------------

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Open, annotate or end the spans ``event`` concerns."""
        kind = event.type
        if kind in _RUN_OPEN:
            return  # its span was opened by run_labels, before the event's commit
        if kind in _RUN_LEVEL:
            self._traces.run_event(event)
        else:
            self._traces.node_event(event)

    def run_labels(
        self, event: RunLifecycleEvent, workflow: str, labels: Mapping[str, str]
    ) -> dict[str, str]:
        """Open the span of the run's drive that ``event`` starts or resumes (the engine
        calls this before the event's commit); return the run span's traceparent to
        store as the run's ``otel.traceparent`` label when the run has none yet."""
        stored = labels.get(TRACE_LABEL)
        new = self._traces.open_run(event, workflow, stored)
        return {} if new is None else {TRACE_LABEL: new}

    def task_env(self, run_id: str, node_id: str) -> dict[str, str]:
        """``TRACEPARENT`` and ``TRACESTATE`` of the node's span, for the process an
        executor starts for it (empty when no span records: the no-op provider)."""
        traces: RunTraces = self._traces
        return traces.task_env(run_id, node_id)

    async def aclose(self) -> None:
        """End the spans still open (``spindle.status = interrupted``) and flush the
        provider; shut it down when it is the observer's own."""
        self._traces.close_all(time.time_ns())
        provider: Any = self._provider
        if provider is None:
            from opentelemetry import trace

            provider = trace.get_tracer_provider()
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            flush()
        if self._owned:
            provider.shutdown()
            self._provider = None
            self._owned = False
