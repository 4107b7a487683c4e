"""How the run commands talk to the terminal: the JSON document, waiting
instructions, the ``show`` view, plain tables, and asking for
answers (``--interactive``).

Apart from :func:`answer_at_terminal` (which resumes a run with what the user
typed) everything here reads run states and ledger records
and never changes them. Human text goes through click (so tests can capture
it). Node progress is in :mod:`spindle._cli._progress` (``Progress`` is
re-exported here for the commands that import it from this module).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._progress import Progress
from spindle._cli._tracebacks import show_lines

if TYPE_CHECKING:
    from spindle.core.engine import Engine
    from spindle.core.model import Lease, RunState, StepRecord, WaitState

__all__ = [
    "Progress",
    "answer_at_terminal",
    "ask",
    "cell",
    "document",
    "how_to_continue",
    "interrupted",
    "node_rows",
    "parse_value",
    "print_ledger",
    "print_outcome",
    "print_runs",
    "print_show",
    "short",
    "table",
]


def document(state: RunState) -> dict[str, Any]:
    """The one JSON document ``--json`` prints for a run (the scripting contract)."""
    wait = state.waits[0] if state.waits else None
    return {
        "run_id": state.run_id,
        "workflow": state.workflow,
        "status": state.status.value,
        "output": state.output,
        "waiting": None if wait is None else _wait_document(wait),
        "waits": [_wait_document(w) for w in state.waits],
        "error": state.error,
        "parent_run_id": state.parent_run_id,
        "queue": None if state.queue is None else state.queue.to_dict(),
    }


def _wait_document(wait: Any) -> dict[str, Any]:
    return {
        "key": wait.key,
        "reason": wait.reason.value,
        "prompt": wait.prompt,
        "choices": wait.choices,
        "node_id": wait.node_id,
        "event_key": wait.event_key,
        "due_at": wait.due_at.isoformat() if wait.due_at else None,
        "child_run_id": wait.child_run_id,
    }


def short(value: Any) -> str:
    """A value on one line: text as it is, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def how_to_continue(state: RunState) -> list[str]:
    """Lines saying what each open wait of ``state`` needs and the command that gives it."""
    rid = state.run_id
    lines: list[str] = []
    for w in state.waits:
        reason = w.reason.value
        if reason == "user":
            choices = f" [{' / '.join(w.choices)}]" if w.choices else ""
            example = json.dumps(w.choices[0]) if w.choices else '"your answer"'
            lines.append(f"  {w.key}: {w.prompt or 'an answer'}{choices}")
            lines.append(f"    answer: spindle resume {rid} --key {w.key} --payload '{example}'")
        elif reason == "event":
            lines.append(f"  {w.key}: waiting for event '{w.event_key}'")
            lines.append(f"    deliver: spindle emit {w.event_key} --payload '{{...}}'")
        elif reason == "subworkflow":
            lines.append(f"  {w.key}: waiting for sub-workflow run {w.child_run_id}")
            lines.append(f"    see what it needs: spindle show {w.child_run_id}")
        elif w.due_at is not None:
            what = "retry" if reason == "retry" else "timer"
            lines.append(f"  {w.key}: {what} due at {w.due_at.isoformat(timespec='seconds')}")
            lines.append(f"    fired by: spindle worker  (or now: spindle resume {rid})")
        else:
            lines.append(f"  {w.key}: waiting ({reason})")
    return lines


def print_outcome(state: RunState) -> None:
    """The end of ``run`` / ``resume``: status and output on stdout, the error on stderr."""
    if state.status.value == "cancelled":
        reason = f": {state.error}" if state.error else ""
        click.echo(f"run {state.run_id} was cancelled{reason}")
        return
    click.echo(f"run {state.run_id} {state.status.value}")
    if state.status.value == "completed" and state.output is not None:
        click.echo(f"output: {short(state.output)}")
    if state.error:
        click.echo(f"error: {state.error}", err=True)
    if state.waits:
        click.echo("waiting on:")
        for line in how_to_continue(state):
            click.echo(line)


def cell(text: str, width: int = 60) -> str:
    """``text`` for a table cell: its first line, cut to ``width`` characters."""
    lines = text.strip().splitlines() or [""]
    if len(lines[0]) > width:
        return lines[0][: width - 3] + "..."
    return lines[0] + (" ..." if len(lines) > 1 else "")


def print_runs(states: Sequence[RunState], stopped: Container[str] = ()) -> None:
    """The ``spindle runs`` table; runs in ``stopped`` show as ``interrupted``."""
    rows = [
        (
            s.run_id,
            s.workflow,
            "interrupted" if s.run_id in stopped else s.status.value,
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            cell(f"waits on {', '.join(w.key for w in s.waits)}" if s.waits else (s.error or "")),
        )
        for s in states
    ]
    table(("RUN", "WORKFLOW", "STATUS", "CREATED (UTC)", "WAITING / ERROR"), rows)


def print_ledger(records: Sequence[StepRecord]) -> None:
    """The ``spindle ledger`` table."""
    rows = [
        (
            str(r.seq),
            r.kind.value,
            r.node_id or "-",
            r.status.value,
            str(r.attempt),
            cell(r.error or short(r.result)),
            r.record_hash[:12],
        )
        for r in records
    ]
    table(("SEQ", "KIND", "NODE", "STATUS", "TRY", "RESULT / ERROR", "HASH"), rows)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print left-aligned columns separated by two spaces."""
    all_rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    for r in all_rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


# --- show -------------------------------------------------------------------------------


def interrupted(state: RunState, lease: Lease | None, host: str) -> bool:
    """Whether a ``running`` run has no live driver (its process stopped mid-run)."""
    if state.status.value != "running":
        return False
    if lease is None or not lease.owner:
        return True
    from spindle.core.engine import pid_alive
    from spindle.core.model import utcnow

    if lease.expires_at <= utcnow():
        return True
    return lease.host == host and not pid_alive(lease.pid)


def cache_source(rec: StepRecord) -> dict[str, Any]:
    """Where a ``cache`` ledger record says a node's result came from: run and node."""
    result = rec.result if isinstance(rec.result, dict) else {}
    return {"run_id": result.get("run_id"), "node_id": result.get("node_id")}


