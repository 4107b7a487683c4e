"""Observers: fan-out with required and optional bindings, and what counts as an observer."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from spindle import (
    CallbackObserver,
    CompositeObserver,
    LifecycleEventType,
    NullObserver,
    ObserverBinding,
    RunLifecycleEvent,
    RunObserver,
    ensure_observer,
)


def event(type_=LifecycleEventType.NODE_COMPLETED, seq=1):
    return RunLifecycleEvent(
        event_id=f"e{seq}",
        run_id="run-1",
        type=type_,
        sequence=seq,
        occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
        node_id="hello",
    )


class Recorder:
    def __init__(self, name="recorder", log=None):
        self.name = name
        self.log = log if log is not None else []

    async def on_event(self, e):
        self.log.append((self.name, e.event_id))


class Failing:
    name = "failing"

    def __init__(self, message="observer broke"):
        self.message = message

    async def on_event(self, e):
        raise RuntimeError(self.message)


def test_events_reach_every_binding_in_order():
    """CompositeObserver delivers each event to every binding in binding order."""
    log = []
    composite = CompositeObserver.of([Recorder("a", log), Recorder("b", log)])

    asyncio.run(composite.on_event(event()))

    assert log == [("a", "e1"), ("b", "e1")]


def test_required_failure_propagates_after_dispatch():
    """A required observer's failure is raised, after the other observers got the event."""
    log = []
    composite = CompositeObserver(
        [
            ObserverBinding(Failing(), required=True),
            ObserverBinding(Recorder("after", log)),
        ]
    )

    with pytest.raises(RuntimeError, match="observer broke"):
        asyncio.run(composite.on_event(event()))

    assert log == [("after", "e1")]


def test_first_required_failure_wins():
    """With several required failures, the first one is raised."""
    composite = CompositeObserver(
        [
            ObserverBinding(Failing("first"), required=True),
            ObserverBinding(Failing("second"), required=True),
        ]
    )

    with pytest.raises(RuntimeError, match="first"):
        asyncio.run(composite.on_event(event()))


def test_optional_failure_is_logged_and_dispatch_continues(caplog):
    """An optional observer's failure is logged with its name and the event type."""
    log = []
    composite = CompositeObserver.of([Failing(), Recorder("after", log)])

    with caplog.at_level(logging.WARNING, logger="spindle.observers"):
        asyncio.run(composite.on_event(event(LifecycleEventType.RUN_WAITING)))

    assert log == [("after", "e1")]
    [record] = caplog.records
    assert "failing" in record.getMessage()
    assert "run_waiting" in record.getMessage()
    assert "observer broke" in record.getMessage()


def test_add_binds_one_more_observer():
    """add() appends a binding, required or not."""
    composite = CompositeObserver()
    assert not composite.active

    composite.add(Failing(), required=True)

    assert composite.active
    with pytest.raises(RuntimeError):
        asyncio.run(composite.on_event(event()))


def test_null_observers_are_dropped():
    """CompositeObserver.of drops None/NullObserver so an engine with none builds no events."""
    composite = CompositeObserver.of([None, NullObserver()])

    assert not composite.active


def test_binding_name_defaults_to_observer_name_or_class():
    """A binding is named after the observer's `name`, else its class."""

    class Anonymous:
        async def on_event(self, e):
            pass

    assert ObserverBinding(Recorder("mine")).name == "mine"
    assert ObserverBinding(Anonymous()).name.endswith("Anonymous")


async def collect_async(e):
    SEEN.append(("async", e.event_id))


def collect_sync(e):
    SEEN.append(("sync", e.event_id))


SEEN: list[tuple[str, str]] = []


@pytest.fixture
def seen():
    """What the module-level collecting functions received."""
    SEEN.clear()
    yield SEEN
    SEEN.clear()


@pytest.mark.parametrize("fn", [collect_async, collect_sync], ids=["async", "sync"])
def test_a_binding_of_a_plain_function_delivers_every_event(fn, seen):
    """ObserverBinding(fn) with a plain function (async or sync) calls it for each event."""
    composite = CompositeObserver([ObserverBinding(fn)])

    asyncio.run(composite.on_event(event(seq=1)))
    asyncio.run(composite.on_event(event(seq=2)))

    assert [event_id for _, event_id in seen] == ["e1", "e2"]


