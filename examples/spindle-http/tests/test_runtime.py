"""The ``http`` runtime in workflows: requests, templates, secrets, load-time errors."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from spindle import Registry, ValidationError, Workflow

from conftest import Answer
from spindle_http import HttpPollHandler, HttpRuntime, RateLimitMiddleware, WebhookObserver


def flow(runtime: dict, **node: object) -> dict:
    """A one-node workflow whose node uses ``runtime``."""
    return {
        "name": "h",
        "inputs": node.pop("inputs", {}),
        "nodes": {"call": {"runtime": runtime, **node}},
        "output": "call",
    }


def test_a_get_returns_status_headers_and_json_body(server, run_flow):
    """The node's result is the response: status, headers, parsed JSON body, attempts."""
    server.script("/items", Answer(200, {"items": [1, 2, 3]}))

    state = asyncio.run(run_flow(flow({"kind": "http", "url": server.url + "/items"})))

    assert state.status == "completed", state.error
    assert state.output["status"] == 200
    assert state.output["body"] == {"items": [1, 2, 3]}
    assert state.output["headers"]["Content-Type"] == "application/json"
    assert state.output["attempts"] == 1


def test_a_post_sends_json_with_templated_url_and_secret_header(server, run_flow, caplog):
    """{inputs.X} is percent-encoded in the URL; {secrets.token} reaches the server only."""
    server.script("/orders/a%2Fb%3Fx%3D1", Answer(201, {"ok": True}))
    definition = flow(
        {
            "kind": "http",
            "method": "POST",
            "url": server.url + "/orders/{inputs.order}",
            "headers": {"Authorization": "Bearer {secrets.token}"},
            "json": {"note": "hi"},
            "expect": [201],
        },
        inputs={"order": "a/b?x=1", "token": {"secret": True, "required": True}},
    )

    with caplog.at_level(logging.DEBUG, logger="spindle.http"):
        state = asyncio.run(run_flow(definition, inputs={"order": "a/b?x=1", "token": "tok-9"}))

    assert state.status == "completed", state.error
    (seen,) = server.requests_to("/orders/a%2Fb%3Fx%3D1")
    assert seen.method == "POST"
    assert seen.headers["Authorization"] == "Bearer tok-9"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.json() == {"note": "hi"}
    assert "tok-9" not in caplog.text
    assert "tok-9" not in json.dumps(state.output)


def test_a_secret_placeholder_on_an_input_not_declared_secret_fails_the_node(server, run_flow):
    """{secrets.X} for a plain input fails, saying to declare it secret or write {inputs.X}."""
    definition = flow(
        {"kind": "http", "url": server.url + "/x", "headers": {"X-Api-Key": "{secrets.key}"}},
        inputs={"key": "plain"},
    )

    state = asyncio.run(run_flow(definition))

    assert state.status == "failed"
    assert "{secrets.key} names input 'key', which is not declared secret" in state.error
    assert server.seen == []


def test_a_5xx_is_retried_inside_the_node(server, run_flow):
    """503 then 200: the node completes on its second attempt of the request."""
    server.script("/flaky", Answer(503, "busy"), Answer(200, "fine"))

    state = asyncio.run(
        run_flow(flow({"kind": "http", "url": server.url + "/flaky", "backoff": 0.01}))
    )

    assert state.status == "completed", state.error
    assert (state.output["body"], state.output["attempts"]) == ("fine", 2)


def test_an_unexpected_status_fails_the_node_with_a_clear_message(server, run_flow):
    """A 404 fails the node, naming the node, the request, the status and the body."""
    server.script("/nope", Answer(404, {"error": "gone"}))

    state = asyncio.run(run_flow(flow({"kind": "http", "url": server.url + "/nope"})))

    assert state.status == "failed"
    assert f"node 'call': GET {server.url}/nope answered 404" in state.error
    assert "gone" in state.error


def test_a_durable_node_retry_can_take_over_from_the_in_task_retries(server, run_flow):
    """retries: 0 plus the node's retry policy on HttpStatusError: the engine retries it."""
    server.script("/later", Answer(500, "no"), Answer(200, {"ok": 1}))
    definition = flow(
        {"kind": "http", "url": server.url + "/later", "retries": 0},
        retry={"max_attempts": 2, "backoff": 0.01, "retry_on": ["HttpStatusError"]},
    )

    state = asyncio.run(run_flow(definition))

    assert state.status == "completed", state.error
    assert state.output["body"] == {"ok": 1}


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        ({"url": "ftp://x"}, "http url must start with http:// or https://, got 'ftp://x'"),
        (
            {"url": "http://x", "method": "POST", "json": {}, "body": "b"},
            "http takes a 'json' body or a text 'body', not both",
        ),
        ({"url": "http://x", "body": "b"}, "http GET sends no body; use POST, PUT or PATCH"),
        ({"url": "http://x", "retries": -1}, "http retries must be 0 or more, got -1"),
        ({"url": "http://x", "timeout": 0}, "http timeout must be positive, got 0"),
        ({"url": "http://x", "expect": [42]}, "http status 42 is not an HTTP status (100-599)"),
        ({"url": "http://x/{nope}"}, "unknown placeholder '{nope}' in 'http://x/{nope}'"),
        ({"url": "http://x/{a:>3}"}, "has a format spec or conversion"),
        ({"url": "http://x/{"}, "malformed template"),
    ],
)
def test_bad_options_are_refused_when_the_workflow_loads(spindle_registry, runtime, expected):
    """check() reports each impossible option at load time, under the node's path (in a
    registry holding only the kind: loading needs nothing else)."""
    spindle_registry.register(HttpRuntime)

    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(flow({"kind": "http", **runtime}), registry=spindle_registry)

    assert expected in str(info.value)
    assert "nodes.call" in str(info.value)


