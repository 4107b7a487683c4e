"""SyncEngine: the blocking face of the engine, with and without a running event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from spindle import ObserverBinding, RunNotFound, RunStatus, WaitKeyMismatch, Workflow
from spindle.core.engine import SyncEngine


class ObserverDown(Exception):
    """Raised by a required observer, to see it reach the caller as itself."""


def greeting() -> Workflow:
    wf = Workflow("greet", inputs={"who": "world"})

    @wf.node
    def hello(who: str) -> str:
        return f"hello {who}"

    wf.output = "hello"
    return wf


def approval() -> Workflow:
    wf = Workflow("approval")
    wf.effect("approve", {"kind": "ask_user", "prompt": "Publish?", "choices": ["yes", "no"]})

    @wf.node
    def publish(approve: str) -> str:
        return f"answer={approve}"

    wf.output = "publish"
    return wf


def test_sync_engine_runs_a_workflow_without_an_event_loop(store_url, make_engine):
    """Called from plain sync code, SyncEngine runs a workflow to completion."""
    with SyncEngine(make_engine(store_url)) as engine:
        state = engine.run(greeting(), {"who": "Ada"})

    assert state.status == RunStatus.COMPLETED
    assert state.output == "hello Ada"


def test_sync_engine_runs_a_workflow_inside_a_running_event_loop(store_url, make_engine):
    """Called from code that runs an event loop, SyncEngine runs a workflow to completion."""

    async def main():
        with SyncEngine(make_engine(store_url)) as engine:
            return engine.run(greeting(), {"who": "Ada"})

    state = asyncio.run(main())

    assert state.status == RunStatus.COMPLETED
    assert state.output == "hello Ada"


def test_sync_engine_answers_a_wait_inside_a_running_event_loop(store_url, make_engine):
    """Inside a running loop, a run that waits is resumed and completes, on one reused loop."""

    async def main():
        with SyncEngine(make_engine(store_url)) as engine:
            wf = approval()
            waiting = engine.run(wf)
            done = engine.resume(waiting.run_id, "approve", "yes", workflow=wf)
            return waiting, done, engine.get_run(done.run_id)

    waiting, done, stored = asyncio.run(main())

    assert waiting.status == RunStatus.WAITING
    assert waiting.waits[0].key == "approve"
    assert done.status == RunStatus.COMPLETED
    assert done.output == "answer=yes"
    assert stored.status == RunStatus.COMPLETED


def test_sync_engine_reraises_failures_unchanged_inside_a_running_event_loop(
    store_url, make_engine
):
    """Inside a running loop, an engine error reaches the caller as the same exception type."""

    async def main():
        with SyncEngine(make_engine(store_url)) as engine:
            wf = approval()
            waiting = engine.run(wf)
            with pytest.raises(WaitKeyMismatch, match="not waiting on 'nope'"):
                engine.resume(waiting.run_id, "nope", "yes", workflow=wf)
            with pytest.raises(RunNotFound):
                engine.get_run("no-such-run")

    asyncio.run(main())


def test_sync_engine_reraises_a_failure_raised_mid_run_inside_a_running_event_loop(
    store_url, make_engine
):
    """Inside a running loop, an exception raised while a run is driven reaches the caller as is."""

    class Broken:
        async def on_event(self, event):
            if event.type.value == "node_completed":
                raise ObserverDown("observer down")

    async def main():
        observers = [ObserverBinding(Broken(), required=True)]
        with (
            SyncEngine(make_engine(store_url, observers=observers)) as engine,
            pytest.raises(ObserverDown, match="observer down"),
        ):
            engine.run(greeting())

    asyncio.run(main())


def test_sync_engine_stops_its_helper_thread_on_close(make_engine):
    """close() stops the helper thread started for a caller inside a running loop."""

    def helpers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "spindle-sync-engine"]

    async def main():
        engine = SyncEngine(make_engine("memory://"))
        engine.run(greeting())
        running = helpers()
        engine.close()
        return running

    running = asyncio.run(main())

    assert len(running) == 1
    assert helpers() == []


def test_a_closed_sync_engine_refuses_calls_and_closes_again_quietly(make_engine):
    """After close(), a call raises RuntimeError saying so, and close() again does nothing."""
    engine = SyncEngine(make_engine("memory://"))
    engine.run(greeting())
    engine.close()

    engine.close()
    with pytest.raises(RuntimeError, match="SyncEngine is closed"):
        engine.run(greeting())
