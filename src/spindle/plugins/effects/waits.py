"""``wait_event`` and ``wait_until``: durable waits for an event or a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from attrs import define

from spindle import (
    Effect,
    EffectContext,
    EffectHandler,
    EffectOutcome,
    RunState,
    WaitReason,
    WaitState,
)


@define
class WaitEventHandler(EffectHandler, kind="wait_event"):
    """Wait until ``spindle emit KEY`` delivers an event; its payload is the result.

    An event emitted *before* the run waits is kept in the store's inbox and
    delivered here, never lost. With ``timeout`` (seconds) the node fails if
    no event arrives in time.

    Attributes:
        key: the event key to wait for (``spindle emit KEY``); a template, so
            ``order-{inputs.order}-paid`` gives each run its own key
            (``{inputs.NAME}``, ``{run.id}``, ``{NAME}`` for a node input;
            ``{{``/``}}`` for literal braces).
        timeout: seconds to wait before the node fails; none waits forever.
    """

    templates: ClassVar[tuple[str, ...]] = ("key",)

    key: str
    timeout: float | None = None

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Take an event already in the inbox, or wait for one."""
        for event in await ctx.store.pending_events(self.key, for_run=run.run_id):
            return EffectOutcome.completed(event.payload, consumed_event_id=event.event_id)
        due = ctx.now + timedelta(seconds=self.timeout) if self.timeout is not None else None
        return EffectOutcome.waiting(
            WaitState(ctx.wait_key, WaitReason.EVENT, ctx.node_id, event_key=self.key, due_at=due)
        )

    def check(self, node: object) -> list[str]:
        """A timeout must be positive."""
        if self.timeout is not None and self.timeout <= 0:
            return [f"wait_event timeout must be positive, got {self.timeout}"]
        return []

    def event_keys(self) -> list[str]:
        """The one key this node waits on."""
        return [self.key]


@define
class WaitUntilHandler(EffectHandler, kind="wait_until"):
    """Sleep durably until ``until`` (an aware datetime) or for ``seconds``.

    The timer survives restarts: a worker (or ``spindle resume``) fires it when
    due. Short timers are awaited in-process by the engine.

    Attributes:
        until: an aware datetime (with a UTC offset) to sleep until.
        seconds: how long to sleep, from when the node first runs.
    """

    until: datetime | None = None
    seconds: float | None = None

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Complete at once when the time has passed, else wait for the timer."""
        due = (
            self.until
            if self.until is not None
            else ctx.now + timedelta(seconds=self.seconds or 0.0)
        )
        if due <= ctx.now:
            return EffectOutcome.completed(due.isoformat())
        return EffectOutcome.waiting(
            WaitState(ctx.wait_key, WaitReason.TIMER, ctx.node_id, due_at=due)
        )

    def check(self, node: object) -> list[str]:
        """Exactly one of ``until`` and ``seconds`` is given."""
        if (self.until is None) == (self.seconds is None):
            return ["wait_until needs exactly one of 'until' (an aware datetime) or 'seconds'"]
        return []
