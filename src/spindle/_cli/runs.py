"""CLI commands that run and inspect workflows: run, resume, emit, cancel, runs, show,
ledger (the worker is in ``worker.py``).

Exit codes (design.md): 0 completed, 3 waiting, 1 failed or cancelled, 2 usage
or input error; 130 when Ctrl-C stops ``run``/``resume`` (the run stays
recorded and ``spindle resume RUN_ID`` continues it). Every command builds its
engine from ``spindle.toml``, ``SPINDLE_*`` and ``--store``, and turns a
:class:`~spindle.SpindleError` into one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from spindle._cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WAITING,
    echo_json,
    fail,
    json_option,
    store_option,
)
from spindle._cli._render import (
    Progress,
    answer_at_terminal,
    ask,
    document,
    interrupted,
    node_rows,
    parse_value,
    print_ledger,
    print_outcome,
    print_runs,
    print_show,
)

if TYPE_CHECKING:
    from spindle.core.engine import Engine
    from spindle.core.model import RunState

__all__ = ["cancel", "emit", "ledger", "resume", "run", "runs", "show"]

T = TypeVar("T")

#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

_STATUSES = ["pending", "running", "waiting", "completed", "failed", "cancelled"]


def _exit(code: int) -> NoReturn:
    raise click.exceptions.Exit(code)


def _engine(store: str | None, observers: list[Any] | None = None) -> Engine:
    from spindle.core.engine import Engine

    return Engine.from_config(
        overrides={"store": store} if store else None, observers=observers or ()
    )


def _call(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine factory; a :class:`SpindleError` becomes ``error: ...`` and exit 2.

    On Ctrl-C the coroutine is cancelled (the engine releases its lease and
    closes the store) and KeyboardInterrupt propagates *without* closing the
    event loop's thread pool: closing it would wait for a Python task still
    running in a thread, which cannot be stopped. See :func:`_hard_exit`.
    """
    from spindle.core.errors import SpindleError

    runner = asyncio.Runner()
    try:
        result = runner.run(fn())
    except KeyboardInterrupt:
        raise
    except SpindleError as exc:
        runner.close()
        fail(str(exc), EXIT_USAGE)
    except BaseException:
        runner.close()
        raise
    runner.close()
    return result


