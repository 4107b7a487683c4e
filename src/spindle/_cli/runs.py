"""CLI commands that run and inspect workflows: run, resume, emit, cancel, runs, show,
ledger, worker.

Exit codes (design.md): 0 completed, 3 waiting, 1 failed or cancelled, 2 usage
or input error; 130 when Ctrl-C stops ``run``/``resume`` (the run stays
recorded and ``spindle resume RUN_ID`` continues it). Every command builds its
engine from ``spindle.toml``, ``SPINDLE_*`` and ``--store``, and turns a
:class:`~spindle.SpindleError` into one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from spindle._cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    echo_json,
    exit_code_for_status,
    fail,
    json_option,
    store_option,
)
from spindle._cli._render import (
    Progress,
    document,
    interrupted,
    node_rows,
    print_outcome,
    print_show,
    short,
    table,
)

if TYPE_CHECKING:
    from spindle.core._engine import Engine
    from spindle.core._models import RunState, WaitState

__all__ = ["cancel", "emit", "ledger", "resume", "run", "runs", "show", "worker"]

T = TypeVar("T")

#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

_STATUSES = ["pending", "running", "waiting", "completed", "failed", "cancelled"]


def _exit(code: int) -> NoReturn:
    raise click.exceptions.Exit(code)


def _engine(store: str | None, observers: list[Any] | None = None) -> Engine:
    from spindle.core._engine import Engine

    return Engine.from_config(
        overrides={"store": store} if store else None, observers=observers or ()
    )


def _call(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine factory; a :class:`SpindleError` becomes ``error: ...`` and exit 2."""
    from spindle.core.errors import SpindleError

    try:
        return asyncio.run(fn())
    except SpindleError as exc:
        fail(str(exc), EXIT_USAGE)


def _parse_value(text: str) -> Any:
    """JSON when the text is valid JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--input {pair!r} must look like NAME=VALUE (e.g. --input who=Ada)")
        out[name.strip()] = _parse_value(value)
    return out


def _finish(state: RunState, as_json: bool) -> NoReturn:
    if as_json:
        echo_json(document(state))
    else:
        print_outcome(state)
    _exit(exit_code_for_status(state.status.value))


def _interrupted(run_id: str | None) -> NoReturn:
    if run_id:
        click.echo(
            f"\ninterrupted: run {run_id} is recorded and can continue where it stopped: "
            f"spindle resume {run_id}",
            err=True,
        )
    else:
        click.echo("\ninterrupted", err=True)
    _exit(EXIT_INTERRUPTED)


def _ask(wait: WaitState) -> Any:
    """Ask for the answer to ``wait`` at the terminal (on stderr, so stdout stays clean)."""
    if wait.choices:
        return click.prompt(wait.prompt or wait.key, type=click.Choice(wait.choices), err=True)
    return _parse_value(click.prompt(wait.prompt or wait.key, err=True))


async def _answer_at_terminal(engine: Engine, state: RunState) -> RunState:
    """Answer ``ask_user`` waits at the terminal until the run stops asking (or stdin ends)."""
    while state.status.value == "waiting":
        asks = [w for w in state.waits if w.reason.value == "user"]
        if not asks:
            break
        try:
            answer = _ask(asks[0])
        except click.exceptions.Abort:  # end of input: leave the run waiting
            click.echo("", err=True)
            break
        state = await engine.resume(state.run_id, asks[0].key, answer)
    return state


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
    from spindle.core._loader import load_workflow
    from spindle.core.errors import SpindleError

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
                state = await _answer_at_terminal(engine, state)
            return state

    try:
        state = _call(main)
    except KeyboardInterrupt:
        _interrupted(started.get("run_id"))
    finally:
        if progress is not None:
            progress.close()
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
@store_option
@click.option(
    "--force",
    is_flag=True,
    help="Continue even if completed nodes changed in the workflow definition.",
)
@click.option("--interactive", is_flag=True, help="Ask for answers at the terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print node progress.")
@json_option
def resume(
    run_id: str,
    key: str | None,
    payload: str | None,
    store: str | None,
    force: bool,
    interactive: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Answer a waiting run, or continue an interrupted one, and drive it on."""
    value = _parse_value(payload) if payload is not None else None
    progress = Progress() if not (quiet or as_json) else None
    notes: list[str] = []

    async def main() -> RunState:
        from spindle.core.errors import InvalidAnswer

        async with _engine(store, [progress] if progress else None) as engine:
            before = await engine.get_run(run_id)
            if progress is not None:
                progress.main_run = run_id
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
                value_ = _ask(target)
                return await engine.resume(run_id, target.key, value_, force=force)
            state = await engine.resume(run_id, key, value, force=force)
            if before.status.terminal:
                notes.append(f"wait '{key}' was already answered; nothing changed")
            if interactive:
                state = await _answer_at_terminal(engine, state)
            return state

    try:
        state = _call(main)
    except KeyboardInterrupt:
        _interrupted(run_id)
    except click.exceptions.Abort:
        fail("no answer given", EXIT_USAGE)
    finally:
        if progress is not None:
            progress.close()
    for note in notes:
        click.echo(note, err=True)
    _finish(state, as_json)


