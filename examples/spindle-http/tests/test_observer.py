"""The ``webhook`` observer: posts, filters, retries, a dead endpoint, a full queue, config."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from spindle import Engine, LifecycleEventType, RunLifecycleEvent, SpindleError

from conftest import Answer
from spindle_http import WebhookObserver

ONE_NODE = {
    "name": "one",
    "nodes": {"a": {"runtime": {"kind": "python_code", "code": "result = 41 + 1"}}},
    "output": "a",
}


def event(n: int, type: str = "node_started") -> RunLifecycleEvent:
    return RunLifecycleEvent(
        f"e{n}", "run-1", LifecycleEventType(type), n, datetime(2026, 1, 1, tzinfo=UTC), "a"
    )


def test_selected_events_are_posted_in_order(server, run_flow):
    """events=[run_started, run_completed]: exactly those two, as JSON, in sequence order."""
    server.script("/events", Answer(204, ""))
    hook = WebhookObserver(url=server.url + "/events", events=["run_started", "run_completed"])

    state = asyncio.run(run_flow(ONE_NODE, observers=(hook,)))

    docs = [s.json() for s in server.requests_to("/events")]
    assert [d["type"] for d in docs] == ["run_started", "run_completed"]
    assert {d["run_id"] for d in docs} == {state.run_id}
    assert docs[0]["sequence"] < docs[1]["sequence"]
    assert set(docs[0]) == {
        "event_id",
        "type",
        "run_id",
        "node_id",
        "sequence",
        "occurred_at",
        "payload",
    }
    assert server.requests_to("/events")[0].headers["Content-Type"] == "application/json"
    assert (hook.posted, hook.dropped) == (2, 0)


def test_a_failing_post_is_retried_with_backoff(server, run_flow):
    """A 503 from the endpoint: the same event is posted again, and then counts as posted."""
    server.script("/events", Answer(503, "busy"), Answer(200, {}))
    hook = WebhookObserver(url=server.url + "/events", events=["run_completed"], backoff=0.01)

    asyncio.run(run_flow(ONE_NODE, observers=(hook,)))

    docs = [s.json() for s in server.requests_to("/events")]
    assert [d["type"] for d in docs] == ["run_completed", "run_completed"]
    assert docs[0]["event_id"] == docs[1]["event_id"]
    assert (hook.posted, hook.dropped) == (1, 0)


def test_a_dead_endpoint_never_holds_up_or_fails_a_run(dead_url, run_flow, caplog):
    """Nothing listens: the run completes with its output; each event is dropped with a warning."""
    hook = WebhookObserver(url=dead_url + "/events", retries=1, backoff=0.01)

    with caplog.at_level(logging.WARNING, logger="spindle.http"):
        state = asyncio.run(run_flow(ONE_NODE, observers=(hook,)))

    assert (state.status, state.output) == ("completed", 42)
    assert hook.posted == 0
    assert hook.dropped >= 4  # run_started, node_started, node_completed, run_completed
    assert "webhook: dropped run_completed" in caplog.text
    assert "ConnectionRefusedError" in caplog.text


def test_a_full_queue_drops_new_events_with_a_warning(server, caplog):
    """queue_size=1: a second event queued before the first is sent is dropped and logged;
    aclose still delivers the first."""
    server.script("/events", Answer(200, {}))
    hook = WebhookObserver(url=server.url + "/events", queue_size=1)

    async def main() -> None:
        await hook.on_event(event(1))
        await hook.on_event(event(2))  # no await point in between: the sender has not run
        await hook.aclose()

    with caplog.at_level(logging.WARNING, logger="spindle.http"):
        asyncio.run(main())

    assert [s.json()["event_id"] for s in server.requests_to("/events")] == ["e1"]
    assert (hook.posted, hook.dropped) == (1, 1)
    assert "queue full (1 events); dropped node_started of run run-1" in caplog.text


def test_aclose_gives_up_after_flush_timeout(dead_url, caplog):
    """An endpoint that never answers cannot keep the engine from closing: flush_timeout=0."""
    hook = WebhookObserver(url=dead_url, retries=50, backoff=0.05, flush_timeout=0)

    async def main() -> None:
        for n in range(3):
            await hook.on_event(event(n))
        await hook.aclose()

    with caplog.at_level(logging.WARNING, logger="spindle.http"):
        asyncio.run(main())

    assert hook.posted == 0
    assert hook.dropped == 3
    assert "3 event(s) not posted within flush_timeout=0s; dropped" in caplog.text


def test_events_not_selected_are_never_queued(server):
    """An event type outside events= starts nothing and posts nothing."""
    hook = WebhookObserver(url=server.url + "/events", events=["run_failed"])

    async def main() -> None:
        await hook.on_event(event(1, "run_completed"))
        await hook.aclose()

    asyncio.run(main())

    assert server.seen == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"events": ["run_complete"]}, "unknown event type(s) run_complete; known: audit"),
        ({"url": "ftp://x"}, "webhook url must start with http:// or https://"),
        ({"timeout": 0}, "timeout must be positive, got 0"),
        ({"retries": "3"}, "@ observers[0].retries"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_a_bad_observer_entry_in_spindle_toml_is_reported(
    spindle_config, registry, options, expected
):
    """[[observers]] kind = "webhook" with a bad option fails the engine's start, saying why."""
    spindle_config.write(
        store="memory://",
        observers=[{"kind": "webhook", "url": "http://127.0.0.1:9/e", **options}],
    )

    with pytest.raises(SpindleError) as info:
        Engine.from_config(registry=registry)

    assert expected in str(info.value)


def test_a_webhook_bound_in_spindle_toml_hears_the_run(spindle_config, registry, server):
    """The way users bind it: [[observers]] in spindle.toml, then Engine.from_config."""
    from spindle import Workflow

    server.script("/events", Answer(200, {}))
    spindle_config.write(
        store="memory://",
        runs_dir="runs",
        observers=[{"kind": "webhook", "url": server.url + "/events", "events": ["run_completed"]}],
    )

    async def main() -> str:
        async with Engine.from_config(registry=registry) as engine:
            state = await engine.run(Workflow.from_dict(ONE_NODE, registry=registry))
            return state.run_id

    run_id = asyncio.run(main())

    docs = [s.json() for s in server.requests_to("/events")]
    assert [(d["type"], d["run_id"]) for d in docs] == [("run_completed", run_id)]
