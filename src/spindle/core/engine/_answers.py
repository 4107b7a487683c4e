"""Which wait an answer is for, and what it records.

An answer comes from ``resume`` (a person, a script), from ``emit`` (an
event delivered to the run waiting on its key), or from a sub-workflow
child's end. :func:`choose_wait` checks it against the run as loaded under
the lease — the one load an answer costs — and says what to record, so the
driver can commit the answer and drive on in the same breath.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from attrs import define, field

from spindle.core.engine._followon import child_outcome
from spindle.core.errors import InvalidAnswer, RunNotFound, RunNotWaiting, WaitKeyMismatch
from spindle.core.model import RunState, StepKind, StepStatus, WaitReason, WaitState, resume_key
from spindle.core.plugin import EffectHandler

if TYPE_CHECKING:
    from spindle.core.engine._journal import Pending, RunJournal
    from spindle.core.engine._services import Services
    from spindle.core.workflow import Workflow

__all__ = [
    "ALREADY_ANSWERED",
    "AlreadyAnswered",
    "Answer",
    "Choice",
    "choose_wait",
    "partial_answer_batch",
]

#: Kinds of the handlers whose waits carry no ``kind`` (written by older versions).
_WAIT_KINDS = {
    WaitReason.USER: "ask_user",
    WaitReason.EVENT: "wait_event",
    WaitReason.TIMER: "wait_until",
    WaitReason.SUBWORKFLOW: "subworkflow",
}


@define
class Answer:
    """An answer for one of a run's waits.

    Attributes:
        wait_key: the wait it answers (None: the run's only wait).
        event_key: or: the wait on this event key (``emit``).
        payload: the answer.
        child: or: the ended sub-workflow run whose end answers its wait.
        consume: inbox events the answer uses up, consumed in the same commit.
        delivered: set once the answer is committed.
    """

    wait_key: str | None = None
    event_key: str | None = None
    payload: Any = None
    child: RunState | None = None
    consume: Sequence[str] = field(factory=tuple)
    delivered: bool = False


class AlreadyAnswered:
    """Nothing to record: the wait was answered already (or no longer exists)."""


ALREADY_ANSWERED = AlreadyAnswered()


class Choice(NamedTuple):
    """An answer checked against its wait: what to record.

    ``keep`` is set when the wait stays open after this answer (a wait that
    takes several): the wait's new ``data``; ``value`` is then what the answer
    contributed, for its ledger record.
    """

    wait: WaitState
    value: Any
    error: str | None = None
    keep: dict[str, Any] | None = None


async def choose_wait(
    services: Services, state: RunState, workflow: Workflow, answer: Answer
) -> Choice | AlreadyAnswered | None:
    """The wait ``answer`` answers, with the value (or error) to record.

    Returns ``(wait, value, error)``, :data:`ALREADY_ANSWERED` when there is
    nothing to record, or None when the run waits on nothing and no key was
    named (a plain ``resume`` of an interrupted run: just drive on).

    Raises:
        RunNotWaiting: the run ended, or does not wait on the key named.
        WaitKeyMismatch: no key was named and the run waits on several things,
            or the run does not wait on the key named.
        InvalidAnswer: the handler refuses the payload, or the wait is a
            sub-workflow's, which only the child's end answers.
    """
    rid = state.run_id
    if answer.event_key is not None or answer.child is not None:
        wait = next(
            (
                w
                for w in state.waits
                if (answer.child is None and w.event_key == answer.event_key)
                or (answer.child is not None and w.key == answer.wait_key)
            ),
            None,
        )
        if wait is None:
            return ALREADY_ANSWERED  # answered concurrently; nothing to deliver here
        if answer.child is not None:
            return Choice(wait, *child_outcome(answer.child))
        return _accept(services, workflow, wait, answer.payload)
    key = answer.wait_key
    if (
        key is not None
        and not any(w.key == key for w in state.waits)
        and await services.store.find_step(rid, resume_key(rid, key)) is not None
    ):
        return ALREADY_ANSWERED  # a second resume of the same wait changes nothing
    if state.status.terminal:
        raise RunNotWaiting(
            f"run {rid} has already {state.status.value}; there is nothing to resume"
        )
    if not state.waits:
        if key is not None:
            raise RunNotWaiting(f"run {rid} is {state.status.value} and not waiting for '{key}'")
        return None
    if key is None:
        if len(state.waits) > 1:
            keys = ", ".join(w.key for w in state.waits)
            raise WaitKeyMismatch(
                f"run {rid} waits on several things ({keys}); name one with --key"
            )
        key = state.waits[0].key
    wait = next((w for w in state.waits if w.key == key), None)
    if wait is None:
        keys = ", ".join(w.key for w in state.waits) or "nothing"
        raise WaitKeyMismatch(f"run {rid} is not waiting on '{key}'; it waits on: {keys}")
    if wait.reason == WaitReason.SUBWORKFLOW:
        return await _settled_child(services, rid, wait)
    if wait.reason == WaitReason.RETRY:
        return Choice(wait, None)
    return _accept(services, workflow, wait, answer.payload)


async def _settled_child(services: Services, run_id: str, wait: WaitState) -> Choice:
    """A sub-workflow wait, answered only by its child: settle it if the child ended."""
    child_id = wait.child_run_id or ""
    try:
        child = await services.store.load_run(child_id)
    except RunNotFound:
        child = None
    if child is not None and child.status.terminal:
        # The child ended but its end did not reach this run (a crash between the
        # two): settle the wait from how the child ended, whatever was given.
        return Choice(wait, *child_outcome(child))
    status = child.status.value if child is not None else "missing"
    raise InvalidAnswer(
        f"run {run_id} waits on '{wait.key}' for sub-workflow run {child_id} ({status}); "
        f"only that run's end answers it. See what the child waits on: spindle show {child_id}"
    )


def _accept(services: Services, workflow: Workflow, wait: WaitState, payload: Any) -> Choice:
    """What to record for ``payload``, as the handler that made ``wait`` decides."""
    node = workflow.nodes.get(wait.node_id)
    handler: type[EffectHandler]
    if wait.call_key is None and node is not None and node.effect is not None:
        handler = type(node.effect)
    else:
        kind = wait.kind or _WAIT_KINDS.get(wait.reason)
        handler = EffectHandler if kind is None else services.registry.get("effect", kind)
    decided = handler.answer(wait, payload)
    if decided.done:
        return Choice(wait, decided.value)
    return Choice(wait, payload, keep=decided.data)


def partial_answer_batch(
    journal: RunJournal, answer: Answer, wait: WaitState, value: Any, data: dict[str, Any]
) -> Pending:
    """The batch recording an answer that leaves its wait open (``wait.data`` is updated)."""
    pending = journal.pending()
    pending.consume.extend(answer.consume)
    wait.data = data
    journal.record(
        pending,
        wait.node_id,
        StepKind.RESUME,
        StepStatus.WAITING,
        resume_key(journal.state.run_id, wait.key),
        result={"key": wait.key, "answer": value},
    )
    return pending
