"""Fixtures: a real HTTP server on 127.0.0.1 with scripted answers, and a way to run workflows.

Workflows run through ``spindle.testing``'s ``run_workflow`` fixture, with a
registry from ``Registry.for_testing``: spindle's own kinds plus this
package's four, registered in code (so the tests pass from a source checkout,
before the package is installed, and no other installed package's kinds or
hook modules leak in).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field
from spindle import Registry, RunState, Settings, Workflow
from spindle.testing import WorkflowRunner

from spindle_http import HttpPollHandler, HttpRuntime, RateLimitMiddleware, WebhookObserver


@define
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@define
class Answer:
    """One scripted answer: a status and a JSON (or text) body."""

    status: int = 200
    body: Any = field(factory=dict)
    headers: dict[str, str] = field(factory=dict)


@define
class Server:
    """The test server: ``url``, what it received, and what it will answer.

    ``script(path, *answers)`` queues answers for ``path``; the last one
    repeats. A path without a script answers 404.
    """

    url: str = ""
    seen: list[Seen] = field(factory=list)
    scripts: dict[str, list[Answer]] = field(factory=dict)
    lock: threading.Lock = field(factory=threading.Lock)

    def script(self, path: str, *answers: Answer) -> None:
        with self.lock:
            self.scripts[path] = list(answers)

    def next_answer(self, path: str) -> Answer:
        with self.lock:
            answers = self.scripts.get(path)
            if not answers:
                return Answer(404, {"error": f"no script for {path}"})
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            answer = server.next_answer(self.path)
            data = (
                answer.body.encode()
                if isinstance(answer.body, str)
                else json.dumps(answer.body).encode()
            )
            kind = "text/plain" if isinstance(answer.body, str) else "application/json"
            self.send_response(answer.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 and a free port, stopped after the test."""
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def dead_url() -> str:
    """A URL nothing listens on (a port bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def registry() -> Registry:
    """spindle's own kinds (stores, executors ...) plus this package's, in code."""
    return Registry.for_testing(
        [HttpRuntime, HttpPollHandler, WebhookObserver, RateLimitMiddleware]
    )


RunFlow = Callable[..., Awaitable[RunState]]


@pytest.fixture
def run_flow(registry: Registry, spindle_config: Any, run_workflow: WorkflowRunner) -> RunFlow:
    """``await run_flow(definition, inputs=..., store=..., observers=..., middleware=...,
    **settings)``.

    Runs the workflow ``definition`` (a dict, as a YAML file would give) to its
    end or first wait in a fresh engine, closed afterwards (which flushes
    observers). ``store`` defaults to ``memory://``; settings go to ``Settings``.
    """

    async def run(
        definition: dict[str, Any],
        *,
        inputs: dict[str, Any] | None = None,
        store: str = "memory://",
        observers: tuple[Any, ...] = (),
        middleware: tuple[Any, ...] = (),
        **settings: Any,
    ) -> RunState:
        workflow = Workflow.from_dict(definition, registry=registry)
        runs = str(Path(spindle_config.path) / "runs")
        result = await run_workflow.arun(
            workflow,
            inputs,
            store=store,
            registry=registry,
            settings=Settings(runs_dir=runs, **settings),
            observers=observers,
            middleware=middleware,
        )
        return result.state

    return run
