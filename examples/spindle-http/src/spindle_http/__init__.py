"""spindle-http: HTTP for spindle workflows.

Four kinds, each declared as an entry point in this package's
``pyproject.toml``:

``http`` (runtime)
    A node that makes an HTTP request, retried with backoff.
``webhook`` (observer)
    Posts lifecycle events as JSON to a URL, never holding a run up.
``http_poll`` (effect)
    A durable wait that polls a URL until a condition holds.
``rate_limit`` (middleware)
    At most so many calls per second to each host.
"""

from __future__ import annotations

from spindle_http._client import (
    HttpConnectionError,
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpStatusError,
    RetryPolicy,
    send,
)
from spindle_http.observer import WebhookObserver
from spindle_http.poll import HttpPollHandler
from spindle_http.ratelimit import RateLimitMiddleware
from spindle_http.runtime import HttpRuntime

__all__ = [
    "HttpConnectionError",
    "HttpError",
    "HttpPollHandler",
    "HttpRequest",
    "HttpResponse",
    "HttpRuntime",
    "HttpStatusError",
    "RateLimitMiddleware",
    "RetryPolicy",
    "WebhookObserver",
    "send",
]
