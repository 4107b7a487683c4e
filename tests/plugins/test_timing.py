"""The built-in ``timing`` middleware."""

from __future__ import annotations

import asyncio
import logging

import pytest
from attrs import define

from spindle import Executor, Outcome, Registry, RunState, Runtime
from spindle.core.plugin import MiddlewareChains
from spindle.plugins.middleware.timing import TimingMiddleware, stage_of


@define
class Echo(Runtime[str], kind="echo"):
    """Returns its text."""

    text: str = "hi"

    async def _setup_runtime(self, task):
        return self.text


@define
class Run(Executor[str], kind="run"):
    """Returns the payload, or fails on 'fail'."""

    async def _execute(self, payload, task):
        if payload == "fail":
            raise RuntimeError("failed")
        return Outcome(value=payload)


def test_timing_is_an_entry_point():
    """`timing` is found through spindle's own entry points."""
    assert Registry().get("middleware", "timing") is TimingMiddleware


def test_timing_records_each_stage_call(caplog):
    """Each call is counted per stage and per stage:kind, and logged at DEBUG."""
    timing = TimingMiddleware()
    chains = MiddlewareChains([timing])

    with caplog.at_level(logging.DEBUG, logger="spindle.timing"):
        payload = asyncio.run(chains.runtime(Echo(), "task"))
        outcome = asyncio.run(chains.execute(Run(), payload, "task"))

    assert outcome.value == "hi"
    assert set(timing.stats) == {"runtime", "runtime:echo", "execute", "execute:run"}
    assert timing.stats["execute:run"].calls == 1
    assert timing.stats["runtime"].total >= 0
    assert [r.getMessage().split(" took ")[0] for r in caplog.records] == [
        "runtime echo",
        "execute run",
    ]


def test_timing_records_failed_calls_and_reraises():
    """A call that raises is timed, counted as an error, and the error propagates."""
    timing = TimingMiddleware()
    chains = MiddlewareChains([timing])

    with pytest.raises(RuntimeError, match="failed"):
        asyncio.run(chains.execute(Run(), "fail", "task"))

    stats = timing.stats["execute"]
    assert (stats.calls, stats.errors) == (1, 1)
    assert stats.max == stats.total == stats.mean


def test_timing_wraps_node_and_run_stages():
    """Engine stages (node, run) are timed under their own names."""
    timing = TimingMiddleware()
    chains = MiddlewareChains([timing])

    async def terminal(arg):
        return arg

    asyncio.run(chains.wrap("node", terminal)("task"))
    asyncio.run(chains.wrap("run", terminal)(RunState(run_id="r", workflow="w")))

    assert timing.stats["node"].calls == timing.stats["run"].calls == 1


def test_stage_of_tells_stages_apart():
    """stage_of recognises each stage from its arguments."""
    assert stage_of((Echo(), "t")) == ("runtime", "echo")
    assert stage_of((Run(), "p", "t")) == ("execute", "run")
    assert stage_of((RunState(run_id="r", workflow="w"),)) == ("run", "")
    assert stage_of(("task",)) == ("node", "")


def test_timing_is_configured_from_a_mapping():
    """`{kind: timing, priority: -100}` builds the middleware; stats are not configuration."""
    made = Registry.for_testing([TimingMiddleware], builtins=False).create(
        "middleware", {"kind": "timing", "priority": -100}
    )

    assert made.priority == -100 and made.stats == {}