@click.command("emit")
@click.argument("key")
@click.option("--payload", default=None, metavar="JSON", help="The event payload (JSON).")
@store_option
@json_option
def emit(key: str, payload: str | None, store: str | None, as_json: bool) -> None:
    """Deliver an event; a run waiting on KEY resumes, else the event is kept."""
    value = _parse_value(payload) if payload is not None else None

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
    rows = [
        (
            s.run_id,
            s.workflow,
            s.status.value,
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            (f"waits on {', '.join(w.key for w in s.waits)}" if s.waits else (s.error or ""))[:60],
        )
        for s in states
    ]
    table(("RUN", "WORKFLOW", "STATUS", "CREATED (UTC)", "WAITING / ERROR"), rows)


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
    _exit(exit_code_for_status(state.status.value))


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
        from spindle.core._converter import converter

        echo_json({"run_id": run_id, "records": [converter.unstructure(r) for r in records]})
        return
    rows = [
        (
            str(r.seq),
            r.kind.value,
            r.node_id or "-",
            r.status.value,
            str(r.attempt),
            (r.error or short(r.result))[:60],
            r.record_hash[:12],
        )
        for r in records
    ]
    table(("SEQ", "KIND", "NODE", "STATUS", "TRY", "RESULT / ERROR", "HASH"), rows)


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


@click.command("worker")
@store_option
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Runs driven at once.",
)
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds between looks for due work.",
)
@click.option("--once", is_flag=True, help="Drive what is due now, then exit.")
def worker(store: str | None, concurrency: int, poll: float, once: bool) -> None:
    """Claim runnable runs (new, resumed, timer or retry due) under a lease and drive them."""

    async def main() -> int:
        from spindle.core._models import utcnow
        from spindle.core.errors import LeaseHeld

        driven = 0
        async with _engine(store) as engine:
            sem = asyncio.Semaphore(concurrency)

            async def one(run_id: str) -> None:
                nonlocal driven
                async with sem:
                    try:
                        state = await engine.drive(run_id)
                    except LeaseHeld:
                        return
                    driven += 1
                    click.echo(f"run {run_id} {state.status.value}", err=True)

            while True:
                due = await engine.store.due_runs(utcnow(), limit=concurrency * 4)
                if due:
                    await asyncio.gather(*(one(r) for r in due))
                if once:
                    return driven
                if not due:
                    await asyncio.sleep(poll)

    try:
        n = _call(main)
    except KeyboardInterrupt:
        click.echo("worker stopped", err=True)
        _exit(EXIT_OK)
    click.echo(f"drove {n} run(s)", err=True)
