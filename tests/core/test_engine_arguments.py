"""What the engine's entry points accept: a clear TypeError for the wrong kind of argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from spindle import Engine, SyncEngine, Workflow
from spindle.plugins.stores.memory import MemoryStore


def _workflow() -> Workflow:
    wf = Workflow("one", inputs={"who": "world"}, output="a")
    wf.task("a", {"kind": "python_code", "code": "result = 'hi ' + inputs['who']"})
    return wf


def test_sync_engine_accepts_a_store_url():
    """SyncEngine("memory://") opens that store, as Engine("memory://") does."""
    with SyncEngine("memory://") as engine:
        state = engine.run(_workflow(), {"who": "Ada"})
        assert isinstance(engine.store, MemoryStore)
    assert state.output == "hi Ada"


def test_sync_engine_accepts_a_store_and_engine_keywords():
    """SyncEngine(store, workflows=...) passes both on to Engine."""
    store = MemoryStore.from_url("memory://")
    with SyncEngine(store, workflows={}) as engine:
        assert engine.store is store


def test_sync_engine_refuses_what_is_neither_an_engine_nor_a_store():
    """SyncEngine(42) is a TypeError saying what to pass."""
    with pytest.raises(TypeError) as caught:
        SyncEngine(42)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "SyncEngine() takes an Engine, a Store or a store URL such as 'sqlite:///runs.db' "
        "(got int 42)"
    )


def test_sync_engine_wrapping_an_engine_takes_no_other_arguments():
    """SyncEngine(engine, store=...) is refused: the keywords would be silently dropped."""
    with pytest.raises(TypeError, match=r"takes no other arguments \(got policy\)"):
        SyncEngine(Engine("memory://"), policy=None)


@pytest.mark.parametrize("target", ["x.yaml", Path("x.yaml")])
def test_run_of_a_file_name_says_to_load_it(target):
    """engine.run("x.yaml") is a TypeError naming spindle.load_workflow."""
    with SyncEngine("memory://") as engine, pytest.raises(TypeError) as caught:
        engine.run(target)
    assert str(caught.value) == (
        f"engine.run() and engine.start() take a Workflow, not a file name ({target!r}); "
        f"load the file first: spindle.load_workflow('x.yaml')"
    )


def test_start_of_something_else_says_what_to_pass():
    """engine.start(42) is a TypeError naming the type given."""
    with SyncEngine("memory://") as engine, pytest.raises(TypeError) as caught:
        engine.start(42)
    assert str(caught.value).startswith(
        "engine.run() and engine.start() take a Workflow (got int); build one with "
        "spindle.Workflow(...)"
    )


@pytest.mark.parametrize(("inputs", "shown"), [("notadict", "str 'notadict'"), (["who"], "list")])
def test_inputs_that_are_not_a_mapping_are_refused(inputs, shown):
    """engine.run(wf, "notadict") names the type, instead of one error per character."""
    with SyncEngine("memory://") as engine:
        with pytest.raises(TypeError) as caught:
            engine.run(_workflow(), inputs)
        assert engine.list_runs() == []  # refused before anything was recorded
    message = str(caught.value)
    assert message.startswith(
        "the inputs of workflow 'one' must be a mapping of input name to value, such as "
        "{'who': 'Ada'} (got "
    )
    assert shown in message
