"""Signals a task raises to the engine through its own code: never catch them.

Both derive from ``BaseException``, so a task's ``except Exception`` cannot
swallow them by accident.
"""

from __future__ import annotations

from spindle.core.model import Effect

__all__ = ["AttemptAbandoned", "Suspend"]


class Suspend(BaseException):
    """Raised inside a task to hand an effect to the engine; never catch it."""

    def __init__(self, effect: Effect) -> None:
        super().__init__(effect.kind)
        self.effect = effect


class AttemptAbandoned(BaseException):
    """Raised in a task whose attempt already ended (it timed out, or its run was
    cancelled) when it makes another sub-step: nothing more of it is recorded."""
