"""Serving metrics over HTTP: ``/metrics`` from a background thread of this process.

prometheus_client's WSGI app renders the registry; the standard library's WSGI
server serves it, one scrape at a time (a scraper asks every few seconds), from a
daemon thread so a stuck scrape never keeps the process alive.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from spindle import ConfigError
from spindle.contrib.metrics._client import prometheus_client

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["MetricsServer", "serve"]


class _QuietHandler(WSGIRequestHandler):
    """Writes no line per request: a worker's stderr is its log, not an access log."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the access log line."""


class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`close` stops it.

    Attributes:
        host: the address it listens on.
        port: the port it is bound to (the one chosen when 0 was asked for).
    """

    def __init__(self, server: WSGIServer, host: str) -> None:
        self._server = server
        self.host = host
        self.port: int = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, name="spindle-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Where Prometheus scrapes: ``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server6(WSGIServer):
    address_family = socket.AF_INET6


def serve(
    port: int = 0, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serve ``registry`` (default: prometheus_client's global one) at
    ``http://HOST:PORT/metrics`` from a daemon thread, until :meth:`MetricsServer.close`.

    ``port`` 0 picks a free port (read it from :attr:`MetricsServer.port`). The
    default host, 127.0.0.1, serves this machine only; ``0.0.0.0`` every interface.

    Raises:
        ConfigError: prometheus_client is missing, the port is out of range or in
            use, or the host is not an address of this machine.
    """
    client = prometheus_client()
    if not 0 <= port <= 65535:
        raise ConfigError(f"metrics port must be 0 to 65535, got {port}")
    app = client.make_wsgi_app(client.REGISTRY if registry is None else registry)
    server_class = _Server6 if ":" in host else WSGIServer
    try:
        server = make_server(host, port, app, server_class, _QuietHandler)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {why}; choose a free port "
            "(0 picks one) or an address of this machine"
        ) from None
    return MetricsServer(server, host)
