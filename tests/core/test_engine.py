"""The durable engine: graph execution, retries, timeouts, waits, resume, finish."""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta
from typing import Any

import pytest

from spindle import (
    InvalidAnswer,
    RetryPolicy,
    RunNotFound,
    RunNotWaiting,
    RunStatus,
    WaitKeyMismatch,
    Workflow,
    hookimpl,
    utcnow,
)
from spindle.core.model import StepKind, StepStatus, verify

from .conftest import run

CALLS: dict[str, int] = {}


def count(name: str) -> int:
    CALLS[name] = CALLS.get(name, 0) + 1
    return CALLS[name]


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def linear() -> Workflow:
    wf = Workflow("linear", inputs={"who": "world"})

    @wf.node
    def hello(who: str) -> str:
        return f"hello {who}"

    @wf.node
    def shout(hello: str) -> str:
        return hello.upper()

    wf.output = "shout"
    return wf


def node_records(records: list[Any], status: StepStatus = StepStatus.COMPLETED) -> list[str]:
    return [r.node_id for r in records if r.kind == StepKind.NODE and r.status == status]


def test_linear_workflow_completes_with_one_record_per_node(store_url, make_engine):
    """A linear workflow completes, records each node once and outputs the output node."""

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(linear(), {"who": "Ada"})
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == "HELLO ADA"
    assert node_records(records) == ["hello", "shout"]
    assert verify(records).ok


def test_ready_nodes_run_concurrently_up_to_the_limit(store_url, make_engine):
    """Independent nodes overlap in time but never exceed the concurrency limit."""
    live = {"now": 0, "max": 0}

    async def work() -> int:
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await asyncio.sleep(0.05)
        live["now"] -= 1
        return 1

    wf = Workflow("fan")
    for i in range(6):
        wf.node(work, name=f"n{i}")

    async def main():
        async with make_engine(store_url, concurrency=3) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.COMPLETED
    assert live["max"] == 3


def test_a_failed_node_fails_the_run_and_cancels_siblings(store_url, make_engine):
    """A failing node fails the run; a slow sibling is cancelled, not left running."""
    finished = []

    async def slow() -> str:
        await asyncio.sleep(5)
        finished.append("slow")
        return "late"

    def boom() -> None:
        raise RuntimeError("kaput")

    wf = Workflow("fails")
    wf.node(slow)
    wf.node(boom)

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "node 'boom' failed: RuntimeError: kaput" in state.error
    assert finished == []


def test_continue_on_failure_skips_dependants_and_completes(store_url, make_engine):
    """A node marked continue_on_failure lets the run complete; its dependants are skipped."""
    wf = Workflow("tolerant")

    @wf.node(continue_on_failure=True)
    def flaky() -> None:
        raise ValueError("nope")

    @wf.node
    def after(flaky: Any) -> str:
        return "never"

    @wf.node
    def other() -> str:
        return "ok"

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status == RunStatus.COMPLETED
    assert node_records(records, StepStatus.SKIPPED) == ["after"]
    assert node_records(records, StepStatus.FAILED) == ["flaky"]


def test_a_retried_node_succeeds_after_durable_backoff(store_url, make_engine):
    """A node failing twice with a retry policy succeeds on its third attempt."""
    wf = Workflow("retry")

    @wf.node(retry={"max_attempts": 3, "backoff": 0.01})
    def flaky() -> str:
        if count("flaky") < 3:
            raise ConnectionError("try again")
        return "third time"

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"flaky": "third time"}
    retries = [r for r in records if r.kind == StepKind.RETRY]
    assert [r.attempt for r in retries] == [1, 2]
    assert [r.attempt for r in records if r.kind == StepKind.NODE] == [3]


def test_retry_on_limits_which_errors_retry(store_url, make_engine):
    """An error not listed in retry_on fails the node at once."""
    wf = Workflow("retry-on")

    @wf.node(retry={"max_attempts": 5, "retry_on": ["ConnectionError"]})
    def picky() -> None:
        count("picky")
        raise KeyError("missing")

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert CALLS["picky"] == 1


