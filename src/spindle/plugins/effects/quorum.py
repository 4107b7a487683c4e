"""``approval_quorum``: a question that several people answer before the run goes on."""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import define

from spindle import (
    Effect,
    EffectAnswer,
    EffectContext,
    EffectHandler,
    EffectOutcome,
    InvalidAnswer,
    RunState,
    WaitReason,
    WaitState,
)


@define
class ApprovalQuorumHandler(EffectHandler, kind="approval_quorum"):
    """Wait until ``required`` distinct people approved, or one rejected.

    Each answer is one person's decision: ``{"by": "ada"}`` (an approval),
    ``{"by": "bob", "approve": false}`` (a rejection), or just ``"ada"``. Every
    answer is recorded; the same person approving twice counts once. The
    node's result is ``{"approved": true, "approvers": [...]}`` once the quorum
    is reached, or ``{"approved": false, "approvers": [...], "rejected_by":
    NAME}`` at the first rejection.

    Attributes:
        prompt: what the approvers are asked (``spindle show``).
        required: how many distinct approvals end the wait.
        approvers: who may answer; omit to let anyone answer.
        key: the wait key ``spindle resume --key`` names (default: the node id);
            a template like ``wait_event``'s (``sign-off-{inputs.release}``).
    """

    templates: ClassVar[tuple[str, ...]] = ("key",)

    prompt: str
    required: int = 2
    approvers: list[str] | None = None
    key: str | None = None

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Open the wait; only answers can close it."""
        return EffectOutcome.waiting(
            WaitState(
                self.key or ctx.wait_key,
                WaitReason.USER,
                ctx.node_id,
                prompt=self.prompt,
                data={
                    "required": self.required,
                    "approvers": None if self.approvers is None else list(self.approvers),
                    "approved_by": [],
                },
            )
        )

    @classmethod
    def answer(cls, wait: WaitState, payload: Any) -> EffectAnswer:
        """Count one decision; end the wait at the quorum or at a rejection."""
        who, approve = _decision(wait, payload)
        data = dict(wait.data)
        allowed = data.get("approvers")
        if allowed is not None and who not in allowed:
            raise InvalidAnswer(
                f"{who!r} may not answer '{wait.key}'; the approvers are {', '.join(allowed)}"
            )
        approved = list(data.get("approved_by", []))
        if not approve:
            return EffectAnswer.final(
                {"approved": False, "approvers": approved, "rejected_by": who}
            )
        if who not in approved:
            approved.append(who)
        if len(approved) >= int(data.get("required", 1)):
            return EffectAnswer.final({"approved": True, "approvers": approved})
        return EffectAnswer.keep_waiting({**data, "approved_by": approved})

    def check(self, node: object) -> list[str]:
        """At least one approval is required, and the approvers listed can give them."""
        problems = []
        if self.required < 1:
            problems.append(f"approval_quorum required must be at least 1, got {self.required}")
        if self.approvers is not None and len(set(self.approvers)) < self.required:
            problems.append(
                f"approval_quorum needs {self.required} distinct approvals but lists "
                f"{len(set(self.approvers))} approver(s)"
            )
        return problems


def _decision(wait: WaitState, payload: Any) -> tuple[str, bool]:
    """``(who, approves)`` from an answer, or ``InvalidAnswer`` saying what to send."""
    if isinstance(payload, str) and payload:
        return payload, True
    if isinstance(payload, dict) and isinstance(payload.get("by"), str) and payload["by"]:
        approve = payload.get("approve", True)
        if isinstance(approve, bool):
            return payload["by"], approve
    raise InvalidAnswer(
        f"answer '{wait.key}' with who decides: --payload '{{\"by\": \"ada\"}}' to approve, "
        f'\'{{"by": "ada", "approve": false}}\' to reject (or just \'"ada"\'); '
        f"got {payload!r}"
    )
