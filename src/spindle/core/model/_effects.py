"""Effects: what a node asks of the engine, and what the effect handler decided."""

from __future__ import annotations

import enum
from typing import Any

from attrs import define, field

from spindle.core.model._run import WaitState

__all__ = ["Effect", "EffectAnswer", "EffectOutcome", "EffectStatus"]


@define
class Effect:
    """A request a node makes of the engine, resolved by an effect handler.

    Attributes:
        kind: the effect handler kind (``ask_user``, ``wait_event``, ...).
        params: the handler's configuration (its attrs fields).
        key: the idempotency key of this request within the run.
    """

    kind: str
    params: dict[str, Any] = field(factory=dict)
    key: str = ""


class EffectStatus(enum.StrEnum):
    """What an effect handler decided."""

    COMPLETED = "completed"
    WAITING = "waiting"
    FAILED = "failed"


@define
class EffectOutcome:
    """The result of handling an effect: a value, a wait, or an error."""

    status: EffectStatus
    value: Any = None
    wait: WaitState | None = None
    error: str | None = None
    consumed_event_id: str | None = None

    @classmethod
    def completed(cls, value: Any = None, *, consumed_event_id: str | None = None) -> EffectOutcome:
        """The effect is resolved now with ``value``.

        ``consumed_event_id`` names an inbox event this resolution uses up; the
        engine marks it consumed in the same transaction as the ledger record.
        """
        return cls(EffectStatus.COMPLETED, value=value, consumed_event_id=consumed_event_id)

    @classmethod
    def waiting(cls, wait: WaitState) -> EffectOutcome:
        """The run must suspend until ``wait`` is resumed."""
        return cls(EffectStatus.WAITING, wait=wait)

    @classmethod
    def failed(cls, error: str) -> EffectOutcome:
        """The effect cannot be resolved; the node fails with ``error``."""
        return cls(EffectStatus.FAILED, error=error)


@define
class EffectAnswer:
    """What an effect handler makes of one answer to its wait (``EffectHandler.answer``).

    Either the wait is done — ``value`` is recorded as the node's (or the call's)
    result — or it stays open, keeping ``data`` (the handler's JSON state, e.g.
    the approvals so far) on the wait for the next answer. Every answer is a
    ledger record either way.
    """

    done: bool
    value: Any = None
    data: dict[str, Any] = field(factory=dict)

    @classmethod
    def final(cls, value: Any) -> EffectAnswer:
        """The wait is answered: record ``value`` and go on."""
        return cls(True, value)

    @classmethod
    def keep_waiting(cls, data: dict[str, Any]) -> EffectAnswer:
        """The wait stays open, with ``data`` as its new state."""
        return cls(False, data=dict(data))
