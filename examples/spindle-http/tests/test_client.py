"""``send``: retries, backoff, final errors and what is logged, against a real server."""

from __future__ import annotations

import asyncio
import logging

import pytest

from conftest import Answer
from spindle_http import (
    HttpConnectionError,
    HttpRequest,
    HttpStatusError,
    RetryPolicy,
    send,
)


class Sleeps(list[float]):
    """Records the waits between attempts instead of sleeping them."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_a_5xx_is_retried_with_exponential_backoff(server):
    """Two 503s then a 200: three attempts, waits of 0.5 s and 1 s, the JSON body parsed."""
    server.script("/items", Answer(503, "busy"), Answer(503, "busy"), Answer(200, {"n": 2}))
    sleeps = Sleeps()

    response = asyncio.run(send(HttpRequest("GET", server.url + "/items"), sleep=sleeps))

    assert (response.status, response.data(), response.attempts) == (200, {"n": 2}, 3)
    assert sleeps == [0.5, 1.0]
    assert len(server.requests_to("/items")) == 3


def test_backoff_doubles_up_to_max_backoff():
    """The wait before retry n is backoff * 2**(n-1), never more than max_backoff."""
    policy = RetryPolicy(retries=6, backoff=1.0, max_backoff=5.0)

    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_refused_connection_is_retried_then_reported(dead_url):
    """Nothing listens: retries+1 attempts, then an error naming the URL and what to check."""
    sleeps = Sleeps()
    policy = RetryPolicy(retries=2, backoff=0.1)

    with pytest.raises(HttpConnectionError) as info:
        asyncio.run(
            send(HttpRequest("GET", dead_url + "/x"), policy, what="node 'a'", sleep=sleeps)
        )

    message = str(info.value)
    assert message.startswith(f"node 'a': GET {dead_url}/x failed after 3 attempt(s): ")
    assert "ConnectionRefusedError" in message
    assert "is the server up and the URL right?" in message
    assert sleeps == [0.1, 0.2]


def test_a_4xx_is_final_at_once_and_names_the_status_and_body(server):
    """404 is not retried: one attempt, an HttpStatusError with the status and the body."""
    server.script("/missing", Answer(404, {"error": "no such order"}))
    sleeps = Sleeps()

    with pytest.raises(HttpStatusError) as info:
        asyncio.run(send(HttpRequest("GET", server.url + "/missing"), sleep=sleeps))

    assert info.value.status == 404
    assert "answered 404, expected a 2xx or 3xx status (after 1 attempt(s))" in str(info.value)
    assert "no such order" in str(info.value)
    assert sleeps == []


def test_retries_stop_at_the_limit_with_the_last_status(server):
    """A server that stays at 503 fails after retries+1 attempts with status 503."""
    server.script("/down", Answer(503, "busy"))

    with pytest.raises(HttpStatusError) as info:
        asyncio.run(send(HttpRequest("GET", server.url + "/down"), sleep=Sleeps()))

    assert info.value.status == 503
    assert "after 4 attempt(s)" in str(info.value)
    assert len(server.requests_to("/down")) == 4


def test_expect_lists_the_statuses_that_succeed(server):
    """With expect=[202] a 200 is an error and a 202 a success."""
    server.script("/a", Answer(200, {}))
    server.script("/b", Answer(202, {"queued": True}))

    with pytest.raises(HttpStatusError, match=r"answered 200, expected status 202"):
        asyncio.run(send(HttpRequest("GET", server.url + "/a"), expect=[202]))
    ok = asyncio.run(send(HttpRequest("GET", server.url + "/b"), expect=[202]))

    assert ok.data() == {"queued": True}


def test_a_redirect_is_returned_not_followed(server):
    """A 302 comes back as the response: the request's headers never go to another host."""
    server.script("/moved", Answer(302, "", headers={"Location": "http://example.invalid/"}))

    response = asyncio.run(send(HttpRequest("GET", server.url + "/moved", {"X-Api-Key": "k"})))

    assert response.status == 302
    assert [s.path for s in server.seen] == ["/moved"]


def test_sensitive_headers_and_secrets_never_reach_the_log(server, caplog):
    """Authorization is logged as ***, and redact() scrubs a secret in the URL too."""
    server.script("/s3cr3t", Answer(503, "busy"), Answer(200, {}))
    request = HttpRequest("GET", server.url + "/s3cr3t", {"Authorization": "Bearer tok-123"})

    with caplog.at_level(logging.DEBUG, logger="spindle.http"):
        asyncio.run(send(request, redact=lambda t: t.replace("s3cr3t", "***"), sleep=Sleeps()))

    text = caplog.text
    assert '"Authorization": "***"' in text
    assert "tok-123" not in text
    assert "s3cr3t" not in text
    assert server.seen[0].headers["Authorization"] == "Bearer tok-123"  # sent, not logged


def test_credentials_in_the_url_are_not_shown(dead_url):
    """user:password@ in a URL is shown as ***@ in the error."""
    url = dead_url.replace("http://", "http://ada:hunter2@")

    with pytest.raises(HttpConnectionError) as info:
        asyncio.run(send(HttpRequest("GET", url), RetryPolicy(retries=0)))

    assert "hunter2" not in str(info.value)
    assert "***@127.0.0.1" in str(info.value)
