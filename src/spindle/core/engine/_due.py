"""What a run about to stop driving can answer at once, instead of waiting.

Before a drive leaves a run ``waiting`` it looks for two things: an event
the inbox holds for one of its event waits (emitted while the run was busy,
so ``emit`` could not drive it), and a timer due within
``max_inline_sleep``, which is cheaper to sleep through in-process than to
leave for a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from spindle.core.engine._answers import Answer
from spindle.core.model import RunState, WaitReason, WaitState, utcnow

if TYPE_CHECKING:
    from spindle.core.engine._journal import Pending, RunJournal
    from spindle.core.engine._outcomes import Ending, Outcomes
    from spindle.core.store import Store

__all__ = ["due_timer", "queued_answer", "resolve_timer"]


async def queued_answer(store: Store, state: RunState) -> Answer | None:
    """The answer to one of the run's event waits from an event the inbox holds for it
    (queued for the run while it was busy, or for any run); None if there is none."""
    for wait in state.waits:
        if wait.reason is WaitReason.EVENT and wait.event_key is not None:
            for event in await store.pending_events(wait.event_key, for_run=state.run_id):
                return Answer(
                    event_key=wait.event_key, payload=event.payload, consume=(event.event_id,)
                )
    return None


def due_timer(
    waits: Sequence[WaitState], max_inline_sleep: float
) -> tuple[WaitState, float] | None:
    """The timed wait due first, with the seconds until it is due, if that is within
    ``max_inline_sleep``; None otherwise."""
    timers = [w for w in waits if w.due_at is not None]
    if not timers:
        return None
    wait = min(timers, key=lambda w: w.due_at or utcnow())
    assert wait.due_at is not None  # timers have a due time
    delay = (wait.due_at - utcnow()).total_seconds()
    return None if delay > max_inline_sleep else (wait, delay)


def resolve_timer(
    outcomes: Outcomes, journal: RunJournal, wait: WaitState
) -> tuple[Pending, Ending | None]:
    """Resolve the due timer ``wait`` in a new batch: a retry runs again (nothing to
    record), a sleep ends with its due time, an event wait times out. Returns the batch
    and, if resolving it ends the drive, how."""
    pending = journal.pending()
    state = journal.state
    state.waits = [w for w in state.waits if w.key != wait.key]
    ending = None
    if wait.reason == WaitReason.EVENT:
        error = f"timed out waiting for event '{wait.event_key}'"
        ending = outcomes.resolve_wait(pending, wait, None, error=error)
    elif wait.reason != WaitReason.RETRY:
        due = wait.due_at.isoformat() if wait.due_at else None
        ending = outcomes.resolve_wait(pending, wait, due)
    return pending, ending
