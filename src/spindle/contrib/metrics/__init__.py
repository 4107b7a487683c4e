"""Prometheus metrics (``pip install 'spindle[metrics]'``): runs, nodes, retries, waits
and durations, by workflow and status.

The ``prometheus`` observer (:class:`PrometheusObserver`) counts lifecycle events;
``spindle worker --metrics-port PORT`` adds one and serves ``/metrics`` from the
worker, and a host application serves an observer's metrics with :func:`serve`::

    from spindle import Engine
    from spindle.contrib.metrics import PrometheusObserver, serve

    metrics = PrometheusObserver()
    server = serve(9464, registry=metrics.collectors)
    async with Engine("sqlite:///app.db", observers=[metrics]) as engine:
        ...
    server.close()

This package imports without prometheus_client; building an observer or a server
without it raises :class:`~spindle.ConfigError` saying how to install it. See
``docs/metrics.md`` for every metric and its labels.
"""

from __future__ import annotations

from spindle.contrib.metrics._observer import PrometheusObserver
from spindle.contrib.metrics._server import MetricsServer, serve

__all__ = ["MetricsServer", "PrometheusObserver", "serve"]
