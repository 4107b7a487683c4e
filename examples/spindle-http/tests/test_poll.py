"""The ``http_poll`` effect: polls on a durable timer, gives up, and survives a restart."""

from __future__ import annotations

import asyncio

import pytest
from spindle import Engine, Settings, StepKind, ValidationError, Workflow

from conftest import Answer
from spindle_http import HttpPollHandler

RUNNING = Answer(200, {"job": {"state": "running"}})
DONE = Answer(200, {"job": {"state": "done", "url": "/out/7"}})


def poll_flow(url: str, **options: object) -> dict:
    """A workflow whose one node polls ``url`` until job.state is "done"."""
    effect = {"kind": "http_poll", "url": url, "field": "job.state", "equals": "done"}
    return {
        "name": "poll",
        "nodes": {"ready": {"effect": {**effect, "interval": 0.01, **options}}},
        "output": "ready",
    }


def test_the_node_completes_once_the_field_has_the_value(server, run_flow):
    """running, running, done: three polls, the last body is the node's result."""
    server.script("/jobs/7", RUNNING, RUNNING, DONE)

    state = asyncio.run(run_flow(poll_flow(server.url + "/jobs/7")))

    assert state.status == "completed", state.error
    assert state.output == {"status": 200, "body": DONE.body, "polls": 3}
    assert len(server.requests_to("/jobs/7")) == 3


def test_the_url_is_a_template_of_the_node_inputs(server, run_flow):
    """{job} names a node input: the engine fills it in before the handler polls."""
    server.script("/jobs/42", DONE)
    definition = poll_flow(server.url + "/jobs/{job}")
    definition["inputs"] = {"job": 42}
    definition["nodes"]["ready"]["inputs"] = {"job": "inputs.job"}

    state = asyncio.run(run_flow(definition))

    assert state.status == "completed", state.error
    assert state.output["polls"] == 1


def test_without_a_field_the_status_decides(server, run_flow):
    """until_status [204]: 202s are "not yet", the first 204 completes the node."""
    server.script("/q", Answer(202, "queued"), Answer(204, ""))
    definition = poll_flow(server.url + "/q", until_status=[204])
    del definition["nodes"]["ready"]["effect"]["field"]
    del definition["nodes"]["ready"]["effect"]["equals"]

    state = asyncio.run(run_flow(definition))

    assert state.status == "completed", state.error
    assert (state.output["status"], state.output["polls"]) == (204, 2)


def test_it_gives_up_after_max_polls_saying_what_it_saw(server, run_flow):
    """Still running at poll 3 of 3: the node fails, naming the URL, the count and the value."""
    server.script("/jobs/7", RUNNING)

    state = asyncio.run(run_flow(poll_flow(server.url + "/jobs/7", max_polls=3)))

    assert state.status == "failed"
    assert (
        f"http_poll gave up on {server.url}/jobs/7 after 3 poll(s): "
        f"status 200, job.state='running'" in state.error
    )
    assert "raise max_polls or interval" in state.error


def test_a_refused_connection_counts_as_not_yet(dead_url, run_flow):
    """Nothing listens: every poll is "not yet" and the message says there was no answer."""
    state = asyncio.run(run_flow(poll_flow(dead_url + "/jobs/7", max_polls=2)))

    assert state.status == "failed"
    assert "after 2 poll(s): no answer (" in state.error
    assert "ConnectionRefusedError" in state.error


def test_the_wait_is_durable_across_a_restart(server, registry, spindle_config):
    """A first engine polls once and stops with the run waiting (its timer is not due
    within max_inline_sleep=0); a new engine on the same SQLite file continues it: the
    poll count goes on from the ledger, and the node completes at poll 3."""
    server.script("/jobs/7", RUNNING, RUNNING, DONE)
    store = f"sqlite:///{spindle_config.path / 'spindle.db'}"
    workflow = Workflow.from_dict(
        poll_flow(server.url + "/jobs/7", interval=0.05, backoff=1), registry=registry
    )
    runs = str(spindle_config.path / "runs")

    async def first() -> str:
        settings = Settings(runs_dir=runs, max_inline_sleep=0)
        async with Engine(store, settings=settings, registry=registry) as engine:
            state = await engine.run(workflow)
        assert state.status == "waiting"
        assert [(w.key, w.reason.value) for w in state.waits] == [("ready:poll1", "retry")]
        assert state.waits[0].due_at is not None
        return state.run_id

    async def second(run_id: str) -> tuple[object, list[str]]:
        async with Engine(store, settings=Settings(runs_dir=runs), registry=registry) as engine:
            state = await engine.drive(run_id)
            ledger = await engine.store.ledger(run_id)
        waits = [r.result["key"] for r in ledger if r.kind == StepKind.WAIT]
        return state, waits

    run_id = asyncio.run(first())
    assert len(server.requests_to("/jobs/7")) == 1
    state, waits = asyncio.run(second(run_id))

    assert state.status == "completed", state.error
    assert state.output["polls"] == 3
    assert waits == ["ready:poll1", "ready:poll2"]
    assert len(server.requests_to("/jobs/7")) == 3