def test_a_misspelt_or_mistyped_option_names_the_field(registry):
    """Options are typed attrs fields: an unknown or wrongly typed one is named with its path."""
    bad = flow({"kind": "http", "url": "http://x", "retrys": 3, "timeout": "soon"})

    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(bad, registry=registry)

    text = str(info.value)
    assert "unknown field 'retrys'" in text
    assert "@ nodes.call.runtime.retrys" in text
    assert "@ nodes.call.runtime.timeout" in text


def test_a_method_outside_the_list_is_refused(registry):
    """method is a Literal: 'FETCH' is refused, naming the allowed methods."""
    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(
            flow({"kind": "http", "url": "http://x", "method": "FETCH"}), registry=registry
        )

    assert "@ nodes.call.runtime.method" in str(info.value)
    assert "GET" in str(info.value)


def test_json_strings_are_templates_and_select_picks_the_result(server, run_flow):
    """A price read by one node goes into the next one's JSON body as a number; select:
    body.id makes the created id the second node's whole result."""
    server.script("/catalog/widget", Answer(200, {"name": "widget", "price": 3.5}))
    server.script("/orders", Answer(201, {"id": "ord-1"}))
    definition = {
        "name": "shop",
        "inputs": {"item": "widget"},
        "nodes": {
            "catalog": {
                "runtime": {"kind": "http", "url": server.url + "/catalog/{inputs.item}"},
            },
            "order": {
                "runtime": {
                    "kind": "http",
                    "method": "POST",
                    "url": server.url + "/orders",
                    "json": {"item": "{inputs.item}", "price": "{listing.body.price}", "n": 2},
                    "select": "body.id",
                },
                "inputs": {"listing": "catalog"},
            },
        },
        "output": "order",
    }

    state = asyncio.run(run_flow(definition))

    assert state.status == "completed", state.error
    assert state.output == "ord-1"
    assert server.requests_to("/orders")[0].json() == {"item": "widget", "price": 3.5, "n": 2}


def test_a_select_path_the_response_lacks_fails_the_node(server, run_flow):
    """select: body.id on a body without id fails, naming the missing part."""
    server.script("/x", Answer(200, {"name": "n"}))

    state = asyncio.run(
        run_flow(flow({"kind": "http", "url": server.url + "/x", "select": "body.id"}))
    )

    assert state.status == "failed"
    assert """select 'body.id': no 'id' in the response.body ({"name": "n"})""" in state.error


def test_a_dotted_placeholder_into_a_missing_key_fails_before_sending(server, run_flow):
    """{item.nope} where the node input has no 'nope': the node fails and nothing is sent."""
    definition = flow(
        {"kind": "http", "url": server.url + "/x/{item.nope}"},
        inputs={"thing": {"default": {"a": 1}}},
    )
    definition["nodes"]["call"]["inputs"] = {"item": "inputs.thing"}

    state = asyncio.run(run_flow(definition))

    assert state.status == "failed"
    assert """a placeholder names nothing: no 'nope' in item ({"a": 1})""" in state.error
    assert server.seen == []


def test_a_placeholder_that_starts_the_url_is_its_base_and_is_not_encoded(server, run_flow):
    """{inputs.base}/items/{inputs.q}: the base goes in as it is, the later value encoded."""
    server.script("/items/a%20b%2Fc", Answer(200, {"ok": True}))
    definition = flow(
        {"kind": "http", "url": "{inputs.base}/items/{inputs.q}"},
        inputs={"base": server.url, "q": "a b/c"},
    )

    state = asyncio.run(run_flow(definition))

    assert state.status == "completed", state.error
    assert [s.path for s in server.seen] == ["/items/a%20b%2Fc"]


def test_a_base_that_is_not_http_fails_the_node_before_sending(run_flow):
    """{inputs.base} = 'file:///etc': refused at run time, naming the URL and the template."""
    definition = flow({"kind": "http", "url": "{inputs.base}/x"}, inputs={"base": "file:///etc"})

    state = asyncio.run(run_flow(definition))

    assert state.status == "failed"
    assert "the URL 'file:///etc/x' does not start with http:// or https://" in state.error


def test_the_request_can_run_in_another_process(server, run_flow):
    """executor: subprocess pickles the prepared call to a fresh interpreter: it works there."""
    server.script("/far", Answer(503, "busy"), Answer(200, {"pid": "elsewhere"}))
    definition = flow(
        {"kind": "http", "url": server.url + "/far", "backoff": 0.01},
        executor={"kind": "subprocess"},
    )

    state = asyncio.run(run_flow(definition))

    assert state.status == "completed", state.error
    assert (state.output["body"], state.output["attempts"]) == ({"pid": "elsewhere"}, 2)


def test_the_guide_s_run_workflow_example(server, run_workflow):
    """The plugin guide's example, as written there: run_workflow with Registry.for_testing."""
    registry = Registry.for_testing(
        [HttpRuntime, HttpPollHandler, WebhookObserver, RateLimitMiddleware]
    )
    server.script("/items", Answer(200, {"items": []}))
    definition = {
        "name": "get",
        "nodes": {"fetch": {"runtime": {"kind": "http", "url": server.url + "/items"}}},
        "output": "fetch",
    }
    result = run_workflow(definition, registry=registry)
    assert result.status == "completed"
    assert result.output["status"] == 200