def test_retry_delay_grows_and_is_capped():
    """Backoff grows by the multiplier and never exceeds max_backoff."""
    policy = RetryPolicy(max_attempts=10, backoff=1, multiplier=2, max_backoff=5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    jittery = RetryPolicy(backoff=10, jitter=0.5)
    assert jittery.delay(1, 0.0) == 5 and jittery.delay(1, 0.999999) == pytest.approx(15, 0.01)


def test_a_node_past_its_timeout_fails_with_a_timeout(store_url, make_engine):
    """A node running past its timeout is cancelled and recorded as timed out."""

    async def sleepy() -> None:
        await asyncio.sleep(10)

    wf = Workflow("timeout")
    wf.node(sleepy, timeout=0.05)

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "node 'sleepy' timed out after 0.05s" in state.error


def approval() -> Workflow:
    wf = Workflow("approval")

    @wf.node
    def draft() -> str:
        count("draft")
        return "text"

    wf.effect(
        "approve",
        {"kind": "ask_user", "prompt": "Publish?", "choices": ["yes", "no"]},
        after=["draft"],
    )

    @wf.node
    def publish(approve: str) -> str:
        return f"answer={approve}"

    wf.output = "publish"
    return wf


def test_ask_user_waits_and_resume_completes(store_url, make_engine):
    """A run asking the user waits with the prompt, and resuming with a choice completes it."""

    async def main():
        async with make_engine(store_url) as engine:
            wf = approval()
            waiting = await engine.run(wf)
            done = await engine.resume(waiting.run_id, "approve", "yes", workflow=wf)
            return waiting, done

    waiting, done = run(main())
    assert waiting.status == RunStatus.WAITING
    (wait,) = waiting.waits
    assert (wait.key, wait.prompt, wait.choices) == ("approve", "Publish?", ["yes", "no"])
    assert done.status == RunStatus.COMPLETED
    assert done.output == "answer=yes"
    assert CALLS["draft"] == 1


def test_resume_errors_lose_nothing(store_url, make_engine):
    """A bad choice, a wrong key and an unknown run are refused and the wait stays open."""

    async def main():
        async with make_engine(store_url) as engine:
            wf = approval()
            state = await engine.run(wf)
            with pytest.raises(InvalidAnswer, match="'maybe' is not one of the choices"):
                await engine.resume(state.run_id, "approve", "maybe", workflow=wf)
            with pytest.raises(WaitKeyMismatch, match=r"not waiting on .nope.*approve"):
                await engine.resume(state.run_id, "nope", "yes", workflow=wf)
            with pytest.raises(RunNotFound):
                await engine.resume("no-such-run", None, "yes")
            after = await engine.get_run(state.run_id)
            done = await engine.resume(state.run_id, None, "no", workflow=wf)
            again = await engine.resume(state.run_id, "approve", "yes", workflow=wf)
            with pytest.raises(RunNotWaiting, match="already completed"):
                await engine.resume(state.run_id, None, "yes", workflow=wf)
            records = await engine.ledger(state.run_id)
            return after, done, again, records

    after, done, again, records = run(main())
    assert after.status == RunStatus.WAITING and after.waits[0].key == "approve"
    assert done.output == "answer=no"
    assert again.output == "answer=no"  # the second resume is a no-op
    assert node_records(records).count("approve") == 1


def test_mid_function_effects_replay_recorded_answers(store_url, make_engine):
    """ctx.ask_user suspends the task; on resume ctx.step results are reused, not redone."""
    wf = Workflow("mid")

    @wf.node
    def interview(ctx: Any) -> str:
        first = ctx.step(count, "side-effect")
        second = ctx.step(count, "side-effect")
        name = ctx.ask_user("Your name?")
        return f"{name}:{first}:{second}"

    async def main():
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            key = state.waits[0].key
            done = await engine.resume(state.run_id, key, "Ada", workflow=wf)
            return state, done

    state, done = run(main())
    assert state.status == RunStatus.WAITING
    assert state.waits[0].prompt == "Your name?"
    assert done.output == {"interview": "Ada:1:2"}  # loop calls get their own keys
    assert CALLS["side-effect"] == 2


def test_an_event_emitted_before_the_wait_is_not_lost(store_url, make_engine):
    """An event delivered before the run waits is kept in the inbox and consumed once."""
    wf = Workflow("events")
    wf.effect("signal", {"kind": "wait_event", "key": "order-42"})

    async def main():
        async with make_engine(store_url) as engine:
            assert await engine.emit("order-42", {"paid": True}) == []
            state = await engine.run(wf)
            second = await engine.run(wf)
            resumed = await engine.emit("order-42", {"paid": False})
            return state, second, resumed, await engine.get_run(second.run_id)

    state, second, resumed, final = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"signal": {"paid": True}}
    assert second.status == RunStatus.WAITING
    assert resumed == [second.run_id]
    assert final.output == {"signal": {"paid": False}}


