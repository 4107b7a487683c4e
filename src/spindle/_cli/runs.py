"""CLI commands that run and inspect workflows: run, resume, emit, cancel, runs, show,
ledger (the worker is in ``worker.py``).

Exit codes (design.md): 0 completed, 3 waiting, 1 failed or cancelled, 2 usage
or input error; 130 when Ctrl-C stops ``run``/``resume`` (the run stays
recorded and ``spindle resume RUN_ID`` continues it). Every command builds its
engine from ``spindle.toml``, ``SPINDLE_*`` and ``--store``, and turns a
:class:`~spindle.SpindleError` into one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    echo_json,
    fail,
    json_option,
    store_option,
)
from spindle._cli._inspect import ledger, runs, show
from spindle._cli._render import (
    Progress,
    answer_at_terminal,
    ask,
    document,
    parse_value,
)
from spindle._cli._running import (
    call,
    call_driving,
    exit_with,
    give_secrets,
    make_engine,
    run_recorded,
    secret_flags,
)
from spindle._cli._running import (
    parse_inputs as _parse_inputs,
)
from spindle._cli._running import (
    report as _finish,
)
from spindle._cli._running import (  # noqa: F401 - the run commands' exit codes, by name
    status_code as _status_code,
)

if TYPE_CHECKING:
    from spindle.core.engine import Delivery
    from spindle.core.model import RunState

__all__ = ["cancel", "emit", "ledger", "resume", "run", "runs", "show"]

# The commands that only read runs live beside these; this module is where the
# command table finds the whole family.

_STATUSES = ["pending", "running", "waiting", "completed", "failed", "cancelled"]


@click.command("run")
# A directory is let through: the loader refuses it in one ``error:`` line.
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a workflow input (a JSON value is parsed; anything else is text).",
)
@store_option
@click.option("--detach", is_flag=True, help="Record the run and return; a worker drives it.")
@click.option(
    "--run-id",
    "run_id_option",
    default=None,
    metavar="ID",
    help="Give the run this id; a run with it already there is continued (or shown) "
    "instead of starting another (idempotent start).",
)
@click.option(
    "--queue",
    metavar="NAME",
    help="With --detach: the queue the run waits on (default: the file's queue:, if any).",
)
@click.option(
    "--priority",
    type=int,
    default=None,
    help="With --detach: its priority on the queue (higher is claimed first; default 0).",
)
@click.option(
    "--partition",
    metavar="KEY",
    help="With --detach: its partition on the queue (e.g. a tenant), for partition limits.",
)
@click.option("--interactive", is_flag=True, help="Answer ask_user waits at the terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print node progress.")
@json_option
def run(
    file: Path,
    inputs: tuple[str, ...],
    store: str | None,
    detach: bool,
    run_id_option: str | None,
    queue: str | None,
    priority: int | None,
    partition: str | None,
    interactive: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Run a workflow file and wait until it completes, fails or waits.

    Exits 0 when the run completed, 3 when it waits (the output says how to
    answer), 1 when it failed, 2 when the file or an input is invalid.

    Progress goes to stderr. On a terminal it is one live line (done/total
    nodes, failed, retrying, waiting, elapsed time, the nodes running now)
    that ends in a summary such as "500/500 nodes · 0 failed · 3.2s"; a
    failing node's error is printed as it happens, and spindle -v adds a line
    per node. Piped, it is one plain line per node event.
    """
    from spindle.core.errors import SpindleError
    from spindle.core.workflow import load_workflow

    values = _parse_inputs(inputs)
    if not detach and (queue, priority, partition) != (None, None, None):
        fail(
            "--queue, --priority and --partition place a run on a queue for a worker; add "
            "--detach (without it the run is driven here, at once)"
        )
    progress = Progress() if not (quiet or as_json or detach) else None
    started: dict[str, str] = {}
    try:
        engine = make_engine(store, [progress] if progress else None)
        # Loaded before the store is opened: a bad file leaves nothing behind.
        wf = load_workflow(file, registry=engine.registry, policy=engine.policy)
    except SpindleError as exc:
        fail(str(exc))

    async def main() -> RunState:
        async with engine:
            if detach:
                spot = _queue_spot(wf, values, queue, priority, partition)
                run_id = await engine.start(wf, values, run_id=run_id_option, queue=spot)
                started["run_id"] = run_id
                return await engine.get_run(run_id)
            # Named here, so Ctrl-C can say how to resume it; engine.run writes it with
            # its first step (or at once, when a progress display announces it).
            run_id = started["run_id"] = run_id_option or uuid.uuid4().hex
            if progress is not None:
                started_line = f"run {run_id} started ({wf.name})"
                progress.begin(run_id, total=len(wf.nodes), announce=started_line)
            state = await engine.run(wf, values, run_id=run_id)
            if interactive:
                state = await answer_at_terminal(engine, state)
            return state

    secrets = [name for name, spec in wf.inputs.items() if spec.secret]
    state = call_driving(
        main,
        lambda: started.get("run_id"),
        progress,
        secrets,
        recorded=None if detach else lambda name: run_recorded(store, name),
    )
    if secrets and not state.status.terminal:
        click.echo(
            f"note: secret inputs are never stored; give them again when you continue: "
            f"spindle resume {state.run_id}{secret_flags(secrets)} ...",
            err=True,
        )
    if detach:
        if as_json:
            echo_json(document(state))
        else:
            click.echo(
                f"run {state.run_id} recorded; a worker drives it (spindle worker), "
                f"or drive it here: spindle resume {state.run_id}"
            )
        exit_with(EXIT_OK)
    _finish(state, as_json)


