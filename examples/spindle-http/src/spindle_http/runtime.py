"""The ``http`` runtime: a node that makes one HTTP request.

::

    fetch:
      runtime:
        kind: http
        method: POST
        url: "{inputs.base}/orders/{order}"
        headers: {Authorization: "Bearer {secrets.token}"}
        json: {note: "from spindle"}
        expect: [200, 201]
        retries: 3
      inputs: {order: inputs.order}

The node's result is ``{"status", "headers", "body", "attempts"}``, the body
parsed as JSON when the response says it is JSON. Connection failures and
retryable statuses (429, 502, 503, 504, 500) are retried in the task with
exponential backoff; a status outside ``expect`` fails the node with
:class:`~spindle_http.HttpStatusError` (so a node's own ``retry: {retry_on:
[HttpStatusError]}`` can retry it durably).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from attrs import define, field
from spindle import Runtime, TaskError
from spindle.plugins.payloads import PythonCall

from spindle_http._client import DEFAULT_RETRY_STATUSES, HttpRequest, RetryPolicy, send
from spindle_http._template import Template, TemplateError, dig, url_quote

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["HttpRuntime", "perform"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def perform(
    request: dict[str, Any],
    policy: dict[str, Any],
    expect: list[int] | None,
    what: str,
    secrets: tuple[str, ...] = (),
    select: str | None = None,
) -> Any:
    """The task itself: send the request, return the response (or the part of it
    ``select`` names) as the node's result.

    Every argument is built-in data (``request`` and ``policy`` are the fields
    of :class:`HttpRequest` and :class:`RetryPolicy`), so an executor that runs
    the task in another interpreter (``subprocess``) can unpickle them before
    it imports this package; ``secrets`` are the values every log line and
    error shows as ``***``.
    """

    def redact(text: str) -> str:
        for value in secrets:
            if value:
                text = text.replace(value, "***")
        return text

    response = await send(
        HttpRequest(**request), RetryPolicy(**policy), expect=expect, redact=redact, what=what
    )
    result = response.result()
    if select is None:
        return result
    try:
        return dig(result, select.split("."), "the response")
    except KeyError as exc:
        raise TaskError(f"{what}: select {select!r}: {exc.args[0]}") from None


@define
class HttpRuntime(Runtime[PythonCall], kind="http", description="Makes an HTTP request."):
    """Makes an HTTP request; its result is the status, headers and (JSON or text) body.

    ``url``, the header values and ``body`` may hold placeholders:
    ``{inputs.NAME}``, ``{secrets.NAME}``, ``{NAME}`` (a node input),
    ``{run.id}``, ``{task.name}``; values put in the URL are percent-encoded
    (except a placeholder that starts it: the base URL).
    Header values are never logged for ``Authorization``, ``Cookie`` and API-key
    headers, and secret input values are replaced by ``***`` in every log line
    and error.

    Attributes:
        url: the ``http://`` or ``https://`` URL (a template).
        method: the HTTP method.
        headers: request headers (values are templates).
        json: a JSON body (sets ``Content-Type: application/json``); its strings
            are templates, and a string that is one placeholder alone
            (``"{price}"``) is replaced by the value itself.
        body: a text body (a template); at most one of ``json`` and ``body``.
        timeout: seconds one attempt may take.
        expect: the statuses that are a success (default: any 2xx or 3xx).
        retries: attempts after the first on a failed connection or a
            retryable status.
        backoff: seconds before the first retry; doubled for each next one.
        max_backoff: the longest wait between two attempts.
        retry_statuses: response statuses that are retried.
        select: a dotted path into the result to return instead of all of it
            (``body.id``, ``status``, ``body.items.0``).
    """

    default_executor: ClassVar[str] = "inline"

    url: str
    method: Method = "GET"
    headers: dict[str, str] = field(factory=dict)
    json: Any = None
    body: str | None = None
    timeout: float = 10.0
    expect: list[int] | None = None
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 10.0
    retry_statuses: list[int] = field(factory=lambda: list(DEFAULT_RETRY_STATUSES))
    select: str | None = None

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report, when the workflow is loaded, every option that cannot work."""
        problems = []
        if not self.url.lower().startswith(("http://", "https://", "{")):
            problems.append(f"http url must start with http:// or https://, got {self.url!r}")
        if self.json is not None and self.body is not None:
            problems.append("http takes a 'json' body or a text 'body', not both")
        if self.method in ("GET", "HEAD") and (self.json is not None or self.body is not None):
            problems.append(f"http {self.method} sends no body; use POST, PUT or PATCH")
        for name, value, low in (
            ("timeout", self.timeout, 0.0),
            ("backoff", self.backoff, 0.0),
            ("max_backoff", self.max_backoff, 0.0),
        ):
            if value < low or (name == "timeout" and value == 0):
                problems.append(f"http {name} must be positive, got {value}")
        if self.select is not None and not all(self.select.split(".")):
            problems.append(f"http select {self.select!r} has an empty part; write body.a.b")
        if self.retries < 0:
            problems.append(f"http retries must be 0 or more, got {self.retries}")
        for status in [*(self.expect or []), *self.retry_statuses]:
            if not 100 <= status <= 599:
                problems.append(f"http status {status} is not an HTTP status (100-599)")
        node_inputs = set(node.inputs)
        workflow_inputs = {a.removeprefix("inputs.") for a in available if a.startswith("inputs.")}
        for template in self._templates(problems):
            problems.extend(template.problems(node_inputs, workflow_inputs))
        return problems

    async def _setup_runtime(self, task: TaskContext) -> PythonCall:
        """Fill in the placeholders and prepare the request; ``inline`` sends it."""
        values = _values(task)
        for name in self._secret_names():
            if str(values.get(f"secrets.{name}")) not in task.secret_values:
                raise TaskError(
                    f"node '{task.node_id}': {{secrets.{name}}} names input '{name}', which is "
                    f"not declared secret; declare it with secret: true, or write "
                    f"{{inputs.{name}}}",
                    node_id=task.node_id,
                )
        try:
            url = Template.parse(self.url).render(values, quote=url_quote, quote_first=False)
            headers = {k: Template.parse(v).render(values) for k, v in self.headers.items()}
            document = _filled(self.json, values)
            text = None if self.body is None else Template.parse(self.body).render(values)
        except KeyError as exc:
            raise TaskError(
                f"node '{task.node_id}': a placeholder names nothing: {exc.args[0]}",
                node_id=task.node_id,
            ) from None
        if not url.lower().startswith(("http://", "https://")):
            raise TaskError(
                f"node '{task.node_id}': the URL {task.redact(url)!r} does not start with "
                f"http:// or https://; check the value that starts {self.url!r}",
                node_id=task.node_id,
            )
        data: bytes | None = None
        if self.json is not None:
            data = json.dumps(document).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        elif text is not None:
            data = text.encode()
        request = {
            "method": self.method,
            "url": url,
            "headers": headers,
            "body": data,
            "timeout": self.timeout,
        }
        policy = {
            "retries": self.retries,
            "backoff": self.backoff,
            "max_backoff": self.max_backoff,
            "retry_statuses": tuple(self.retry_statuses),
        }
        return PythonCall(
            function=perform,
            kwargs={
                "request": request,
                "policy": policy,
                "expect": self.expect,
                "what": f"node '{task.node_id}'",
                "secrets": tuple(task.secret_values),
                "select": self.select,
            },
            reference="spindle_http.runtime:perform",
            name="http",
            is_async=True,
            # Where this package is, for an executor that imports `reference` in a
            # fresh interpreter (site-packages once installed; src/ in a checkout).
            sys_path=[_PACKAGE_ROOT],
        )

    def _secret_names(self) -> list[str]:
        """The inputs named by ``{secrets.NAME}`` placeholders."""
        return [
            name.removeprefix("secrets.")
            for template in self._templates([])
            for name in template.names
            if name.startswith("secrets.")
        ]

    def _templates(self, problems: list[str]) -> list[Template]:
        """The parsed templates; a malformed one is added to ``problems`` instead."""
        texts = [self.url, *self.headers.values(), *([self.body] if self.body else [])]
        texts += _strings(self.json)
        parsed = []
        for text in texts:
            try:
                parsed.append(Template.parse(text))
            except TemplateError as exc:
                problems.append(str(exc))
        return parsed


def _values(task: TaskContext) -> dict[str, Any]:
    """What placeholders may name, for this task."""
    values: dict[str, Any] = {"run.id": task.run_id, "task.name": task.node_id}
    for name, value in task.workflow_inputs.items():
        values[f"inputs.{name}"] = value
        values[f"secrets.{name}"] = value
    for name, value in task.inputs.items():
        values[name] = value
        values[f"inputs.{name}"] = value
    return values


def _strings(document: Any) -> list[str]:
    """Every string inside a JSON document (the templates of a ``json`` body)."""
    if isinstance(document, str):
        return [document]
    if isinstance(document, dict):
        return [s for v in document.values() for s in _strings(v)]
    if isinstance(document, list):
        return [s for v in document for s in _strings(v)]
    return []


def _filled(document: Any, values: dict[str, Any]) -> Any:
    """The JSON document with its string templates filled in."""
    if isinstance(document, str):
        return Template.parse(document).value(values)
    if isinstance(document, dict):
        return {k: _filled(v, values) for k, v in document.items()}
    if isinstance(document, list):
        return [_filled(v, values) for v in document]
    return document
