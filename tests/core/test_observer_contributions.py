"""What an observer may give back: labels kept with a run, environment for a node's process.

These are the engine's side of the ``otel`` observer's trace context (see
``tests/contrib/test_otel.py``), checked with plain observers and no
OpenTelemetry.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from typing import Any

from spindle import Workflow
from spindle.core.model import LifecycleEventType, RunLifecycleEvent, RunStatus
from spindle.plugins.executors._child import call_in_worker
from tests.core.conftest import run


class Contributor:
    """Keeps a label with each run it sees start, and gives every node an env variable."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, str]]] = []
        self.events: list[RunLifecycleEvent] = []

    async def on_event(self, event: RunLifecycleEvent) -> None:
        self.events.append(event)

    def run_labels(
        self, event: RunLifecycleEvent, workflow: str, labels: Mapping[str, str]
    ) -> Mapping[str, str]:
        self.asked.append((event.type.value, workflow, dict(labels)))
        return {} if "seen" in labels else {"seen": f"{workflow}:{event.type.value}"}

    def task_env(self, run_id: str, node_id: str) -> Mapping[str, str]:
        return {"CONTRIBUTED": f"{run_id}/{node_id}"}


def test_labels_an_observer_returns_are_stored_with_the_run(store_url, make_engine):
    """The labels an observer's run_labels returns for run_started are in the run's
    stored state; a resume asks again with them and keeps them."""
    wf = Workflow("labelled")
    wf.effect("gate", {"kind": "wait_event", "key": "go"})
    contributor = Contributor()

    async def main() -> Any:
        async with make_engine(store_url, observers=[contributor]) as engine:
            waiting = await engine.run(wf, labels={"team": "ops"})
            stored = await engine.store.load_run(waiting.run_id)
            done = await engine.resume(waiting.run_id, "gate", 1)
            return stored, await engine.store.load_run(done.run_id)

    stored, done = run(main())
    assert stored.status == RunStatus.WAITING
    assert stored.labels == {"team": "ops", "seen": "labelled:run_started"}
    assert done.status == RunStatus.COMPLETED
    assert done.labels == stored.labels
    assert contributor.asked == [
        ("run_started", "labelled", {"team": "ops"}),
        ("run_resumed", "labelled", {"team": "ops", "seen": "labelled:run_started"}),
    ]


def test_an_observers_task_env_is_in_a_subprocess_commands_environment(tmp_path, make_engine):
    """What an observer's task_env returns for a node is in the environment of the
    command the subprocess executor starts for it, under the node's own variables."""
    wf = Workflow("env")
    wf.task(
        "show",
        {"kind": "command", "command": 'printf %s "$CONTRIBUTED"'},
        executor={"kind": "subprocess"},
    )
    wf.output = "show"

    async def main() -> Any:
        async with make_engine("memory://", observers=[Contributor()]) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == f"{state.run_id}/show"


def test_a_pool_call_sees_the_contributed_env_only_while_it_runs():
    """A worker call sets the request's env in os.environ for the call and restores
    what was there after it, so the worker's next call does not see it."""
    os.environ.pop("SPINDLE_TEST_CONTRIBUTED", None)
    request = {
        "reference": "os:getenv",
        "kwargs": {"key": "SPINDLE_TEST_CONTRIBUTED"},
        "sys_path": [],
        "is_async": False,
        "env": {"SPINDLE_TEST_CONTRIBUTED": "00-abc"},
    }
    assert call_in_worker(pickle.dumps(request)) == ("value", "00-abc")
    assert "SPINDLE_TEST_CONTRIBUTED" not in os.environ


def test_a_failing_contribution_is_logged_and_the_run_goes_on(make_engine, caplog):
    """An observer whose run_labels raises and whose task_env returns no mapping of
    strings is logged by name; the run completes with no label added."""

    class Broken:
        name = "broken"

        async def on_event(self, event: RunLifecycleEvent) -> None:
            return None

        def run_labels(self, event: RunLifecycleEvent, workflow: str, labels: Any) -> Any:
            raise RuntimeError("no labels today")

        def task_env(self, run_id: str, node_id: str) -> Any:
            return {"N": 1}

    wf = Workflow("sturdy")
    wf.task("show", {"kind": "command", "command": "echo ok"}, executor={"kind": "subprocess"})
    wf.output = "show"

    async def main() -> Any:
        async with make_engine("memory://", observers=[Broken()]) as engine:
            return await engine.run(wf)

    with caplog.at_level(logging.WARNING, logger="spindle.observers"):
        state = run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.labels == {}
    messages = [r.getMessage() for r in caplog.records]
    assert any("broken failed in run_labels" in m and "no labels today" in m for m in messages)
    assert any(
        "broken failed in task_env" in m and "must return a mapping of str to str" in m
        for m in messages
    )


def test_run_labels_is_asked_only_for_run_started_and_resumed(make_engine):
    """Node events never ask for labels: the contribution is made once per drive."""
    wf = Workflow("once")

    @wf.node
    def a() -> int:
        return 1

    contributor = Contributor()

    async def main() -> Any:
        async with make_engine("memory://", observers=[contributor]) as engine:
            return await engine.run(wf)

    run(main())
    assert [kind for kind, _, _ in contributor.asked] == ["run_started"]
    assert LifecycleEventType.NODE_COMPLETED in {e.type for e in contributor.events}