def test_max_polls_holds_across_a_restart(server, registry, spindle_config):
    """max_polls=2: one poll before the restart, one after, then the node fails."""
    server.script("/jobs/7", RUNNING)
    store = f"sqlite:///{spindle_config.path / 'spindle.db'}"
    workflow = Workflow.from_dict(
        poll_flow(server.url + "/jobs/7", max_polls=2, interval=0.05), registry=registry
    )
    runs = str(spindle_config.path / "runs")

    async def main() -> object:
        settings = Settings(runs_dir=runs, max_inline_sleep=0)
        async with Engine(store, settings=settings, registry=registry) as engine:
            run_id = (await engine.run(workflow)).run_id
        async with Engine(store, settings=Settings(runs_dir=runs), registry=registry) as engine:
            return await engine.drive(run_id)

    state = asyncio.run(main())

    assert state.status == "failed"
    assert "after 2 poll(s)" in state.error
    assert len(server.requests_to("/jobs/7")) == 2


def test_the_delays_grow_by_backoff_up_to_max_interval(registry):
    """interval * backoff ** (n-1), capped: 1, 2, 4, 5, 5."""
    wf = Workflow.from_dict(
        poll_flow("http://x", interval=1, backoff=2, max_interval=5), registry=registry
    )
    handler = wf.nodes["ready"].effect

    assert [handler.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"url": "file:///etc/passwd"}, "http_poll url must start with http:// or https://"),
        ({"interval": 0}, "interval and timeout must be positive"),
        ({"backoff": 0.5}, "http_poll backoff must be 1 or more, got 0.5"),
        ({"max_interval": 0.001}, "max_interval (0.001) is shorter than interval (0.01)"),
        ({"max_polls": 0}, "http_poll max_polls must be at least 1, got 0"),
        ({"until_status": []}, "until_status must list at least one status"),
        ({"field": "job..state"}, "http_poll field 'job..state' has an empty part"),
        ({"url": "http://x/{nope}"}, "nope"),
        ({"intervall": 3}, "unknown field 'intervall'"),
    ],
)
def test_bad_options_are_refused_when_the_workflow_loads(spindle_registry, options, expected):
    """Each impossible option is reported at load time under the node's path (in a
    registry holding only the kind)."""
    spindle_registry.register(HttpPollHandler)
    definition = poll_flow("http://x")
    definition["nodes"]["ready"]["effect"].update(options)

    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(definition, registry=spindle_registry)

    assert expected in str(info.value)
    assert "nodes.ready" in str(info.value)


def test_a_task_can_poll_mid_function(server, run_flow):
    """ctx.effect("http_poll", ...) from a Python task: the task waits and is run again
    after each timer, and gets the result once the condition holds."""
    server.script("/job", Answer(200, {"done": False}), Answer(200, {"done": True}))
    code = (
        f"r = ctx.effect('http_poll', url='{server.url}/job', field='done', interval=0.01)\n"
        "result = r['polls']"
    )
    definition = {
        "name": "mid",
        "nodes": {"a": {"runtime": {"kind": "python_code", "code": code}}},
        "output": "a",
    }

    state = asyncio.run(run_flow(definition))

    assert (state.status, state.output) == ("completed", 2), state.error


def test_a_base_url_input_that_is_not_http_fails_the_node(run_flow):
    """{inputs.base} filled with 'ftp://x': the node fails saying what the URL is."""
    definition = poll_flow("{inputs.base}/job")
    definition["inputs"] = {"base": "ftp://x"}

    state = asyncio.run(run_flow(definition))

    assert state.status == "failed"
    assert "http_poll url 'ftp://x/job' does not start with http:// or https://" in state.error


def test_a_body_without_the_field_is_not_ready_and_says_so(server, run_flow):
    """A JSON body without job.state: "not yet", and the final message names what is missing."""
    server.script("/jobs/7", Answer(200, {"job": {}}))

    state = asyncio.run(run_flow(poll_flow(server.url + "/jobs/7", max_polls=1)))

    assert state.status == "failed"
    assert "after 1 poll(s): status 200, no 'state' in the body.job ({})" in state.error
