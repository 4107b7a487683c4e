"""The OpenTelemetry observer (``pip install 'spindle[otel]'``): a trace per run.

Configure it in ``spindle.toml``::

    [[observers]]
    kind = "otel"               # spans go to the global TracerProvider the host set up
    # exporter = "console"      # or: the observer's own provider, printing to stderr
    # exporter = "otlp"         # or: OTLP (needs opentelemetry-exporter-otlp)

or in Python, with a provider of your own::

    from spindle.contrib.otel import OtelObserver

    Engine(observers=[OtelObserver.using(provider)])

Each run is a span ``spindle.run <workflow>``, each node attempt a child span
``spindle.node <node>`` and each durable sub-step a span ``spindle.step <step>``
under its node; waits and retries are span events, failures set the span's
status to ERROR with an ``exception`` event. The run span's trace context is
kept with the run (its label ``otel.traceparent``), so a run resumed in
another process, days later, continues the same trace; and the executors that
start other processes put the node span's ``TRACEPARENT`` in their
environment. See ``docs/observability.md``.

This package imports without OpenTelemetry installed; building the observer
then raises a :class:`~spindle.ConfigError` saying what to install.
"""

from __future__ import annotations

from spindle.contrib.otel._observer import TRACE_LABEL, OtelObserver

__all__ = ["TRACE_LABEL", "OtelObserver"]
