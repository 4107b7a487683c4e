"""Durable sub-steps in tasks run by the subprocess and process_pool executors.

Each task here runs in another process; its steps are committed by the
engine in this one, over the sub-step channel. The step functions note each
run in a log file, so a test can tell a replayed step from a re-executed one.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from spindle import Settings, Workflow
from spindle.core.engine import Engine
from spindle.core.errors import TaskError
from spindle.core.model import RunStatus, StepKind, StepRecord, StepStatus
from spindle.core.plugin import AttemptAbandoned, StepHistory, TaskContext
from spindle.core.workflow import InputSpec, NodeSpec
from spindle.plugins.executors._channel import StepServer
from spindle.plugins.executors._remote import StepClient

EXECUTORS = ["subprocess", "process_pool"]

# --- task and step functions (module level: importable in the child) ------------------


def record(log: str, value: Any) -> Any:
    """A step: note in ``log`` that it ran, return ``value``."""
    with open(log, "a") as f:
        f.write(f"{value}\n")
    return value


async def arecord(log: str, value: Any) -> Any:
    """``record`` as an async step."""
    await asyncio.sleep(0)
    return record(log, value)


def runs(log: str) -> list[str]:
    path = Path(log)
    return path.read_text().splitlines() if path.exists() else []


def steps_then_fail(ctx: Any, log: str) -> dict[str, Any]:
    first = ctx.step(record, log, "a", name="fetch")
    rest = ctx.map(functools.partial(record, log), ["b", "c", "d"], name="each")
    if ctx.attempt == 1:
        raise ValueError("the first attempt fails after its steps")
    return {"first": first, "rest": rest, "pid": os.getpid()}


async def async_steps(ctx: Any, log: str) -> list[Any]:
    one = await ctx.astep(record, log, "p", name="one")
    two = await ctx.gather(ctx.astep(arecord, log, "q"), ctx.astep(arecord, log, "r"))
    many = await ctx.amap(functools.partial(arecord, log), ["s", "t"], name="many")
    if ctx.attempt == 1:
        raise ValueError("the first attempt fails after its steps")
    return [one, two, many]


def flaky(log: str) -> int:
    """Fails the first two times it is called (counted in ``log``)."""
    tries = len(runs(log)) + 1
    record(log, f"try {tries}")
    if tries < 3:
        raise ConnectionError(f"try {tries} failed")
    return tries


def flaky_step(ctx: Any, log: str) -> int:
    return ctx.step(flaky, log, name="flaky", retry={"max_attempts": 3, "backoff": 0})


# A backoff long enough that it is never due yet when the first drive stops, even on a
# loaded machine (max_inline_sleep=0 fires a timer already due in-process).
def slow_flaky_step(ctx: Any, log: str) -> int:
    return ctx.step(flaky, log, name="flaky", retry={"max_attempts": 3, "backoff": 1.0})


def always_fails() -> None:
    raise ConnectionError("the service is down")


def doomed_step(ctx: Any) -> None:
    ctx.step(always_fails, name="down", retry={"max_attempts": 2, "backoff": 0})


def napping_step(ctx: Any) -> None:
    ctx.step(time.sleep, 5, name="nap", timeout=0.2)


def renamed_step(ctx: Any, log: str) -> str:
    ctx.step(record, log, "x", name="first-name" if ctx.attempt == 1 else "second-name")
    if ctx.attempt == 1:
        raise ValueError("retry me")
    return "unreachable"


def big_text(log: str) -> str:
    record(log, "big")
    return "x" * 5000


def big_step(ctx: Any, log: str) -> int:
    text = ctx.step(big_text, log, name="big")
    if ctx.attempt == 1:
        raise ValueError("retry me")
    return len(text)


def asks_between_steps(ctx: Any, log: str) -> list[Any]:
    before = ctx.step(record, log, "before", name="before")
    answer = ctx.ask_user("Go?", choices=["yes", "no"])
    after = ctx.step(record, log, "after", name="after")
    return [before, answer, after]


def dies_after_a_step(ctx: Any, log: str) -> str:
    ctx.step(record, log, "kept", name="kept")
    if ctx.attempt == 1:
        os._exit(3)
    return "second attempt"


def echo(text: str) -> str:
    return text


def echoes_a_secret(ctx: Any, token: str) -> str:
    return ctx.step(echo, f"token={token}", name="echo")


# --- helpers ----------------------------------------------------------------------------


def one_node(fn: Any, executor: str, **options: Any) -> Workflow:
    wf = Workflow("detached", inputs={"log": ""})
    wf.node(fn, name="n", executor={"kind": executor}, **options)
    wf.output = "n"
    return wf


def engine(tmp_path: Path, store: str = "memory://", **settings: Any) -> Engine:
    return Engine(store, settings=Settings(runs_dir=str(tmp_path / "runs"), **settings))


def calls(records: list[StepRecord], kind: StepKind = StepKind.CALL) -> list[StepRecord]:
    return [r for r in records if r.kind == kind]


async def run_once(
    tmp_path: Path, wf: Workflow, inputs: dict[str, Any], **settings: Any
) -> tuple[Any, list[StepRecord]]:
    async with engine(tmp_path, **settings) as e:
        state = await e.run(wf, inputs)
        return state, await e.ledger(state.run_id)


@pytest.fixture
def log(tmp_path: Path) -> str:
    return str(tmp_path / "steps.log")


# --- recording and replay ---------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_steps_are_recorded_by_name_and_replayed_after_a_node_retry(executor, tmp_path, log):
    """Steps made in another process are in the ledger by name; the retried node replays them."""
    wf = one_node(steps_then_fail, executor, retry={"max_attempts": 2})
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output["first"] == "a" and state.output["rest"] == ["b", "c", "d"]
    assert state.output["pid"] != os.getpid()
    steps = sorted(calls(records), key=lambda r: r.idempotency_key)  # map commits as they end
    assert [(r.idempotency_key.rsplit(":", 1)[1], r.name, r.result) for r in steps] == [
        ("0", "fetch", "a"),
        ("1", "each", "b"),
        ("2", "each", "c"),
        ("3", "each", "d"),
    ]
    assert sorted(runs(log)) == ["a", "b", "c", "d"]  # each ran once: attempt 2 replayed them
    assert [r.kind for r in records if r.node_id == "n"].count(StepKind.RETRY) == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_async_steps_in_another_process_are_recorded_and_replayed(executor, tmp_path, log):
    """await ctx.astep, ctx.gather and ctx.amap work in the child and replay on retry."""
    wf = one_node(async_steps, executor, retry={"max_attempts": 2})
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == ["p", ["q", "r"], ["s", "t"]]
    names = [r.name for r in sorted(calls(records), key=lambda r: r.idempotency_key)]
    assert names == ["one", "arecord", "arecord", "many", "many"]
    assert sorted(runs(log)) == ["p", "q", "r", "s", "t"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_mid_function_effect_in_another_process_waits_and_resumes(executor, tmp_path, log):
    """ctx.ask_user in a child suspends the node; on resume earlier steps are replayed."""
    wf = one_node(asks_between_steps, executor)

    async def main():
        async with engine(tmp_path) as e:
            waiting = await e.run(wf, {"log": log})
            done = await e.resume(waiting.run_id, None, "yes", workflow=wf)
            return waiting, done

    waiting, done = asyncio.run(main())
    assert waiting.status == RunStatus.WAITING
    assert (waiting.waits[0].key, waiting.waits[0].prompt) == ("n.1", "Go?")
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.output == ["before", "yes", "after"]
    assert runs(log) == ["before", "after"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_step_made_out_of_order_is_a_nondeterminism_error(executor, tmp_path, log):
    """A retried node whose call 0 has another name fails with NondeterminismError's message."""
    wf = one_node(renamed_step, executor, retry={"max_attempts": 2})
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}))
    assert state.status == RunStatus.FAILED
    assert (
        "node 'n': call 0 was 'first-name' when the node first ran, but is 'second-name' now"
        in state.error
    )
    assert [r.name for r in calls(records)] == ["first-name"]
    assert runs(log) == ["x"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_large_step_value_goes_to_the_artifact_store(executor, tmp_path, log):
    """A value over result_inline_limit is kept as an artifact and fetched back on replay."""
    wf = one_node(big_step, executor, retry={"max_attempts": 2})
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}, result_inline_limit=1000))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == 5000
    (step,) = calls(records)
    assert set(step.result) == {"$artifact"} and step.result["$artifact"]["size"] == 5002
    assert runs(log) == ["big"]


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_step_retry_policy_records_each_failed_attempt(executor, tmp_path, log):
    """A flaky step is tried again in the child; each failure is a call_failure record."""
    wf = one_node(flaky_step, executor)
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == 3
    failures = calls(records, StepKind.CALL_FAILURE)
    assert [(f.attempt, f.name, f.error) for f in failures] == [
        (1, "flaky", "ConnectionError: try 1 failed"),
        (2, "flaky", "ConnectionError: try 2 failed"),
    ]
    assert [(r.attempt, r.result) for r in calls(records)] == [(3, 3)]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_step_that_fails_for_good_fails_the_node(executor, tmp_path):
    """Past its max_attempts a step's error fails the node, every attempt recorded."""
    wf = one_node(doomed_step, executor)
    state, records = asyncio.run(run_once(tmp_path, wf, {}))
    assert state.status == RunStatus.FAILED
    assert "ConnectionError: the service is down" in state.error
    failures = calls(records, StepKind.CALL_FAILURE)
    assert [(f.attempt, f.result) for f in failures] == [(1, {"delay": 0.0}), (2, {"delay": None})]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_long_step_backoff_waits_on_a_durable_timer(executor, tmp_path, log):
    """A backoff past max_inline_sleep leaves the run waiting; the timer resumes the step."""
    wf = one_node(slow_flaky_step, executor)
    url = f"sqlite:///{tmp_path / 'spindle.db'}"

    async def main():
        async with engine(tmp_path, url, max_inline_sleep=0) as e:
            first = await e.run(wf, {"log": log})
            states = [first]
            deadline = time.monotonic() + 30
            while states[-1].status == RunStatus.WAITING and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                states += await e.run_due()
            return states, await e.ledger(first.run_id)

    states, records = asyncio.run(main())
    assert states[0].status == RunStatus.WAITING
    assert states[0].waits[0].key == "n.0.backoff1"
    assert states[-1].status == RunStatus.COMPLETED and states[-1].output == 3
    assert runs(log) == ["try 1", "try 2", "try 3"]
    assert len(calls(records, StepKind.CALL_FAILURE)) == 2


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_step_timeout_in_another_process_fails_the_step(executor, tmp_path):
    """A step past its timeout raises StepTimeout in the child; the failure is recorded."""
    wf = one_node(napping_step, executor)
    started = time.monotonic()
    state, records = asyncio.run(run_once(tmp_path, wf, {}))
    assert state.status == RunStatus.FAILED
    assert "node 'n': step 'nap' timed out after 0.2s" in state.error
    (failure,) = calls(records, StepKind.CALL_FAILURE)
    assert failure.error.startswith("StepTimeout: ") and failure.name == "nap"
    assert time.monotonic() - started < 4  # the child did not wait for the sleep to end


