"""The built-in observers: ``log`` and ``jsonl``."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest

from spindle import LifecycleEventType, Registry, RunLifecycleEvent, ValidationError
from spindle.plugins.observers.jsonl import JsonlObserver
from spindle.plugins.observers.log import LogObserver


def event(seq=1, type_=LifecycleEventType.NODE_COMPLETED, node="hello", payload=None):
    return RunLifecycleEvent(
        event_id=f"e{seq}",
        run_id="run-1",
        type=type_,
        sequence=seq,
        occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        node_id=node,
        payload=payload if payload is not None else {"result": "HELLO"},
    )


def test_builtin_observers_are_entry_points():
    """`log` and `jsonl` are found through spindle's own entry points."""
    reg = Registry()

    assert reg.get("observer", "log") is LogObserver
    assert reg.get("observer", "jsonl") is JsonlObserver


# --- log ---------------------------------------------------------------------------


def test_log_observer_logs_each_event(caplog):
    """Each event becomes one record with run id, type, node, sequence and payload."""
    obs = LogObserver()

    with caplog.at_level(logging.INFO, logger="spindle.events"):
        asyncio.run(obs.on_event(event()))
        asyncio.run(obs.on_event(event(2, LifecycleEventType.RUN_COMPLETED, node=None)))

    first, second = caplog.records
    assert first.levelno == logging.INFO
    assert first.getMessage() == "run run-1 node_completed node hello #1 {'result': 'HELLO'}"
    assert second.getMessage() == "run run-1 run_completed #2 {'result': 'HELLO'}"
    assert first.spindle_event.event_id == "e1"


def test_log_observer_uses_the_configured_level_and_logger(caplog):
    """level and logger choose where records go; the level name is case-insensitive."""
    obs = LogObserver(level="debug", logger="my.app.events")

    with caplog.at_level(logging.DEBUG, logger="my.app.events"):
        asyncio.run(obs.on_event(event()))

    [record] = caplog.records
    assert (record.name, record.levelno) == ("my.app.events", logging.DEBUG)


def test_log_observer_skips_disabled_levels(caplog):
    """Nothing is formatted when the logger does not log that level."""
    obs = LogObserver(level="DEBUG")

    with caplog.at_level(logging.WARNING, logger="spindle.events"):
        asyncio.run(obs.on_event(event()))

    assert caplog.records == []


def test_log_observer_logs_payloads_as_received(caplog):
    """The observer redacts nothing itself: payloads arrive already redacted."""
    obs = LogObserver()

    with caplog.at_level(logging.INFO, logger="spindle.events"):
        asyncio.run(obs.on_event(event(payload={"token": "***"})))

    assert "'token': '***'" in caplog.text


@pytest.fixture
def quiet_logger(request):
    """A logger of this test's own, whose parent logs only warnings."""
    parent = logging.getLogger(f"quiet{id(request)}")
    parent.setLevel(logging.WARNING)
    child = logging.getLogger(f"{parent.name}.events")
    yield child
    parent.setLevel(logging.NOTSET)
    child.setLevel(logging.NOTSET)


def test_log_observer_shows_its_records_under_a_warnings_only_parent(caplog, quiet_logger):
    """A log observer gives its logger its level, so its INFO records are emitted."""
    obs = LogObserver(logger=quiet_logger.name)

    with caplog.at_level(logging.INFO):  # the root logger, which the parent overrides
        asyncio.run(obs.on_event(event()))

    [record] = [r for r in caplog.records if r.name == quiet_logger.name]
    assert (record.name, record.levelno) == (quiet_logger.name, logging.INFO)
    assert quiet_logger.level == logging.INFO


def test_log_observer_keeps_a_level_the_application_set(caplog, quiet_logger):
    """A level set on the observer's logger beforehand is kept: that is how a host silences it."""
    quiet_logger.setLevel(logging.ERROR)
    obs = LogObserver(logger=quiet_logger.name)

    with caplog.at_level(logging.INFO):
        asyncio.run(obs.on_event(event()))

    assert caplog.records == []
    assert quiet_logger.level == logging.ERROR


