"""``spindle worker --metrics-port``: serve the worker's Prometheus metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spindle.contrib.metrics import MetricsServer
    from spindle.core.engine import Engine

__all__ = ["serve_metrics"]


def serve_metrics(engine: Engine, port: int, host: str) -> MetricsServer:
    """Serve the metrics of the ``prometheus`` observer the settings configure, or of
    one added to ``engine`` now, at ``http://HOST:PORT/metrics``.

    Called before the worker claims anything, so a failure loses nothing.

    Raises:
        ConfigError: prometheus_client is missing, or the port cannot be bound.
    """
    from spindle.contrib.metrics import PrometheusObserver, serve

    configured = [
        b.observer for b in engine.observers.bindings if isinstance(b.observer, PrometheusObserver)
    ]
    if configured:
        observer = configured[0]
    else:
        observer = PrometheusObserver()
        # The worker's progress display is an observer already, so the engine builds
        # events: one more binding is all the new observer needs.
        engine.observers.add(observer)
    return serve(port, host, observer.collectors)
