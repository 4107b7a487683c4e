"""Middleware: onion order, short-circuits, changed arguments and results, chains built once."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from attrs import define, field

from spindle import Middleware
from spindle.core.plugin import MiddlewareChains, _middleware, compose
from spindle.core.plugin._middleware import EMPTY_CHAINS


@define
class Layer(Middleware, kind="layer"):
    """Records entering and leaving."""

    name: str = ""
    log: list = field(factory=list)

    async def __call__(self, call_next, *args):
        self.log.append(f"in:{self.name}")
        result = await call_next(*args)
        self.log.append(f"out:{self.name}")
        return result


@define
class ExecuteOnly(Layer, kind="execute_only"):
    """Wraps only the execute stage."""

    stages: ClassVar[frozenset[str]] = frozenset({"execute"})


class FakeRuntime:
    def __init__(self, log=None):
        self.log = log if log is not None else []

    async def _setup_runtime(self, task):
        self.log.append("runtime")
        return f"payload for {task}"


class FakeExecutor:
    def __init__(self, log=None, error=None):
        self.log = log if log is not None else []
        self.error = error

    async def _execute(self, payload, task):
        self.log.append("execute")
        if self.error:
            raise self.error
        return f"ran {payload}"


def test_layers_wrap_in_priority_then_configuration_order():
    """Lower priority is outer; equal priorities keep configuration order."""
    log = []
    layers = [
        Layer(name="b", priority=0, log=log),
        Layer(name="c", priority=5, log=log),
        Layer(name="a", priority=-1, log=log),
        Layer(name="b2", priority=0, log=log),
    ]
    chains = MiddlewareChains(layers)

    result = asyncio.run(chains.runtime(FakeRuntime(log), "task"))

    assert result == "payload for task"
    assert log == ["in:a", "in:b", "in:b2", "in:c", "runtime", "out:c", "out:b2", "out:b", "out:a"]
    assert [m.name for m in chains.layers] == ["a", "b", "b2", "c"]


def test_a_layer_can_short_circuit():
    """A layer that does not call call_next answers for the stage; inner layers never run."""
    log = []

    @define
    class Cached(Middleware, kind="cached"):
        async def __call__(self, call_next, *args):
            return "from cache"

    chains = MiddlewareChains([Cached(), Layer(name="inner", log=log)])

    assert asyncio.run(chains.execute(FakeExecutor(log), "p", "t")) == "from cache"
    assert log == []


def test_a_layer_can_change_arguments_and_results():
    """A layer may pass different arguments to call_next and return a different result."""

    @define
    class Rewrite(Middleware, kind="rewrite"):
        async def __call__(self, call_next, executor, payload, task):
            result = await call_next(executor, payload.upper(), task)
            return result + "!"

    chains = MiddlewareChains([Rewrite()])

    assert asyncio.run(chains.execute(FakeExecutor(), "echo", "t")) == "ran ECHO!"


def test_a_layer_sees_exceptions_from_inside():
    """Exceptions from the stage pass through each layer, which may observe or replace them."""
    seen = []

    @define
    class Observe(Middleware, kind="observe"):
        async def __call__(self, call_next, *args):
            try:
                return await call_next(*args)
            except ValueError as exc:
                seen.append(str(exc))
                raise RuntimeError("wrapped") from exc

    chains = MiddlewareChains([Observe()])

    with pytest.raises(RuntimeError, match="wrapped") as caught:
        asyncio.run(chains.execute(FakeExecutor(error=ValueError("boom")), "p", "t"))

    assert seen == ["boom"]
    assert isinstance(caught.value.__cause__, ValueError)


def test_layers_wrap_only_their_stages():
    """A layer declaring stages={'execute'} does not wrap the runtime stage."""
    log = []
    chains = MiddlewareChains([ExecuteOnly(name="x", log=log)])

    asyncio.run(chains.runtime(FakeRuntime(log), "t"))
    asyncio.run(chains.execute(FakeExecutor(log), "p", "t"))

    assert log == ["runtime", "in:x", "execute", "out:x"]
    assert chains.has("execute") and not chains.has("runtime")


def test_without_layers_the_stage_is_called_directly():
    """With no middleware the chain is the terminal itself: nothing in between."""
    assert EMPTY_CHAINS.runtime is _middleware._terminal_runtime
    assert asyncio.run(EMPTY_CHAINS.runtime(FakeRuntime(), "t")) == "payload for t"


def test_chains_are_composed_once_not_per_call(monkeypatch):
    """compose() runs when the chains are built; calling a stage composes nothing."""
    calls = []
    real = _middleware.compose

    def counting(layers, terminal):
        calls.append(len(layers))
        return real(layers, terminal)

    monkeypatch.setattr(_middleware, "compose", counting)
    chains = MiddlewareChains([Layer(name="a")])
    built = len(calls)

    for _ in range(5):
        asyncio.run(chains.runtime(FakeRuntime(), "t"))
        asyncio.run(chains.execute(FakeExecutor(), "p", "t"))

    assert built == 3
    assert len(calls) == built


def test_wrap_composes_node_and_run_stages_around_a_given_terminal():
    """wrap() builds the node/run chain around the engine's own terminal."""
    log = []

    async def drive(task):
        log.append(f"drive {task}")
        return "done"

    call = MiddlewareChains([Layer(name="a", log=log)]).wrap("node", drive)

    assert asyncio.run(call("t")) == "done"
    assert log == ["in:a", "drive t", "out:a"]


def test_compose_puts_the_first_layer_outermost():
    """compose([a, b], f) calls a, then b, then f."""
    log = []

    async def terminal():
        log.append("f")

    asyncio.run(compose([Layer(name="a", log=log), Layer(name="b", log=log)], terminal)())

    assert log == ["in:a", "in:b", "f", "out:b", "out:a"]
