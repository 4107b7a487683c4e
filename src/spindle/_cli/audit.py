"""``spindle audit RUN_ID``: a run's audit trail, its disposition and its handoffs.

Finish hooks write audit entries (``run.audit(...)``), label how a run ended
(``run.set_disposition(...)``) and hand payloads to follow-on workflows
(``run.handoff(...)``). The ledger does not show any of it; this command does,
read-only, for an operator answering "what did the hooks decide, and why".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import echo_json, json_option, store_option
from spindle._cli._render import cell, short, table
from spindle._cli._running import call, make_engine

if TYPE_CHECKING:
    from spindle.core.model import AuditEntry, HandoffEnvelope, RunState

__all__ = ["audit"]


@click.command("audit")
@click.argument("run_id")
@store_option
@json_option
def audit(run_id: str, store: str | None, as_json: bool) -> None:
    """Show a run's audit trail, disposition and handoffs.

    The audit trail is what the run's finish hooks recorded with run.audit():
    each entry's sequence number, time, the hook that wrote it, its message
    and its data. The disposition is the label a hook set on how the run
    ended (run.set_disposition); handoffs are the payloads it handed to
    follow-on workflows, with the run each one started. Exit code 0 once the
    run is found, whatever its status; 2 for an unknown run.
    """

    async def main() -> tuple[RunState, list[AuditEntry], list[HandoffEnvelope]]:
        async with make_engine(store) as engine:
            state = await engine.get_run(run_id)
            entries = await engine.audit(run_id)
            handoffs = await engine.store.handoffs(run_id)
            return state, entries, handoffs

    state, entries, handoffs = call(main)
    if as_json:
        echo_json(_document(state, entries, handoffs))
        return
    click.echo(f"run          {state.run_id}")
    click.echo(f"workflow     {state.workflow}")
    click.echo(f"status       {state.status.value}")
    click.echo(f"disposition  {state.disposition or '(none set)'}")
    if entries:
        click.echo("audit trail:")
        table(
            ("SEQ", "TIME", "SOURCE", "MESSAGE", "DATA"),
            (
                (
                    str(e.seq),
                    e.created_at.isoformat(timespec="seconds"),
                    e.source or "-",
                    cell(e.message),
                    cell(short(e.data) if e.data else ""),
                )
                for e in entries
            ),
        )
    else:
        click.echo("audit trail: (no entries)")
    if handoffs:
        click.echo("handoffs:")
        table(
            ("ENVELOPE", "TARGET", "STARTED RUN", "PAYLOAD"),
            (
                (
                    h.envelope_id[:12],
                    h.target,
                    h.acknowledged_run_id or "(not started yet)",
                    cell(short(h.payload)),
                )
                for h in handoffs
            ),
        )


def _document(
    state: RunState, entries: list[AuditEntry], handoffs: list[HandoffEnvelope]
) -> dict[str, Any]:
    """The ``audit --json`` document."""
    return {
        "run_id": state.run_id,
        "workflow": state.workflow,
        "status": state.status.value,
        "disposition": state.disposition,
        "audit": [
            {
                "seq": e.seq,
                "created_at": e.created_at.isoformat(),
                "source": e.source,
                "message": e.message,
                "data": e.data,
            }
            for e in entries
        ],
        "handoffs": [
            {
                "envelope_id": h.envelope_id,
                "target": h.target,
                "payload": h.payload,
                "created_at": h.created_at.isoformat(),
                "started_run_id": h.acknowledged_run_id,
            }
            for h in handoffs
        ],
    }
