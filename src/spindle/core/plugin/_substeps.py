"""Durable sub-steps: what they share, and ``ctx.step`` / ``ctx.map`` from sync tasks.

Each sub-step takes the node's next *call index* when it is called (so keys
follow call order, never completion order) and is committed to the ledger
**before it returns**, through the engine's :class:`StepLog`: after a crash
at any point, a completed sub-step is never executed again and at most the
one in flight runs again. On replay the recorded value is returned (as the
ledger holds it, JSON data) — provided the call at that index is the same
step; a different one raises :class:`~spindle.core.errors.NondeterminismError`.

A sync task runs in a worker thread: its sub-step hops to the engine's event
loop for the commit and blocks until it is durable. A failing sub-step with
a retry policy records each failed attempt and waits out its backoff —
in-process when short, as a durable timer (the node waits) when longer.
The async twins (``ctx.astep``, ``ctx.amap``) are in
:mod:`spindle.core.plugin._asubsteps`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from spindle.core.errors import NondeterminismError, StepTimeout, TaskError
from spindle.core.model import (
    Effect,
    RetryPolicy,
    StepRecord,
    step_backoff_key,
    structure,
    utcnow,
)
from spindle.core.plugin._signals import AttemptAbandoned, Suspend
from spindle.core.plugin._steplog import StepHistory, StepLog

if TYPE_CHECKING:
    from spindle.core.plugin._calls import DurableCalls

__all__ = [
    "Step",
    "backoff",
    "ensure_open",
    "gave_up",
    "label_of",
    "map_steps",
    "policy_of",
    "replayed",
    "reserve_items",
    "retry_delay",
    "run_step",
    "spent",
]

R = TypeVar("R")

#: The key of a result kept in the artifact store (as the engine writes it).
_ARTIFACT = "$artifact"


def label_of(fn: Callable[..., Any]) -> str:
    """A sub-step's default name: its function's qualified name."""
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def replayed(ctx: DurableCalls, key: str, label: str) -> StepRecord | None:
    """The completed record of call ``key``, checked to be the call ``label``; None if
    the call has not completed.

    Raises:
        NondeterminismError: the ledger holds another step at this call index.
        TaskError: the call is a wait that ended badly (it fails the same way again).
    """
    rec = ctx.recorded.get(key)
    if rec is None:
        return None
    if rec.name is not None and rec.name != label:
        index = key.rsplit(":", 1)[-1]
        raise NondeterminismError(
            f"node '{ctx.node_id}': call {index} was '{rec.name}' when the node first ran, "
            f"but is '{label}' now; a task must make its steps and effects in the same "
            f"order on every run (decide inside a step, not around it)",
            node_id=ctx.node_id,
        )
    if rec.status == "completed":
        return rec
    if rec.status == "failed":
        # A wait that ended badly (e.g. wait_for_event timed out) fails the call
        # the same way every time the task re-runs.
        raise TaskError(f"node '{ctx.node_id}': {rec.error}", node_id=ctx.node_id)
    return None


def policy_of(retry: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy | None:
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    return structure(dict(retry), RetryPolicy, path="ctx.step(retry=...)", what="retry policy")


def retry_delay(policy: RetryPolicy | None, attempt: int, error: BaseException) -> float | None:
    """Seconds to wait before trying again after failed ``attempt``, or None: give up."""
    if policy is None or attempt >= policy.max_attempts:
        return None
    mro = [c.__qualname__ for c in type(error).__mro__]
    mro += [f"{c.__module__}.{c.__qualname__}" for c in type(error).__mro__]
    if not policy.retries(type(error).__name__, mro):
        return None
    import random

    return float(policy.delay(attempt, random.random()))


def spent(history: StepHistory) -> bool:
    """Whether the last failure was not to be tried again (no retry left, or not retryable)."""
    last = history.last
    if last is None:
        return False
    return not isinstance(last.result, dict) or last.result.get("delay") is None


def gave_up(ctx: DurableCalls, label: str, history: StepHistory) -> TaskError:
    error = history.last.error if history.last is not None else "it failed"
    return TaskError(
        f"node '{ctx.node_id}': step '{label}' failed for good when it first ran ({error}); "
        f"it is not tried again until the node is",
        node_id=ctx.node_id,
    )


class Step(NamedTuple):
    """One sub-step to make: where it stands in the node, and what to run."""

    call: int
    key: str
    label: str
    fn: Callable[..., Any]
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    policy: RetryPolicy | None
    timeout: float | None


def backoff(ctx: DurableCalls, log: StepLog, step: Step, history: StepHistory) -> float:
    """Seconds still to wait for the last failure's backoff (0: none). A backoff longer
    than ``inline_sleep`` suspends the node on a durable timer instead."""
    last = history.last
    delay = last.result.get("delay") if last is not None and isinstance(last.result, dict) else None
    if delay is None or last is None or last.finished_at is None:
        return 0.0
    due = last.finished_at + timedelta(seconds=float(delay))
    left = (due - utcnow()).total_seconds()
    if left > log.inline_sleep:
        key = step_backoff_key(ctx.run_id, ctx.node_id, step.call, history.failures)
        raise Suspend(Effect("wait_until", {"until": due}, key=key))
    return max(0.0, left)


# --- from a thread ------------------------------------------------------------------


def _block(log: StepLog, work: Coroutine[Any, Any, R]) -> R:
    """Run ``work`` on the engine's loop and wait until it is done (from a worker thread)."""
    return asyncio.run_coroutine_threadsafe(work, log.loop).result()