def test_wait_until_is_a_durable_timer(sqlite_url, make_engine):
    """A timer past max_inline_sleep leaves the run waiting; a later engine fires it."""
    wf = Workflow("timer")
    wf.effect("nap", {"kind": "wait_until", "seconds": 0.2})

    async def main():
        async with make_engine(sqlite_url, max_inline_sleep=0) as engine:
            state = await engine.run(wf)
        await asyncio.sleep(0.25)
        async with make_engine(sqlite_url, max_inline_sleep=0) as engine:
            driven = await engine.run_due()
        return state, driven

    state, driven = run(main())
    assert state.status == RunStatus.WAITING
    assert state.waits[0].due_at > utcnow() - timedelta(seconds=5)
    assert [s.status for s in driven] == [RunStatus.COMPLETED]


def parent_and_child() -> tuple[Workflow, Workflow]:
    """A parent whose one node runs a child that asks a person."""
    child = Workflow("child")
    child.effect("ok", {"kind": "ask_user", "prompt": "ok?"})
    parent = Workflow("parent")
    parent.effect("sub", {"kind": "subworkflow", "workflow": "child"})
    return parent, child


def test_subworkflow_child_waits_then_completes_the_parent(store_url, make_engine):
    """A waiting child makes the parent wait; answering the child completes the parent."""
    parent, child = parent_and_child()

    async def main():
        async with make_engine(store_url, workflows={"child": child}) as engine:
            state = await engine.run(parent)
            (wait,) = state.waits
            child_state = await engine.get_run(wait.child_run_id)
            await engine.resume(child_state.run_id, "ok", "fine", workflow=child)
            return state, child_state, await engine.get_run(state.run_id)

    state, child_state, final = run(main())
    assert state.status == RunStatus.WAITING
    assert child_state.parent_run_id == state.run_id
    assert final.status == RunStatus.COMPLETED
    assert final.output == {"sub": {"ok": "fine"}}


def test_cancelling_a_parent_cancels_its_children(store_url, make_engine):
    """Cancel cascades from a waiting parent to its waiting child."""
    parent, child = parent_and_child()

    async def main():
        async with make_engine(store_url, workflows={"child": child}) as engine:
            state = await engine.run(parent)
            cancelled = await engine.cancel(state.run_id, "changed my mind")
            kid = await engine.get_run(state.waits[0].child_run_id)
            again = await engine.cancel(state.run_id)
            return cancelled, kid, again

    cancelled, kid, again = run(main())
    assert cancelled.status == RunStatus.CANCELLED
    assert kid.status == RunStatus.CANCELLED
    assert again.error == "changed my mind"  # cancelling a finished run changes nothing


class FinishPlugin:
    """on_finish hook used by the finish-lifecycle tests."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[Any] = []

    @hookimpl
    async def spindle_on_finish(self, run: Any, output: Any, unsettled: Any) -> Any:
        self.seen.append(unsettled)
        await run.audit("finishing", output=output)
        if self.fail:
            raise RuntimeError("audit system down")
        if run.state.workflow != "linear":
            return None  # the follow-on run finishes through this hook too
        await run.handoff("follow", {"previous": output})
        run.set_disposition("published")
        return f"[{output}]"


def test_finish_hooks_transform_audit_and_hand_off(store_url, make_engine):
    """on_finish transforms the output, writes audit entries and starts a follow-on run."""
    follow = Workflow("follow", inputs={"previous": None})

    @follow.node
    def echo(previous: str) -> str:
        return f"got {previous}"

    plugin = FinishPlugin()

    async def main():
        async with make_engine(store_url, hooks=[plugin], workflows={"follow": follow}) as e:
            state = await e.run(linear())
            audit = await e.audit(state.run_id)
            handoffs = await e.store.handoffs(state.run_id)
            follow_on = await e.get_run(handoffs[0].acknowledged_run_id)
            return state, audit, handoffs, follow_on

    state, audit, handoffs, follow_on = run(main())
    assert state.output == "[HELLO WORLD]"
    assert state.disposition == "published"
    assert [(a.seq, a.message) for a in audit] == [(1, "finishing")]
    assert plugin.seen[0].empty
    assert not handoffs[0].open
    assert follow_on.status == RunStatus.COMPLETED
    assert follow_on.output == {"echo": "got HELLO WORLD"}


def test_a_failing_finish_hook_fails_the_run_and_keeps_audit(store_url, make_engine):
    """A raising on_finish hook fails the run, names the hook, and keeps audit entries."""

    async def main():
        async with make_engine(store_url, hooks=[FinishPlugin(fail=True)]) as engine:
            state = await engine.run(linear())
            return state, await engine.audit(state.run_id)

    state, audit = run(main())
    assert state.status == RunStatus.FAILED
    assert "on_finish hook" in state.error and "audit system down" in state.error
    assert len(audit) == 1


class PlainFinishPlugin:
    """A plain (not async) on_finish hook that calls run.audit/handoff without await."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    @hookimpl
    def spindle_on_finish(self, run: Any, output: Any) -> Any:
        if run.state.workflow != "linear":
            return None
        run.audit("first", n=1)
        run.audit("second", n=2)
        run.handoff("follow", {"previous": output})
        if self.fail:
            raise RuntimeError("checker down")
        return None