def _hard_exit(code: int) -> NoReturn:
    """Exit now, without waiting for worker threads.

    Used after Ctrl-C, once the run's state is committed and the store closed: a
    node still running in a thread is abandoned (it was not recorded as completed,
    so ``spindle resume`` runs it again), rather than keeping the user waiting.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _parse_inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--input {pair!r} must look like NAME=VALUE (e.g. --input who=Ada)")
        out[name.strip()] = parse_value(value)
    return out


def _status_code(state: RunState) -> int:
    """0 completed, 1 failed or cancelled, 3 not finished (waiting, pending, running)."""
    if not state.status.terminal:
        return EXIT_WAITING
    return EXIT_OK if state.status.value == "completed" else EXIT_FAILED


def _finish(state: RunState, as_json: bool) -> NoReturn:
    if as_json:
        echo_json(document(state))
    else:
        print_outcome(state)
    _exit(_status_code(state))


def _interrupted(
    run_id: str | None, secrets: list[str] | None, progress: Progress | None
) -> NoReturn:
    if progress is not None:
        progress.close()  # before the hard exit: a live spinner hides the cursor
    if run_id:
        click.echo(
            f"\ninterrupted: run {run_id} is recorded and can continue where it stopped: "
            f"spindle resume {run_id}{_secret_flags(secrets)}",
            err=True,
        )
    else:
        click.echo("\ninterrupted", err=True)
    _hard_exit(EXIT_INTERRUPTED)


def _secret_flags(secrets: list[str] | None) -> str:
    return "".join(f" --input {name}=VALUE" for name in secrets or ())


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
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
@click.option("--interactive", is_flag=True, help="Answer ask_user waits at the terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print node progress.")
@json_option
def run(
    file: Path,
    inputs: tuple[str, ...],
    store: str | None,
    detach: bool,
    interactive: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Run a workflow file and wait until it completes, fails or waits.

    Exits 0 when the run completed, 3 when it waits (the output says how to
    answer), 1 when it failed, 2 when the file or an input is invalid.
    """
    from spindle.core.errors import SpindleError
    from spindle.core.workflow import load_workflow

    values = _parse_inputs(inputs)
    progress = Progress() if not (quiet or as_json or detach) else None
    started: dict[str, str] = {}
    try:
        engine = _engine(store, [progress] if progress else None)
        # Loaded before the store is opened: a bad file leaves nothing behind.
        wf = load_workflow(file, registry=engine.registry, policy=engine.policy)
    except SpindleError as exc:
        fail(str(exc))

    async def main() -> RunState:
        async with engine:
            run_id = await engine.start(wf, values)
            started["run_id"] = run_id
            if detach:
                return await engine.get_run(run_id)
            if progress is not None:
                progress.main_run = run_id
                click.echo(f"run {run_id} started ({wf.name})", err=True)
            state = await engine.drive(run_id, workflow=wf)
            if interactive:
                state = await answer_at_terminal(engine, state)
            return state

    secrets = [name for name, spec in wf.inputs.items() if spec.secret]
    try:
        state = _call(main)
    except KeyboardInterrupt:
        _interrupted(started.get("run_id"), secrets, progress)
    finally:
        if progress is not None:
            progress.close()
    if secrets and not state.status.terminal:
        click.echo(
            f"note: secret inputs are never stored; give them again when you continue: "
            f"spindle resume {state.run_id}{_secret_flags(secrets)} ...",
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
        _exit(EXIT_OK)
    _finish(state, as_json)


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
    type=click.Path(dir_okay=False, path_type=Path),
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

        async with _engine(store, [progress] if progress else None) as engine:
            before = await engine.get_run(run_id)
            wf = None
            if workflow_file is not None:
                from spindle.core.workflow import load_workflow

                wf = load_workflow(workflow_file, registry=engine.registry, policy=engine.policy)
            if progress is not None:
                progress.main_run = run_id
            if not before.status.terminal:
                await _give_secrets(engine, before, secrets)
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
        state = _call(main)
    except KeyboardInterrupt:
        _interrupted(run_id, None, progress)
    except click.exceptions.Abort:
        fail("no answer given", EXIT_USAGE)
    finally:
        if progress is not None:
            progress.close()
    for note in notes:
        click.echo(note, err=True)
    _finish(state, as_json)


async def _secret_names(engine: Engine, state: RunState) -> list[str]:
    if not state.definition_id:
        return []
    definition = await engine.store.get_definition(state.definition_id)
    declared = definition.get("inputs") or {}
    return [
        name for name, spec in declared.items() if isinstance(spec, dict) and spec.get("secret")
    ]


async def _give_secrets(engine: Engine, state: RunState, values: dict[str, Any]) -> None:
    """Hand the engine the run's secret inputs again (secrets are never stored).

    Every declared secret must be given: a node that needs one this process
    does not hold would fail the run, so the command refuses before resuming.
    """
    from spindle.core.errors import ValidationError

    names = await _secret_names(engine, state)
    wrong = [n for n in values if n not in names]
    if wrong:
        raise ValidationError(
            f"--input on resume gives secret inputs again, and run {state.run_id} "
            f"({state.workflow}) has no secret input {', '.join(repr(n) for n in wrong)}; "
            f"its secret inputs: {', '.join(names) or '(none)'}"
        )
    missing = [n for n in names if n not in values]
    if missing:
        raise ValidationError(
            f"run {state.run_id} has secret inputs, which are never stored: give them "
            f"again with spindle resume {state.run_id}{_secret_flags(missing)} "
            f"(plus --key/--payload to answer a wait)"
        )
    engine.give_secrets(state.run_id, values)


@click.command("emit")
@click.argument("key")
@click.option("--payload", default=None, metavar="JSON", help="The event payload (JSON).")
@store_option
@json_option
def emit(key: str, payload: str | None, store: str | None, as_json: bool) -> None:
    """Deliver an event; a run waiting on KEY resumes, else the event is kept."""
    value = parse_value(payload) if payload is not None else None

    async def main() -> list[str]:
        async with _engine(store) as engine:
            return await engine.emit(key, value)

    resumed = _call(main)
    if as_json:
        echo_json({"key": key, "resumed": resumed})
    elif resumed:
        click.echo(f"event '{key}' delivered to run {', '.join(resumed)}")
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
        async with _engine(store) as engine:
            before = await engine.get_run(run_id)
            if before.status.terminal:
                return before, False
            return await engine.cancel(run_id, reason), True

    state, changed = _call(main)
    if as_json:
        echo_json({**document(state), "cancelled_now": changed})
    elif changed:
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(f"run {run_id} has already {state.status.value}; nothing to cancel")


@click.command("runs")
@click.option("--status", "status", default=None, type=click.Choice(_STATUSES))
@click.option("--workflow", default=None, help="Only runs of this workflow name.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@store_option
@json_option
def runs(
    status: str | None, workflow: str | None, limit: int, store: str | None, as_json: bool
) -> None:
    """List runs, newest first."""

    async def main() -> list[RunState]:
        async with _engine(store) as engine:
            return await engine.list_runs(status=status, workflow=workflow, limit=limit)

    states = _call(main)
    if as_json:
        echo_json({"runs": [document(s) for s in states]})
        return
    if not states:
        click.echo("no runs" + (f" with status {status}" if status else ""))
        return
    print_runs(states)


@click.command("show")
@click.argument("run_id")
@store_option
@json_option
def show(run_id: str, store: str | None, as_json: bool) -> None:
    """Show a run: status, nodes, waits (with prompt and choices), output, error."""

    async def main() -> tuple[RunState, dict[str, Any], list[RunState], bool]:
        async with _engine(store) as engine:
            state = await engine.get_run(run_id)
            records = await engine.ledger(run_id)
            lease = await engine.store.get_lease(run_id)
            children = await engine.store.list_runs(parent_run_id=run_id)
            order: list[str] = []
            if state.definition_id:
                definition = await engine.store.get_definition(state.definition_id)
                order = list(definition.get("nodes", {}))
            stopped = interrupted(state, lease, engine.host)
            return state, node_rows(order, records), children, stopped

    state, nodes, children, stopped = _call(main)
    if as_json:
        echo_json(
            {
                **document(state),
                "interrupted": stopped,
                "nodes": nodes,
                "children": [c.run_id for c in children],
            }
        )
    else:
        print_show(state, nodes, children, stopped)
    _exit(_status_code(state))


@click.command("ledger")
@click.argument("args", nargs=-1, required=True, metavar="[verify] RUN_ID")
@store_option
@json_option
def ledger(args: tuple[str, ...], store: str | None, as_json: bool) -> None:
    """Print a run's ledger, or check its hash chain: spindle ledger verify RUN_ID."""
    if args[0] == "verify":
        if len(args) != 2:
            fail("usage: spindle ledger verify RUN_ID")
        _verify(args[1], store, as_json)
    if len(args) != 1:
        fail("usage: spindle ledger RUN_ID  |  spindle ledger verify RUN_ID")
    run_id = args[0]

    async def main() -> list[Any]:
        async with _engine(store) as engine:
            return await engine.ledger(run_id)

    records = _call(main)
    if as_json:
        from spindle.core.model import converter

        echo_json({"run_id": run_id, "records": [converter.unstructure(r) for r in records]})
        return
    print_ledger(records)


def _verify(run_id: str, store: str | None, as_json: bool) -> NoReturn:
    async def main() -> Any:
        async with _engine(store) as engine:
            return await engine.verify_ledger(run_id)

    result = _call(main)
    if as_json:
        echo_json(
            {
                "run_id": run_id,
                "ok": result.ok,
                "count": result.count,
                "first_bad_index": result.first_bad_index,
                "reason": result.reason,
            }
        )
    elif result.ok:
        click.echo(f"ledger of run {run_id} is intact: {result.count} records, hash chain ok")
    else:
        click.echo(
            f"ledger of run {run_id} is BROKEN: first bad record at index "
            f"{result.first_bad_index} of {result.count} ({result.reason})"
        )
    _exit(EXIT_OK if result.ok else EXIT_FAILED)