def _queue_spot(
    wf: Any, values: dict[str, Any], queue: str | None, priority: int | None, part: str | None
) -> Any:
    """Where ``spindle run --detach`` puts the run: the options over the file's queue:."""
    from spindle.core.model import QueueSpot

    base = wf.queue.spot(values) if wf.queue is not None else None
    if queue is None and base is None:
        if priority is not None or part is not None:
            fail(
                "--priority and --partition need a queue: add --queue NAME (or queue: in the file)"
            )
        return None
    name = queue if queue is not None else base.name if base is not None else ""
    return QueueSpot(
        name,
        priority if priority is not None else (base.priority if base else 0),
        part if part is not None else (base.partition if base else None),
    )


@click.command("resume")
@click.argument("run_id")
@click.option("--key", "key", default=None, help="The wait to answer (optional if only one).")
@click.option(
    "--payload",
    default=None,
    metavar="JSON",
    help="The answer, as JSON (text that is not JSON is taken as a string).",
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give a secret input again (secrets are never stored, so a new process needs them).",
)
@store_option
@click.option(
    "--workflow",
    "workflow_file",
    # directories are let through: the loader refuses them in one error line
    type=click.Path(path_type=Path),
    metavar="FILE",
    default=None,
    help="The workflow file as it is now, if it changed since the run started: pending "
    "nodes take the new definition; changed completed nodes are refused (see --force).",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --workflow: continue even if completed nodes changed.",
)
@click.option("--interactive", is_flag=True, help="Ask for answers at the terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print node progress.")
@json_option
def resume(
    run_id: str,
    key: str | None,
    payload: str | None,
    inputs: tuple[str, ...],
    store: str | None,
    workflow_file: Path | None,
    force: bool,
    interactive: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Answer a waiting run, or continue an interrupted one, and drive it on."""
    value = parse_value(payload) if payload is not None else None
    secrets = _parse_inputs(inputs)
    progress = Progress() if not (quiet or as_json) else None
    notes: list[str] = []

    async def main() -> RunState:
        from spindle.core.errors import InvalidAnswer

        async with make_engine(store, [progress] if progress else None) as engine:
            before = await engine.get_run(run_id)
            wf = None
            if workflow_file is not None:
                from spindle.core.workflow import load_workflow

                wf = load_workflow(workflow_file, registry=engine.registry, policy=engine.policy)
            if progress is not None:
                from spindle._cli._baseline import run_counts

                progress.begin(run_id, **await run_counts(engine, before, workflow=wf))
            if not before.status.terminal:
                await give_secrets(engine, before, secrets)
            if payload is None:
                _refuse_empty_event(before, key)
            user = [w for w in before.waits if w.reason.value == "user"]
            target = next((w for w in user if w.key == key), None) if key else None
            if key is None and len(before.waits) == 1 and user:
                target = user[0]
            if target is not None and payload is None:
                if not interactive:
                    example = json.dumps(target.choices[0]) if target.choices else '"your answer"'
                    raise InvalidAnswer(
                        f"run {run_id} waits for an answer to '{target.key}' "
                        f"({target.prompt}); give it with: spindle resume {run_id} "
                        f"--key {target.key} --payload '{example}'  (or use --interactive)"
                    )
                state = await engine.resume(
                    run_id, target.key, ask(target), workflow=wf, force=force
                )
            else:
                state = await engine.resume(run_id, key, value, workflow=wf, force=force)
                if before.status.terminal:
                    notes.append(f"wait '{key}' was already answered; nothing changed")
            if interactive:
                state = await answer_at_terminal(engine, state)
            return state

    try:
        state = call_driving(main, lambda: run_id, progress)
    except click.exceptions.Abort:
        fail("no answer given", EXIT_USAGE)
    for note in notes:
        click.echo(note, err=True)
    _finish(state, as_json)


def _refuse_empty_event(state: RunState, key: str | None) -> None:
    """Refuse to answer an event wait with no payload unless ``--payload null`` says so.

    Resuming without ``--payload`` is how an interrupted run is continued; the
    same command on a run waiting for an event would complete the wait with
    ``null`` by accident.
    """
    from spindle.core.errors import InvalidAnswer

    waits = [w for w in state.waits if w.key == key] if key else state.waits
    if len(waits) != 1 or waits[0].reason.value != "event":
        return
    wait = waits[0]
    raise InvalidAnswer(
        f"run {state.run_id} waits for event '{wait.event_key}' (wait '{wait.key}') and "
        f"--payload was not given; answer with: spindle resume {state.run_id} --key "
        f"{wait.key} --payload '{{...}}' (--payload null for no payload), or deliver the "
        f"event: spindle emit {wait.event_key} --payload '{{...}}'"
    )


@click.command("emit")
@click.argument("key")
@click.option("--payload", default=None, metavar="JSON", help="The event payload (JSON).")
@store_option
@json_option
def emit(key: str, payload: str | None, store: str | None, as_json: bool) -> None:
    """Deliver an event; a run waiting on KEY resumes, else the event is kept.

    A run waiting on KEY that is busy right now (another node of it is running)
    gets the event queued for it alone: it takes it as soon as it stops to wait.
    """
    value = parse_value(payload) if payload is not None else None

    async def main() -> Delivery:
        async with make_engine(store) as engine:
            return await engine.deliver(key, value)

    sent = call(main)
    if as_json:
        echo_json(
            {
                "key": key,
                "resumed": sent.resumed,
                "event_id": sent.event_id,
                "queued_for": sent.queued_for,
            }
        )
    elif sent.resumed:
        click.echo(f"event '{key}' delivered to run {', '.join(sent.resumed)}")
    elif sent.queued_for is not None:
        click.echo(
            f"event '{key}' queued for run {sent.queued_for} (it is busy; it takes the event "
            f"as soon as it stops to wait)"
        )
    else:
        click.echo(f"event '{key}' kept in the inbox until a run waits for it")


@click.command("cancel")
@click.argument("run_id")
@click.option("--reason", default="cancelled from the command line", help="Recorded reason.")
@store_option
@json_option
def cancel(run_id: str, reason: str, store: str | None, as_json: bool) -> None:
    """Cancel a run (and its sub-workflow runs). A finished run is left as it is."""

    async def main() -> tuple[RunState, bool]:
        async with make_engine(store) as engine:
            before = await engine.get_run(run_id)
            if before.status.terminal:
                return before, False
            return await engine.cancel(run_id, reason), True

    state, changed = call(main)
    if as_json:
        echo_json({**document(state), "cancelled_now": changed})
    elif changed:
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(f"run {run_id} has already {state.status.value}; nothing to cancel")
