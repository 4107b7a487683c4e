"""What lifecycle events say about their run beyond its id: the workflow's name, what
kind of node an event is about, and why a waiting run waits."""

from __future__ import annotations

from spindle import LifecycleEventType, RunLifecycleEvent, Workflow, converter
from spindle.core.engine import Engine
from spindle.plugins.stores.memory import MemoryStore

from .conftest import run


def _workflow() -> Workflow:
    wf = Workflow("labelled")

    @wf.node
    def first() -> int:
        return 1

    wf.task("shout", {"kind": "python_code", "code": "result = 'hi'"})
    wf.effect("approve", {"kind": "ask_user", "prompt": "ok?"}, after=["first", "shout"])
    return wf


def test_events_carry_the_workflow_name_and_the_kind_of_their_node(tmp_path):
    """Every event names its workflow; a node's events name its runtime or effect kind."""
    seen: list[RunLifecycleEvent] = []

    async def scenario():
        async with Engine(MemoryStore(), observers=[seen.append]) as engine:
            state = await engine.run(_workflow())
            await engine.resume(state.run_id, payload="yes")

    run(scenario())
    assert {e.workflow for e in seen} == {"labelled"}
    kinds = {(e.type, e.node_id): e.node_kind for e in seen if e.node_id is not None}
    assert kinds[(LifecycleEventType.NODE_STARTED, "first")] == "python"
    assert kinds[(LifecycleEventType.NODE_COMPLETED, "shout")] == "python_code"
    assert kinds[(LifecycleEventType.NODE_COMPLETED, "approve")] == "ask_user"
    assert all(e.node_kind is None for e in seen if e.node_id is None)


def test_a_waiting_event_names_the_reason_of_each_wait(tmp_path):
    """run_waiting's payload lists each open wait's reason beside its key."""
    seen: list[RunLifecycleEvent] = []

    async def scenario():
        async with Engine(MemoryStore(), observers=[seen.append]) as engine:
            await engine.run(_workflow())

    run(scenario())
    (waiting,) = [e for e in seen if e.type == LifecycleEventType.RUN_WAITING]
    assert waiting.payload["reasons"] == ["user"] and len(waiting.payload["waits"]) == 1


def test_an_event_built_by_hand_unstructures_without_the_new_keys():
    """An event without workflow or node kind reads as events did before they had them."""
    from datetime import UTC, datetime

    event = RunLifecycleEvent("e", "r", LifecycleEventType.RUN_STARTED, 1, datetime.now(UTC))
    assert set(converter.unstructure(event)) == {
        "event_id",
        "run_id",
        "type",
        "sequence",
        "occurred_at",
        "node_id",
        "payload",
    }
