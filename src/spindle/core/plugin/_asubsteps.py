"""Durable sub-steps from ``async def`` tasks: ``await ctx.astep(...)`` and ``ctx.amap``.

The same steps as :mod:`spindle.core.plugin._substeps`, made on the engine's
event loop: a commit is awaited, a sync function runs in a worker thread,
a timeout cancels the attempt.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from spindle.core.errors import StepTimeout
from spindle.core.model import Effect, RetryPolicy, step_backoff_key, utcnow
from spindle.core.plugin._signals import Suspend
from spindle.core.plugin._substeps import (
    Step,
    backoff,
    ensure_open,
    gave_up,
    label_of,
    policy_of,
    replayed,
    reserve_items,
    retry_delay,
    spent,
)

if TYPE_CHECKING:
    from spindle.core.plugin._calls import DurableCalls

__all__ = ["amap_steps", "arun_step"]


async def _call_async(step: Step, node_id: str) -> Any:
    async def call() -> Any:
        if inspect.iscoroutinefunction(step.fn):
            return await step.fn(*step.args, **step.kwargs)
        value = await asyncio.to_thread(step.fn, *step.args, **step.kwargs)
        return await value if inspect.isawaitable(value) else value

    if step.timeout is None:
        return await call()
    try:
        async with asyncio.timeout(step.timeout):
            return await call()
    except TimeoutError:
        raise StepTimeout(
            f"node '{node_id}': step '{step.label}' timed out after {step.timeout:g}s",
            node_id=node_id,
        ) from None


async def _make_async(ctx: DurableCalls, step: Step) -> Any:
    rec = replayed(ctx, step.key, step.label)
    log = ctx.steps
    if rec is not None:
        return await log.value(rec) if log is not None else rec.result
    if log is None:
        if step.key not in ctx.new_calls:
            ctx.new_calls[step.key] = await _call_async(step, ctx.node_id)
        return ctx.new_calls[step.key]
    ensure_open(log, ctx.node_id)
    history = log.history(step.key)
    if spent(history):
        raise gave_up(ctx, step.label, history)
    pause = backoff(ctx, log, step, history)
    if pause:
        await asyncio.sleep(pause)
    attempt = history.failures + 1
    while True:
        try:
            value = await _call_async(step, ctx.node_id)
        except Exception as exc:
            delay = retry_delay(step.policy, attempt, exc)
            await log.failed(step.call, exc, name=step.label, attempt=attempt, delay=delay)
            if delay is None:
                raise
            if delay > log.inline_sleep:
                due = utcnow() + timedelta(seconds=delay)
                key = step_backoff_key(ctx.run_id, ctx.node_id, step.call, attempt)
                raise Suspend(Effect("wait_until", {"until": due}, key=key)) from exc
            await asyncio.sleep(delay)
            ensure_open(log, ctx.node_id)
            attempt += 1
            continue
        return await log.completed(step.call, value, name=step.label, attempt=attempt)


def arun_step(
    ctx: DurableCalls,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    name: str | None,
    retry: RetryPolicy | Mapping[str, Any] | None,
    timeout: float | None,
) -> Awaitable[Any]:
    """``ctx.astep``: reserve the call index now, make the sub-step when awaited."""
    index, key = ctx.reserve_call()
    step = Step(index, key, name or label_of(fn), fn, args, kwargs, policy_of(retry), timeout)
    return _make_async(ctx, step)


async def amap_steps(
    ctx: DurableCalls,
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    concurrency: int,
    name: str | None,
    retry: RetryPolicy | Mapping[str, Any] | None,
    timeout: float | None,
) -> list[Any]:
    """``ctx.amap``: one sub-step per item, ``concurrency`` at a time, in item order."""
    _, steps = reserve_items(ctx, "amap", fn, items, concurrency, name, retry, timeout)
    gate = asyncio.Semaphore(concurrency)

    async def one(step: Step) -> Any:
        async with gate:
            return await _make_async(ctx, step)

    results = await asyncio.gather(*(one(s) for s in steps), return_exceptions=True)
    for result in results:  # every step ran to its end; the first failure in order wins
        if isinstance(result, BaseException):
            raise result
    return list(results)
