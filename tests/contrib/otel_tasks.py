"""Task functions the OpenTelemetry tests run in other processes (importable there by name).

Kept apart from the test module so a subprocess, a pool worker or a Dask worker
imports only this.
"""

from __future__ import annotations

import os
from typing import Any


def child_span() -> dict[str, Any]:
    """Start a span in this process under the trace context in ``TRACEPARENT`` (as any
    OpenTelemetry code joining its parent's trace does) and report its ids."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    carrier = {k.lower(): v for k, v in os.environ.items() if k in ("TRACEPARENT", "TRACESTATE")}
    parent = TraceContextTextMapPropagator().extract(carrier)
    with provider.get_tracer("child").start_as_current_span("child work", context=parent):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is not None, f"no parent context in {carrier}"
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "parent_id": f"{span.parent.span_id:016x}",
        "pid": os.getpid(),
    }


def traceparent(ctx: Any) -> dict[str, Any]:
    """What this process sees of the node's trace context: its environment and ``ctx``."""
    return {
        "environ": os.environ.get("TRACEPARENT"),
        "ctx": ctx.environment().get("TRACEPARENT"),
        "pid": os.getpid(),
    }