def _refuse_loop_thread(log: StepLog, what: str) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is log.loop:
        raise TaskError(
            f"{what} was called on the engine's event loop (from an async def task), where "
            f"it cannot wait for its commit; use 'await ctx.astep(fn, ...)' or "
            f"'await ctx.amap(fn, items)' there"
        )


def _call_sync(step: Step, node_id: str) -> Any:
    if step.timeout is None:
        return step.fn(*step.args, **step.kwargs)
    box: list[Any] = []

    def target() -> None:
        try:
            box.append((True, step.fn(*step.args, **step.kwargs)))
        except BaseException as exc:
            box.append((False, exc))

    # A sync function cannot be stopped: past its timeout it runs on, unrecorded.
    worker = threading.Thread(target=target, daemon=True, name=f"spindle-step-{step.label}")
    worker.start()
    worker.join(step.timeout)
    if not box:
        raise StepTimeout(
            f"node '{node_id}': step '{step.label}' timed out after {step.timeout:g}s",
            node_id=node_id,
        )
    ok, value = box[0]
    if not ok:
        raise value
    return value


def ensure_open(log: StepLog, node_id: str) -> None:
    """Refuse to start a sub-step of an attempt that already ended."""
    if not log.open:
        raise AttemptAbandoned(
            f"node '{node_id}': its attempt already ended (it timed out, or its run was "
            f"stopped); this sub-step is not run"
        )


def _make_sync(ctx: DurableCalls, log: StepLog, step: Step) -> Any:
    ensure_open(log, ctx.node_id)
    history = log.history(step.key)
    if spent(history):
        raise gave_up(ctx, step.label, history)
    pause = backoff(ctx, log, step, history)
    if pause:
        time.sleep(pause)
    attempt = history.failures + 1
    while True:
        try:
            value = _call_sync(step, ctx.node_id)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError(
                    "ctx.step() got a coroutine; use 'await ctx.astep(fn, ...)' for async functions"
                )
        except Exception as exc:
            delay = retry_delay(step.policy, attempt, exc)
            _block(log, log.failed(step.call, exc, name=step.label, attempt=attempt, delay=delay))
            if delay is None:
                raise
            if delay > log.inline_sleep:
                due = utcnow() + timedelta(seconds=delay)
                key = step_backoff_key(ctx.run_id, ctx.node_id, step.call, attempt)
                raise Suspend(Effect("wait_until", {"until": due}, key=key)) from exc
            time.sleep(delay)
            ensure_open(log, ctx.node_id)
            attempt += 1
            continue
        return _block(log, log.completed(step.call, value, name=step.label, attempt=attempt))