@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
def test_a_plain_finish_hook_need_not_await_its_audit_entries(store_url, make_engine, fail):
    """Audit entries and handoffs a plain hook asks for are written in call order, even
    when it raises afterwards; none is dropped as a never-awaited coroutine."""
    follow = Workflow("follow", inputs={"previous": None})

    @follow.node
    def echo(previous: str) -> str:
        return f"got {previous}"

    async def main():
        hooks = [PlainFinishPlugin(fail=fail)]
        async with make_engine(store_url, hooks=hooks, workflows={"follow": follow}) as e:
            state = await e.run(linear())
            return state, await e.audit(state.run_id), await e.store.handoffs(state.run_id)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        state, audit, handoffs = run(main())
    assert [(a.seq, a.message, a.data) for a in audit] == [
        (1, "first", {"n": 1}),
        (2, "second", {"n": 2}),
    ]
    assert len(handoffs) == 1
    if fail:
        assert state.status == RunStatus.FAILED
        assert "checker down" in state.error
    else:
        assert state.status == RunStatus.COMPLETED
        assert not handoffs[0].open


def test_max_steps_stops_a_runaway_run(store_url, make_engine):
    """A run that writes more ledger records than max_steps fails with a clear message."""
    wf = Workflow("runaway")

    @wf.node
    def loop(ctx: Any) -> int:
        for i in range(100):
            ctx.step(int, i)
        ctx.ask_user("never reached?")
        return 0

    async def main():
        async with make_engine(store_url, max_steps=5) as engine:
            return await engine.run(wf)

    state = run(main())
    assert state.status == RunStatus.FAILED
    assert "exceeded max_steps=5" in state.error


def test_large_results_go_to_the_artifact_store(store_url, make_engine):
    """A result above the inline limit is stored as an artifact; dependants get the value."""
    wf = Workflow("big")

    @wf.node
    def produce() -> str:
        return "x" * 5000

    @wf.node
    def measure(produce: str) -> int:
        return len(produce)

    wf.output = "measure"

    async def main():
        async with make_engine(store_url, result_inline_limit=1000) as engine:
            state = await engine.run(wf)
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    assert state.output == 5000
    (rec,) = [r for r in records if r.node_id == "produce" and r.kind == StepKind.NODE]
    assert set(rec.result) == {"$artifact"}


def test_a_changed_completed_node_refuses_resume(sqlite_url, make_engine):
    """Resuming with a changed completed node is refused; a changed pending node is taken."""
    v1 = approval()

    async def main():
        async with make_engine(sqlite_url) as engine:
            state = await engine.run(v1)
            v2 = approval()
            v2.nodes["publish"].timeout = 30.0  # a pending node changes: accepted
            v3 = approval()
            v3.nodes["draft"].timeout = 30.0  # a completed node changes: refused
            from spindle import DefinitionChanged

            with pytest.raises(DefinitionChanged, match="draft"):
                await engine.resume(state.run_id, "approve", "yes", workflow=v3)
            return await engine.resume(state.run_id, "approve", "yes", workflow=v2)

    assert run(main()).status == RunStatus.COMPLETED


def test_events_are_numbered_gap_free_per_run(store_url, make_engine):
    """Observers see every lifecycle event with a gap-free per-run sequence."""
    events: list[Any] = []

    async def main():
        async with make_engine(store_url, observers=[events.append]) as engine:
            wf = approval()
            state = await engine.run(wf)
            await engine.resume(state.run_id, "approve", "yes", workflow=wf)

    run(main())
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    types = [e.type.value for e in events]
    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert "run_waiting" in types and "run_resumed" in types
    assert len({e.event_id for e in events}) == len(events)


