"""``ask_user``: suspend the run until a person answers."""

from __future__ import annotations

from typing import Any, ClassVar

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
from spindle.core.errors import InvalidAnswer


@define
class AskUserHandler(EffectHandler, kind="ask_user"):
    """Ask a person a question; the answer (``spindle resume``) is the result.

    With ``choices`` the answer must be one of them; without, any free text
    (or JSON value) is accepted. ``key`` names the wait (default: the node id).

    Attributes:
        prompt: the question shown to the person (``spindle show``, ``--interactive``).
        choices: the allowed answers; omit for free text.
        key: the wait key ``spindle resume --key`` names (default: the node id);
            a template like ``wait_event``'s (``review-{inputs.ticket}``).
    """

    templates: ClassVar[tuple[str, ...]] = ("key",)

    prompt: str
    choices: list[str] | None = None
    key: str | None = None

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Always wait: only a person can answer."""
        return EffectOutcome.waiting(
            WaitState(
                self.key or ctx.wait_key,
                WaitReason.USER,
                ctx.node_id,
                prompt=self.prompt,
                choices=list(self.choices) if self.choices is not None else None,
            )
        )

    @classmethod
    def accept(cls, wait: WaitState, payload: Any) -> Any:
        """Refuse an answer that is not among the offered choices."""
        if wait.choices is not None and payload not in wait.choices:
            offered = ", ".join(wait.choices)
            raise InvalidAnswer(
                f"{payload!r} is not one of the choices for '{wait.key}' "
                f"({offered}); answer with one of them, e.g. "
                f"--payload '\"{wait.choices[0]}\"'"
                if wait.choices
                else f"{payload!r} is not an accepted answer for '{wait.key}'"
            )
        return payload

    def check(self, node: object) -> list[str]:
        """Choices, when given, are not empty."""
        if self.choices is not None and not self.choices:
            return ["ask_user choices must not be empty (omit it for free text)"]
        return []