# --- the child dies; secrets ------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_child_that_dies_keeps_its_committed_steps(executor, tmp_path, log):
    """A child that exits mid-task fails the attempt; the retry replays what it committed."""
    wf = one_node(dies_after_a_step, executor, retry={"max_attempts": 2})
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == "second attempt"
    assert runs(log) == ["kept"]
    (retry,) = calls(records, StepKind.RETRY)
    assert "exited with code 3" in retry.error or "a process pool worker died" in retry.error


@pytest.mark.parametrize("executor", EXECUTORS)
def test_secret_values_in_step_results_are_scrubbed(executor, tmp_path):
    """A step value holding a secret input is recorded redacted, as in the engine's process."""
    secret = "s3cr3t-value-42"
    wf = Workflow("secretive", inputs={"token": InputSpec(secret=True)})
    wf.node(echoes_a_secret, name="n", executor={"kind": executor})
    state, records = asyncio.run(run_once(tmp_path, wf, {"token": secret}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert [r.result for r in calls(records)] == ["token=***"]
    assert all(secret not in repr(r) for r in records)


# --- the channel itself -------------------------------------------------------------------------


class FakeLog:
    """A StepLog that keeps commits in a list."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.inline_sleep = 1.5
        self.commits: list[tuple[Any, ...]] = []

    def history(self, key: str) -> StepHistory:
        return StepHistory(0, None)

    async def value(self, record: StepRecord) -> Any:
        return record.result

    async def completed(self, index: int, value: Any, *, name: str, attempt: int) -> Any:
        self.commits.append(("completed", index, value, name, attempt))
        return value

    async def failed(
        self, index: int, error: BaseException, *, name: str, attempt: int, delay: float | None
    ) -> None:
        self.commits.append(("failed", index, type(error).__name__, str(error), attempt, delay))


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def channel_task(tmp_path: Path, recorded: dict[str, StepRecord]) -> TaskContext:
    return TaskContext(
        run_id="r",
        node_id="n",
        node=NodeSpec(id="n"),
        inputs={},
        outputs={},
        run_dir=tmp_path,
        recorded=recorded,
    )


def test_the_channel_answers_only_the_nodes_own_calls_and_hangs_up_at_the_end(tmp_path):
    """Lookups of other nodes' keys find nothing; after close, requests are AttemptAbandoned."""
    mine = StepRecord("r", 0, "n", StepKind.CALL, StepStatus.COMPLETED, "r:n:0", result=1)
    other = StepRecord("r", 1, "m", StepKind.CALL, StepStatus.COMPLETED, "r:m:0", result=2)

    async def main():
        log = FakeLog()
        server = StepServer(channel_task(tmp_path, {"r:n:0": mine, "r:m:0": other}), log)
        client = StepClient(**await server.start())
        assert client.inline_sleep == 1.5
        found = await asyncio.to_thread(client.recorded.get, "r:n:0")
        foreign = await asyncio.to_thread(client.recorded.get, "r:m:0")
        keys = await asyncio.to_thread(list, client.recorded)
        stored = await client.completed(1, {"v": [1]}, name="s", attempt=1)
        await client.failed(2, Unpicklable("no pickle"), name="s", attempt=1, delay=0.5)
        with pytest.raises(TaskError, match="is not one of this node's calls"):
            await asyncio.to_thread(client.history, "r:m:0")
        await server.close()
        with pytest.raises(AttemptAbandoned, match="node 'n': the connection to the engine"):
            await asyncio.to_thread(client.history, "r:n:0")
        await asyncio.to_thread(client.close)
        return found, foreign, keys, stored, log.commits

    found, foreign, keys, stored, commits = asyncio.run(main())
    assert found == mine and foreign is None and keys == ["r:n:0"]
    assert stored == {"v": [1]}
    assert commits == [
        ("completed", 1, {"v": [1]}, "s", 1),
        ("failed", 2, "Unpicklable", "no pickle", 1, 0.5),
    ]


def test_a_wrong_token_is_refused(tmp_path):
    """A connection that does not present the task's token gets no answers."""

    async def main():
        server = StepServer(channel_task(tmp_path, {}), FakeLog())
        address = await server.start()
        client = StepClient(**{**address, "token": "forged"})
        try:
            with pytest.raises(AttemptAbandoned):
                await asyncio.to_thread(client.history, "r:n:0")
        finally:
            await asyncio.to_thread(client.close)
            await server.close()

    asyncio.run(main())