def test_a_second_log_observer_at_a_lower_level_lowers_the_level(caplog, quiet_logger):
    """Two log observers on one logger both get their records out, the more verbose included."""
    LogObserver(level="INFO", logger=quiet_logger.name)
    debug = LogObserver(level="DEBUG", logger=quiet_logger.name)
    LogObserver(level="WARNING", logger=quiet_logger.name)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(debug.on_event(event()))

    [record] = [r for r in caplog.records if r.name == quiet_logger.name]
    assert record.levelno == logging.DEBUG
    assert quiet_logger.level == logging.DEBUG


def test_log_observer_rejects_an_unknown_level():
    """An unknown level is a ValidationError naming the config path."""
    reg = Registry.for_testing([LogObserver], builtins=False)

    with pytest.raises(ValidationError) as caught:
        reg.create("observer", {"kind": "log", "level": "LOUD"}, path="observers.0")

    assert "observers.0" in str(caught.value) and "level" in str(caught.value)


# --- jsonl -------------------------------------------------------------------------


def test_jsonl_observer_appends_one_json_line_per_event(tmp_path):
    """Each event is one JSON object per line, unstructured with the project converter."""
    path = tmp_path / "events.jsonl"
    obs = JsonlObserver(path=str(path))

    async def scenario():
        await obs.on_event(event(1))
        await obs.on_event(event(2, LifecycleEventType.RUN_COMPLETED, node=None))
        await obs.aclose()

    asyncio.run(scenario())

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {
        "event_id": "e1",
        "run_id": "run-1",
        "type": "node_completed",
        "sequence": 1,
        "occurred_at": "2024-05-01T12:00:00+00:00",
        "node_id": "hello",
        "payload": {"result": "HELLO"},
    }
    assert [line["sequence"] for line in lines] == [1, 2]


def test_jsonl_observer_opens_lazily_and_flushes_each_line(tmp_path):
    """No file exists before the first event; each line is readable as soon as it is written."""
    path = tmp_path / "sub" / "dir" / "events.jsonl"
    obs = JsonlObserver(path=str(path))
    assert not path.exists()

    asyncio.run(obs.on_event(event(1)))

    assert len(path.read_text().splitlines()) == 1
    asyncio.run(obs.aclose())


def test_jsonl_observer_appends_to_an_existing_file(tmp_path):
    """Lines are appended; earlier content is kept, and a closed observer reopens."""
    path = tmp_path / "events.jsonl"
    path.write_text('{"earlier": true}\n')
    obs = JsonlObserver(path=str(path))

    asyncio.run(obs.on_event(event(1)))
    asyncio.run(obs.aclose())
    asyncio.run(obs.on_event(event(2)))
    asyncio.run(obs.aclose())

    assert [json.loads(line).get("sequence") for line in path.read_text().splitlines()] == [
        None,
        1,
        2,
    ]


def test_jsonl_observer_writes_unserializable_values_as_text(tmp_path):
    """Payload values JSON cannot hold are written with str()."""
    path = tmp_path / "events.jsonl"
    obs = JsonlObserver(path=str(path))

    asyncio.run(obs.on_event(event(payload={"where": tmp_path})))
    asyncio.run(obs.aclose())

    assert json.loads(path.read_text())["payload"] == {"where": str(tmp_path)}


def test_jsonl_observer_is_configured_from_a_mapping(tmp_path):
    """`{kind: jsonl, path: ...}` builds the observer; a missing path is a ValidationError."""
    reg = Registry.for_testing([JsonlObserver], builtins=False)

    made = reg.create("observer", {"kind": "jsonl", "path": "e.jsonl"})

    assert made == JsonlObserver(path="e.jsonl")
    with pytest.raises(ValidationError, match=r"observers\.1\.path"):
        reg.create("observer", {"kind": "jsonl"}, path="observers.1")
