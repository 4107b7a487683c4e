"""The tracebacks a run's ledger keeps, for ``spindle show`` and ``spindle logs``.

When a Python task's own code raises, the engine keeps where it was raised
in the attempt's record: a ``node`` record (the node failed) or a ``retry``
record (another attempt follows) whose ``result`` is ``{"traceback": TEXT}``,
secrets already scrubbed; a failed attempt of a sub-step (``ctx.step``) keeps
its own in its ``call_failure`` record. spindle's own errors (a command's exit code, a
timeout) keep none: their message says it all. Everything here reads records
and never changes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spindle.core.model import StepRecord

__all__ = ["SHOW_LINES", "add_tracebacks", "attempt_traceback", "show_lines", "step_traceback"]

#: How many trailing lines of a traceback ``spindle show`` prints.
SHOW_LINES = 15

_ATTEMPT_KINDS = ("node", "retry")


def attempt_traceback(record: StepRecord) -> str | None:
    """The traceback a failed attempt's record keeps, else None."""
    if record.kind.value not in _ATTEMPT_KINDS or record.status.value != "failed":
        return None
    return _kept(record)


def step_traceback(record: StepRecord) -> str | None:
    """The traceback a failed sub-step attempt's record keeps, else None."""
    return _kept(record) if record.kind.value == "call_failure" else None


def _kept(record: StepRecord) -> str | None:
    result = record.result
    if isinstance(result, dict) and isinstance(result.get("traceback"), str):
        text: str = result["traceback"]
        return text
    return None


def add_tracebacks(nodes: dict[str, dict[str, Any]], ledger: Iterable[StepRecord]) -> None:
    """Give every row of ``nodes`` (from ``node_rows``) a ``traceback`` and its attempt.

    A node showing an error (failed, or retrying) gets the traceback of its
    latest failed attempt that kept one; every other row gets None. The
    attempt goes in ``traceback_attempt``, which ``--json`` leaves out.
    """
    latest: dict[str, tuple[int, str]] = {}
    for rec in ledger:
        text = attempt_traceback(rec)
        if text is not None and rec.node_id:
            latest[rec.node_id] = (rec.attempt, text)
    for node_id, info in nodes.items():
        found = latest.get(node_id) if info.get("error") else None
        info["traceback"] = found[1] if found else None
        info["traceback_attempt"] = found[0] if found else None


def show_lines(
    run_id: str, node_id: str, info: dict[str, Any], limit: int = SHOW_LINES
) -> list[str]:
    """The lines ``spindle show`` prints under a node's error: its traceback's last lines.

    When lines are left out, the first line says how many and the command
    that prints them all.
    """
    text = info.get("traceback")
    if not text:
        return []
    lines = text.rstrip("\n").splitlines()
    attempt = info.get("traceback_attempt")
    which = f" of attempt {attempt}" if attempt and attempt != info.get("attempts") else ""
    head = f"traceback{which}:"
    kept: Sequence[str] = lines
    if len(lines) > limit:
        kept = lines[-limit:]
        head = (
            f"traceback{which} (last {limit} of {len(lines)} lines; "
            f"all of it: spindle logs {run_id} {node_id}):"
        )
    return [head, *(f"  {line}" for line in kept)]