def test_a_binding_of_a_plain_function_is_named_after_its_qualname():
    """A binding of a function wraps it in a CallbackObserver named after its qualname."""
    binding = ObserverBinding(collect_async, required=True)

    assert isinstance(binding.observer, CallbackObserver)
    assert binding.observer.callback is collect_async
    assert binding.name == "collect_async"
    assert binding.required


def test_a_required_binding_of_a_plain_function_propagates_its_failure():
    """A required binding of a raising function raises its error from dispatch."""

    def broken(e):
        raise RuntimeError("callback broke")

    composite = CompositeObserver([ObserverBinding(broken, required=True)])

    with pytest.raises(RuntimeError, match="callback broke"):
        asyncio.run(composite.on_event(event()))


def test_an_optional_binding_of_a_plain_function_logs_its_failure_by_name(caplog):
    """An optional binding of a raising function logs the function's qualname and the error."""

    def broken(e):
        raise RuntimeError("callback broke")

    composite = CompositeObserver([ObserverBinding(broken)])

    with caplog.at_level(logging.WARNING, logger="spindle.observers"):
        asyncio.run(composite.on_event(event()))

    [record] = caplog.records
    assert "broken" in record.getMessage()
    assert "callback broke" in record.getMessage()


def test_a_binding_of_something_else_raises_type_error():
    """ObserverBinding of neither an observer nor a callable raises TypeError naming both."""
    with pytest.raises(TypeError, match=r"observer .*on_event.*callable"):
        ObserverBinding(42)


def test_aclose_closes_every_observer_even_if_one_fails(caplog):
    """aclose() closes each observer; one failing to close is logged, the rest still close."""
    closed = []

    class Closing(Recorder):
        async def aclose(self):
            if self.name == "bad":
                raise OSError("disk gone")
            closed.append(self.name)

    composite = CompositeObserver.of([Closing("bad"), Closing("good"), Recorder("no-aclose")])

    with caplog.at_level(logging.WARNING, logger="spindle.observers"):
        asyncio.run(composite.aclose())

    assert closed == ["good"]
    assert "bad" in caplog.text and "disk gone" in caplog.text


# --- ensure_observer ---------------------------------------------------------------


def test_ensure_observer_turns_none_into_a_null_observer():
    """None becomes a NullObserver."""
    assert isinstance(ensure_observer(None), NullObserver)


def test_ensure_observer_keeps_observers():
    """An object with async on_event is returned as is."""
    rec = Recorder()

    assert ensure_observer(rec) is rec
    assert isinstance(rec, RunObserver)


def test_ensure_observer_wraps_a_sync_callable():
    """A plain function becomes a CallbackObserver that calls it."""
    seen = []
    obs = ensure_observer(seen.append)

    asyncio.run(obs.on_event(event()))

    assert isinstance(obs, CallbackObserver)
    assert [e.event_id for e in seen] == ["e1"]


def test_ensure_observer_awaits_an_async_callable():
    """An async function is awaited for each event."""
    seen = []

    async def collect(e):
        await asyncio.sleep(0)
        seen.append(e.event_id)

    asyncio.run(ensure_observer(collect).on_event(event()))

    assert seen == ["e1"]


def test_ensure_observer_rejects_other_objects():
    """Anything else raises TypeError saying what is accepted."""
    with pytest.raises(TypeError, match="on_event"):
        ensure_observer(42)


def test_an_engine_delivers_events_to_a_bound_plain_function(make_engine):
    """Engine(observers=[ObserverBinding(fn, required=True)]) calls fn for the run's events."""
    from spindle import RunStatus, Workflow

    types = []

    async def record(e):
        types.append(e.type.value)

    wf = Workflow("one")

    @wf.node
    def only() -> str:
        return "done"

    async def main():
        binding = ObserverBinding(record, required=True)
        async with make_engine("memory://", observers=[binding]) as engine:
            return await engine.run(wf)

    state = asyncio.run(main())

    assert state.status == RunStatus.COMPLETED
    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert "node_completed" in types
