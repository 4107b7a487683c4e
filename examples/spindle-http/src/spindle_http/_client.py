"""One HTTP request with retries and exponential backoff, on the standard library only.

Every kind of this package talks HTTP through :func:`send`: the ``http``
runtime's tasks, the ``webhook`` observer's posts and the ``http_poll``
effect's polls. ``urllib.request`` blocks, so each attempt runs in a thread
(:func:`asyncio.to_thread`) and the engine's event loop never stalls; the
waits between attempts are ``asyncio.sleep``.

What is retried: a connection that fails (refused, reset, a DNS error, a
timeout, a reply that is not HTTP) and a response whose status is in ``retry_statuses`` (by default
429 and the 5xx gateway errors). Anything else is final at once.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from attrs import define, field
from spindle import TaskError

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "SENSITIVE_HEADERS",
    "HttpConnectionError",
    "HttpError",
    "HttpRequest",
    "HttpResponse",
    "HttpStatusError",
    "RetryPolicy",
    "header",
    "send",
    "shown_headers",
]

# Under "spindle.": the spindle command shows these records on stderr with -v
# (INFO) and -vv (DEBUG), as it does its own; warnings always.
log = logging.getLogger("spindle.http")

#: Statuses worth another try: the server is busy or a gateway failed.
DEFAULT_RETRY_STATUSES = (429, 500, 502, 503, 504)

#: Header names whose values are never logged nor put in an error message.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)


class HttpError(TaskError):
    """A request of this package failed; the base of the two errors below."""


class HttpConnectionError(HttpError):
    """No response came back (refused, reset, timed out), after every retry."""


class HttpStatusError(HttpError):
    """A response came back with a status the node does not expect."""

    def __init__(self, message: str, *, status: int, node_id: str = "") -> None:
        super().__init__(message, node_id=node_id, details={"status": status})
        self.status = status


@define(frozen=True)
class HttpRequest:
    """What to send: plain data, so a request can be logged, retried and compared.

    Attributes:
        method: the HTTP method, upper case.
        url: an ``http://`` or ``https://`` URL.
        headers: request headers.
        body: the request body, if any.
        timeout: seconds one attempt may take (connect and read).
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(factory=dict)
    body: bytes | None = None
    timeout: float = 10.0


@define(frozen=True)
class HttpResponse:
    """What came back.

    Attributes:
        status: the HTTP status code.
        headers: the response headers (the last one wins for a repeated name).
        body: the raw body.
        attempts: how many attempts it took (1 when the first one answered).
    """

    status: int
    headers: dict[str, str]
    body: bytes
    attempts: int = 1

    def data(self) -> Any:
        """The body parsed as JSON when the server says it is JSON, else as text."""
        text = self.body.decode(_charset(self.headers), errors="replace")
        if "json" in header(self.headers, "Content-Type").lower() and text.strip():
            try:
                return json.loads(text)
            except ValueError:
                return text  # a server that lies about its content type
        return text

    def result(self) -> dict[str, Any]:
        """The response as a node's result: ``status``, ``headers``, ``body``, ``attempts``."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SENSITIVE_HEADERS}
        return {
            "status": self.status,
            "headers": headers,
            "body": self.data(),
            "attempts": self.attempts,
        }


@define(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again.

    The wait before retry ``n`` (from 1) is ``backoff * 2 ** (n - 1)``, capped
    at ``max_backoff``: 0.5, 1, 2, 4 ... seconds by default.

    Attributes:
        retries: attempts after the first one (0: try once).
        backoff: seconds before the first retry.
        max_backoff: the longest wait between two attempts.
        retry_statuses: response statuses that are retried like a failed connection.
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 10.0
    retry_statuses: tuple[int, ...] = DEFAULT_RETRY_STATUSES

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        return float(min(self.max_backoff, self.backoff * 2 ** (retry - 1)))


Sleep = Callable[[float], Awaitable[Any]]


async def send(
    request: HttpRequest,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 (frozen: a shared default is safe)
    *,
    expect: Sequence[int] | None = None,
    redact: Callable[[str], str] = str,
    what: str = "request",
    sleep: Sleep = asyncio.sleep,
) -> HttpResponse:
    """Send ``request``, retrying failed connections and retryable statuses.

    Args:
        request: what to send.
        policy: retries and backoff.
        expect: the statuses that are a success; None means any 2xx or 3xx.
        redact: applied to every logged line and error message (a task's
            ``redact``, which replaces secret values with ``***``).
        what: how messages name the request (``node 'fetch'``).
        sleep: how to wait between attempts (tests pass a recorder).

    Returns:
        The first response with an expected status.

    Raises:
        HttpConnectionError: no attempt got a response.
        HttpStatusError: the last response had a status that is not expected.
    """
    target = f"{request.method} {redact(_without_credentials(request.url))}"
    attempt = 0
    while True:
        attempt += 1
        log.debug(
            "%s: %s attempt %d headers=%s",
            what,
            target,
            attempt,
            redact(json.dumps(shown_headers(request.headers))),
        )
        try:
            response = await asyncio.to_thread(_send_once, request)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = redact(_reason(exc))
            if attempt > policy.retries:
                raise HttpConnectionError(
                    f"{what}: {target} failed after {attempt} attempt(s): {reason}; "
                    f"is the server up and the URL right?"
                ) from None
            delay = policy.delay(attempt)
            log.warning("%s: %s: %s; retrying in %.2fs", what, target, reason, delay)
            await sleep(delay)
            continue
        response = HttpResponse(response.status, response.headers, response.body, attempt)
        ok = _expected(response.status, expect)
        if not ok and response.status in policy.retry_statuses and attempt <= policy.retries:
            delay = policy.delay(attempt)
            log.warning(
                "%s: %s answered %d; retrying in %.2fs", what, target, response.status, delay
            )
            await sleep(delay)
            continue
        log.info("%s: %s answered %d (attempt %d)", what, target, response.status, attempt)
        if not ok:
            wanted = "a 2xx or 3xx status" if expect is None else f"status {_listed(expect)}"
            raise HttpStatusError(
                f"{what}: {target} answered {response.status}, expected {wanted} "
                f"(after {attempt} attempt(s)); body: {redact(_snippet(response.body))}",
                status=response.status,
            )
        return response


def header(headers: Mapping[str, str], name: str) -> str:
    """The value of header ``name`` (any case), or ``""``."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


def shown_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` fit for a log line: the values of sensitive ones replaced by ``***``."""
    return {k: "***" if k.lower() in SENSITIVE_HEADERS else v for k, v in headers.items()}


# --- internals ------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hand 3xx responses back instead of following them (and resending the headers)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# A redirect may point anywhere: following it would send the request's headers,
# credentials included, to a host the workflow never named.
_OPENER = urllib.request.build_opener(_NoRedirects)


def _send_once(request: HttpRequest) -> HttpResponse:
    """One blocking attempt; an error status is a response, not an exception."""
    req = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    try:
        with _OPENER.open(req, timeout=request.timeout) as resp:
            return HttpResponse(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:  # 4xx, 5xx and unfollowed 3xx
        with exc:
            return HttpResponse(exc.code, dict(exc.headers.items()), exc.read())


def _expected(status: int, expect: Sequence[int] | None) -> bool:
    return 200 <= status < 400 if expect is None else status in expect


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _without_credentials(url: str) -> str:
    """The URL with a ``user:password@`` part shown as ``***@``."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _charset(headers: Mapping[str, str]) -> str:
    for part in header(headers, "Content-Type").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _listed(statuses: Sequence[int]) -> str:
    return " or ".join(str(s) for s in statuses)