def _value_sync(log: StepLog | None, rec: StepRecord) -> Any:
    result = rec.result
    if isinstance(result, dict) and _ARTIFACT in result and log is not None:
        return _block(log, log.value(rec))
    return result


def run_step(
    ctx: DurableCalls,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    name: str | None,
    retry: RetryPolicy | Mapping[str, Any] | None,
    timeout: float | None,
) -> Any:
    """``ctx.step``: make one sub-step from a sync task."""
    index, key = ctx.reserve_call()
    label = name or label_of(fn)
    rec = replayed(ctx, key, label)
    if rec is not None:
        return _value_sync(ctx.steps, rec)
    step = Step(index, key, label, fn, args, kwargs, policy_of(retry), timeout)
    log = ctx.steps
    if log is None:
        return _in_memory(ctx, step)
    _refuse_loop_thread(log, "ctx.step()")
    return _make_sync(ctx, log, step)


def _in_memory(ctx: DurableCalls, step: Step) -> Any:
    """Outside an engine (a context built by hand): run once per context, keep in memory."""
    if step.key not in ctx.new_calls:
        ctx.new_calls[step.key] = step.fn(*step.args, **step.kwargs)
    return ctx.new_calls[step.key]


def reserve_items(
    ctx: DurableCalls,
    method: str,
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    concurrency: int,
    name: str | None,
    retry: RetryPolicy | Mapping[str, Any] | None,
    timeout: float | None,
) -> tuple[str, list[Step]]:
    """The label and one reserved :class:`Step` per item, in item order, for ``ctx.METHOD``.

    Every index is reserved before any step runs, so keys follow the items, not
    the order the steps finish in.

    Raises:
        ValueError: ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise ValueError(f"ctx.{method}() needs concurrency >= 1, got {concurrency}")
    label = name or label_of(fn)
    policy = policy_of(retry)
    steps = []
    for item in items:
        index, key = ctx.reserve_call()
        steps.append(Step(index, key, label, fn, (item,), {}, policy, timeout))
    return label, steps


def map_steps(
    ctx: DurableCalls,
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    concurrency: int,
    name: str | None,
    retry: RetryPolicy | Mapping[str, Any] | None,
    timeout: float | None,
) -> list[Any]:
    """``ctx.map``: one sub-step per item, ``concurrency`` at a time, results in item order."""
    label, steps = reserve_items(ctx, "map", fn, items, concurrency, name, retry, timeout)
    log = ctx.steps
    out: list[Any] = [None] * len(steps)
    todo: list[tuple[int, Step]] = []
    for i, step in enumerate(steps):
        rec = replayed(ctx, step.key, label)
        if rec is not None:
            out[i] = _value_sync(log, rec)
        else:
            todo.append((i, step))
    if not todo:
        return out
    if log is None:
        for i, step in todo:
            out[i] = _in_memory(ctx, step)
        return out
    _refuse_loop_thread(log, "ctx.map()")
    with concurrent.futures.ThreadPoolExecutor(concurrency, "spindle-map") as pool:
        # Each item runs in the caller's context, as asyncio.to_thread would: what
        # the task's context carries (where its prints are kept) holds for its items.
        futures = [
            (i, pool.submit(contextvars.copy_context().run, _make_sync, ctx, log, step))
            for i, step in todo
        ]
        concurrent.futures.wait([f for _, f in futures])
    for i, future in futures:  # every step is committed; the first failure in item order wins
        out[i] = future.result()
    return out