def test_a_required_observer_failure_propagates_without_corrupting_state(sqlite_url, make_engine):
    """A raising required observer surfaces its error; the run stays consistent and resumable."""
    from spindle import ObserverBinding

    class Broken:
        async def on_event(self, event: Any) -> None:
            if event.type.value == "node_completed":
                raise RuntimeError("observer down")

    async def main():
        async with make_engine(
            sqlite_url, observers=[ObserverBinding(Broken(), required=True)]
        ) as engine:
            with pytest.raises(RuntimeError, match="observer down"):
                await engine.run(linear())
            (state,) = await engine.list_runs()
            records = await engine.ledger(state.run_id)
        async with make_engine(sqlite_url) as engine:
            done = await engine.drive(state.run_id, workflow=linear())
        return records, done

    records, done = run(main())
    assert verify(records).ok
    assert done.status == RunStatus.COMPLETED
    assert done.output == "HELLO WORLD"


def test_cancel_of_an_unknown_run_raises_run_not_found(store_url, make_engine):
    """Cancelling a run id that does not exist raises RunNotFound naming it."""

    async def main():
        async with make_engine(store_url) as engine:
            with pytest.raises(RunNotFound, match="nope"):
                await engine.cancel("nope")

    run(main())


def secret_workflow() -> Workflow:
    from spindle.core.workflow import InputSpec

    wf = Workflow("secretive", inputs={"token": InputSpec(secret=True), "user": "ada"})
    wf.effect("approve", {"kind": "ask_user", "prompt": "go?"})

    @wf.node(after=["approve"])
    def call(token: str, user: str) -> str:
        return f"called as {user} with token={token}"

    wf.output = "call"
    return wf


def test_secret_inputs_are_never_stored_in_clear(sqlite_url, tmp_path, make_engine):
    """A secret input is redacted in the stored run, the ledger and the output."""
    secret = "s3cr3t-value-42"

    async def main():
        async with make_engine(sqlite_url) as engine:
            wf = secret_workflow()
            state = await engine.run(wf, {"token": secret})
            done = await engine.resume(state.run_id, None, "ok", workflow=wf)
            return done, await engine.ledger(done.run_id)

    done, records = run(main())
    assert done.status == RunStatus.COMPLETED
    assert done.output == "called as ada with token=***"
    assert done.inputs["token"] == "***"
    assert all(secret not in repr(r) for r in records)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_secret_missing_in_another_process_parks_the_run(sqlite_url, make_engine):
    """Resumed without the secret, the run waits saying how to pass it; given it, it completes."""
    secret = "s3cr3t-value-42"

    async def main():
        wf = secret_workflow()
        async with make_engine(sqlite_url) as engine:
            state = await engine.run(wf, {"token": secret})
        async with make_engine(sqlite_url) as engine:
            parked = await engine.resume(state.run_id, None, "ok", workflow=wf)
        async with make_engine(sqlite_url) as engine:
            engine.give_secrets(state.run_id, {"token": secret})
            done = await engine.resume(state.run_id, workflow=wf)
        return parked, done

    parked, done = run(main())
    assert parked.status == RunStatus.WAITING
    assert "secret input 'token'" in parked.error and "--input token=VALUE" in parked.error
    assert done.status == RunStatus.COMPLETED
    assert done.output == "called as ada with token=***"
    assert done.error is None


def test_command_output_logs_never_hold_a_secret(sqlite_url, tmp_path, make_engine):
    """A command printing a secret input leaves only *** in its log files and result."""
    from spindle.core.workflow import InputSpec

    secret = "hunter2-very-secret"
    wf = Workflow("loud", inputs={"token": InputSpec(secret=True)})
    wf.task(
        "use", {"kind": "command", "command": "echo token={inputs.token}; echo {inputs.token} >&2"}
    )

    async def main():
        async with make_engine(sqlite_url) as engine:
            return await engine.run(wf, {"token": secret})

    state = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"use": "token=***"}
    logs = list((tmp_path / "runs").rglob("*.std*"))
    assert logs, "the subprocess executor keeps logs"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_nodes_with_the_same_executor_options_share_one_executor(store_url, make_engine):
    """Nodes naming equal executor options share one instance (one process pool, not many)."""
    seen: list[Any] = []

    class Spy:
        """Middleware recording which executor instance runs each payload."""

        priority = 0
        stages = frozenset({"execute"})

        async def __call__(self, call_next, executor, payload, task):
            seen.append(executor)
            return await call_next(executor, payload, task)

    wf = Workflow("shared")
    for i in range(4):
        wf.task(
            f"n{i}",
            {"kind": "python", "function": count},
            inputs={"name": {"value": "x"}},
            executor={"kind": "inline"},
        )

    async def main():
        async with make_engine(store_url, middleware=[Spy()]) as engine:
            return await engine.run(wf)

    assert run(main()).status == RunStatus.COMPLETED
    assert len(seen) == 4 and len({id(e) for e in seen}) == 1