def cached_nodes(ledger: Sequence[StepRecord]) -> dict[str, dict[str, Any]]:
    """Per node whose result was reused from the cache: its source run and node."""
    return {r.node_id: cache_source(r) for r in ledger if r.kind.value == "cache" and r.node_id}


def node_rows(order: Sequence[str], ledger: Sequence[StepRecord]) -> dict[str, dict[str, Any]]:
    """Per node: status, attempts, seconds from its first record's start to its last
    record's end, and its last error; nodes of ``order`` with no record are ``pending``.
    A node whose result came from the cache also has ``cached_from`` (run and node)."""
    nodes: dict[str, dict[str, Any]] = {
        n: {"status": "pending", "attempts": 0, "seconds": None, "error": None} for n in order
    }
    first: dict[str, Any] = {}
    for rec in ledger:
        kind = rec.kind.value
        if kind == "cache" and rec.node_id in nodes and isinstance(rec.result, dict):
            nodes[rec.node_id]["cached_from"] = cache_source(rec)
        if not rec.node_id or kind not in ("node", "retry", "wait"):
            continue
        info = nodes.setdefault(
            rec.node_id, {"status": "", "attempts": 0, "seconds": None, "error": None}
        )
        info["status"] = {"retry": "retrying", "wait": "waiting"}.get(kind, rec.status.value)
        info["attempts"] = max(info["attempts"], rec.attempt)
        start = first.setdefault(rec.node_id, rec.started_at)
        if start is not None and rec.finished_at is not None and kind != "wait":
            info["seconds"] = round((rec.finished_at - start).total_seconds(), 3)
        info["error"] = rec.error if rec.status.value != "completed" else None
    return nodes


def print_show(
    state: RunState,
    nodes: dict[str, dict[str, Any]],
    children: Sequence[RunState],
    is_interrupted: bool,
    under: Callable[[str, str], None] | None = None,
) -> None:
    """The human view of one run (a failed node's traceback under its error, when kept);
    ``under(indent, node)`` prints what belongs under a node's row (its sub-runs)."""
    rid = state.run_id
    status = state.status.value
    if is_interrupted:
        status += f" (interrupted: its process stopped; continue it with: spindle resume {rid})"
    elif status == "pending":
        status += f" (not started: a worker drives it, or: spindle resume {rid})"
    click.echo(f"run       {rid}")
    click.echo(f"workflow  {state.workflow}")
    click.echo(f"status    {status}")
    if state.disposition:
        click.echo(f"disposition {state.disposition} (spindle audit {rid} shows the trail)")
    if state.parent_run_id:
        click.echo(f"parent    {state.parent_run_id}")
    if state.queue is not None:
        spot = state.queue
        part = f", partition {spot.partition}" if spot.partition is not None else ""
        click.echo(f"queue     {spot.name} (priority {spot.priority}{part})")
    click.echo(f"created   {state.created_at.isoformat(timespec='seconds')}")
    click.echo(f"updated   {state.updated_at.isoformat(timespec='seconds')}")
    if nodes:
        click.echo("nodes:")
        width = max(len(n) for n in nodes)
        for nid, info in nodes.items():
            took = f"  {info['seconds']:.2f}s" if info["seconds"] is not None else ""
            tries = f"  ({info['attempts']} attempts)" if info["attempts"] > 1 else ""
            src = info.get("cached_from")
            cached = f"  (cached from {src['run_id']}/{src['node_id']})" if src else ""
            click.echo(f"  {nid.ljust(width)}  {info['status']}{took}{tries}{cached}")
            for line in (info["error"] or "").splitlines():
                click.echo(f"  {' ' * width}  {line}")
            for line in show_lines(rid, nid, info):
                click.echo(f"  {' ' * width}  {line}")
            if under is not None:
                under("    ", nid)
    if children:
        click.echo("sub-workflow runs:")
        for child in children:
            click.echo(f"  {child.run_id}  {child.workflow}  {child.status.value}")
    if state.waits:
        click.echo("waiting on:")
        for line in how_to_continue(state):
            click.echo(line)
    if state.output is not None:
        click.echo(f"output    {short(state.output)}")
    if state.error:
        click.echo(f"error     {state.error}")


# --- asking ------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """JSON when the text is valid JSON, else the text itself (``Ada`` needs no quotes)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def ask(wait: WaitState) -> Any:
    """Ask for the answer to ``wait`` at the terminal (on stderr, so stdout stays clean).

    Raises:
        click.exceptions.Abort: input ended before an answer.
    """
    if wait.choices:
        return click.prompt(wait.prompt or wait.key, type=click.Choice(wait.choices), err=True)
    return parse_value(click.prompt(wait.prompt or wait.key, err=True))


async def answer_at_terminal(engine: Engine, state: RunState) -> RunState:
    """Answer ``ask_user`` waits at the terminal until the run stops asking (or input ends)."""
    while state.status.value == "waiting":
        asks = [w for w in state.waits if w.reason.value == "user"]
        if not asks:
            break
        try:
            answer = ask(asks[0])
        except click.exceptions.Abort:  # end of input: leave the run waiting
            click.echo("", err=True)
            break
        state = await engine.resume(state.run_id, asks[0].key, answer)
    return state
