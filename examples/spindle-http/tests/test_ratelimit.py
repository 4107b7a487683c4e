"""The ``rate_limit`` middleware: a token bucket per host, on a clock the test drives."""

from __future__ import annotations

import asyncio
import logging

import pytest
from spindle import Engine, SpindleError

from conftest import Answer
from spindle_http import RateLimitMiddleware


class FakeTime:
    """A clock that only moves when the middleware sleeps; the sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


def limited(per_second: float, burst: int = 1, **options: object) -> tuple:
    limiter = RateLimitMiddleware(per_second=per_second, burst=burst, **options)
    fake = FakeTime()
    limiter.clock, limiter.sleep = fake.clock, fake.sleep
    return limiter, fake


def three_calls(url: str) -> dict:
    """Three http nodes to one host, all ready at once."""
    nodes = {n: {"runtime": {"kind": "http", "url": f"{url}/{n}"}} for n in ("a", "b", "c")}
    return {"name": "three", "nodes": nodes, "output": {n: n for n in nodes}}


def test_calls_to_one_host_are_spaced_out(server, run_flow, caplog):
    """per_second=2, burst=1: the first call goes at once, the next two wait 0.5 s each."""
    for name in "abc":
        server.script(f"/{name}", Answer(200, {"n": name}))
    limiter, fake = limited(per_second=2)

    with caplog.at_level(logging.INFO, logger="spindle.http"):
        state = asyncio.run(run_flow(three_calls(server.url), middleware=(limiter,)))

    assert state.status == "completed", state.error
    assert fake.sleeps == [0.5, 0.5]
    assert limiter.waited >= 1.0  # (more if a call queued behind another's wait)
    assert len(server.seen) == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "spindle.http.rate_limit"]
    assert len(lines) == 3
    assert lines[0].endswith("waited 0.000s")
    assert {line.split("'")[1] for line in lines} == {"a", "b", "c"}


def test_a_burst_lets_that_many_go_at_once(server, run_flow):
    """burst=2: two calls go at once, the third waits for one token (1/4 s at 4/s)."""
    for name in "abc":
        server.script(f"/{name}", Answer(200, {}))
    limiter, fake = limited(per_second=4, burst=2)

    state = asyncio.run(run_flow(three_calls(server.url), middleware=(limiter,)))

    assert state.status == "completed", state.error
    assert fake.sleeps == [0.25]


def test_hosts_not_listed_pass_straight_through(server, run_flow):
    """hosts=[api.example.com]: calls to 127.0.0.1 are not limited at all."""
    for name in "abc":
        server.script(f"/{name}", Answer(200, {}))
    limiter, fake = limited(per_second=1, hosts=["api.example.com"])

    state = asyncio.run(run_flow(three_calls(server.url), middleware=(limiter,)))

    assert state.status == "completed", state.error
    assert (fake.sleeps, limiter.waited) == ([], 0.0)


def test_polls_are_limited_too(server, run_flow):
    """http_poll's polls go through the effect stage: each one takes a token of its host."""
    server.script("/job", Answer(200, {"done": False}), Answer(200, {"done": True}))
    limiter, fake = limited(per_second=1)
    definition = {
        "name": "p",
        "inputs": {"base": server.url},
        "nodes": {
            "ready": {
                "effect": {
                    "kind": "http_poll",
                    "url": "{inputs.base}/job",
                    "field": "done",
                    "interval": 0.01,
                }
            }
        },
        "output": "ready",
    }

    state = asyncio.run(run_flow(definition, middleware=(limiter,)))

    assert state.status == "completed", state.error
    assert state.output["polls"] == 2
    assert fake.sleeps == [1.0]  # the second poll found the bucket empty


def test_other_tasks_are_not_touched(run_flow):
    """A python_code task is not an HTTP call: no token, no wait, no log line."""
    limiter, fake = limited(per_second=0.001)
    definition = {
        "name": "c",
        "nodes": {"a": {"runtime": {"kind": "python_code", "code": "result = 1"}}},
    }

    state = asyncio.run(run_flow(definition, middleware=(limiter,)))

    assert state.status == "completed", state.error
    assert (fake.sleeps, limiter.waited) == ([], 0.0)


def test_bad_options_in_spindle_toml_are_all_reported(spindle_config, registry):
    """per_second=0 and burst=0: one entry, both problems, with the file."""
    spindle_config.write(
        store="memory://", middleware=[{"kind": "rate_limit", "per_second": 0, "burst": 0}]
    )

    with pytest.raises(SpindleError) as info:
        Engine.from_config(registry=registry)

    text = str(info.value)
    assert "spindle.toml" in text
    assert "rate_limit per_second must be positive, got 0" in text
    assert "rate_limit burst must be at least 1, got 0" in text
