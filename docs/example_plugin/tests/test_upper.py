"""Tests of the spindle-upper plugin, using spindle's pytest plugin fixtures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from spindle import Engine, Registry, RunState, Settings, ValidationError, Workflow

import spindle_upper
from spindle_upper import SlackObserver, UpperRuntime

DEFINITION = {
    "name": "shout",
    "inputs": {"who": "world"},
    "nodes": {
        "loud": {
            "runtime": {"kind": "upper", "suffix": "!"},
            "inputs": {"text": "inputs.who"},
        }
    },
    "output": "loud",
}


def test_upper_runs_through_an_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A workflow using kind 'upper' completes with the upper-cased text; Slack hears of it."""
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(spindle_upper, "post_json", lambda url, payload: posted.append(payload))
    registry = Registry()  # the installed kinds (inline executor, memory store) ...
    registry.register(UpperRuntime)  # ... plus ours, registered in code
    workflow = Workflow.from_dict(DEFINITION, registry=registry)

    async def main() -> RunState:
        async with Engine(
            "memory://",
            settings=Settings(runs_dir=str(tmp_path)),
            registry=registry,
            observers=[SlackObserver(webhook="https://hooks.example/T000")],
        ) as engine:
            return await engine.run(workflow, {"who": "ada"})

    state = asyncio.run(main())

    assert state.status == "completed"
    assert state.output == "ADA!"
    assert posted[-1]["text"] == f"run {state.run_id}: run_completed"


def test_a_wrong_option_is_reported_with_its_path(spindle_registry: Registry) -> None:
    """A misspelt option fails when the workflow is loaded, naming the node and the field."""
    spindle_registry.register(UpperRuntime)
    bad = {"name": "bad", "nodes": {"loud": {"runtime": {"kind": "upper", "sufix": "!"}}}}

    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(bad, registry=spindle_registry)

    assert "unknown field 'sufix'" in str(info.value)
    assert "@ nodes.loud.runtime.sufix" in str(info.value)


def test_a_node_without_text_is_refused_at_load_time(spindle_registry: Registry) -> None:
    """UpperRuntime.check reports a node that gives no text, before anything runs."""
    spindle_registry.register(UpperRuntime)
    bad = {"name": "bad", "nodes": {"loud": {"runtime": {"kind": "upper"}}}}

    with pytest.raises(ValidationError, match="upper needs a 'text' option"):
        Workflow.from_dict(bad, registry=spindle_registry)
