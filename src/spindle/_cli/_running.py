"""How the run commands run: the engine a command builds, the event loop it runs in,
and leaving it — exit codes, Ctrl-C, secret inputs given again.

Exit codes (design.md): 0 completed, 3 waiting, 1 failed or cancelled, 2 usage
or input error; 130 when Ctrl-C stops ``run``/``resume`` (the run stays
recorded and ``spindle resume RUN_ID`` continues it).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from spindle._cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, EXIT_WAITING, fail

if TYPE_CHECKING:
    from spindle._cli._render import Progress
    from spindle.core.engine import Engine
    from spindle.core.model import RunState

__all__ = [
    "EXIT_INTERRUPTED",
    "call",
    "call_driving",
    "cancelled",
    "exit_with",
    "give_secrets",
    "hard_exit",
    "interrupted_exit",
    "make_engine",
    "parse_inputs",
    "report",
    "run_recorded",
    "secret_flags",
    "secret_names",
    "status_code",
]

T = TypeVar("T")

#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def exit_with(code: int) -> NoReturn:
    raise click.exceptions.Exit(code)


def make_engine(store: str | None, observers: list[Any] | None = None) -> Engine:
    from spindle.core.engine import Engine

    return Engine.from_config(
        overrides={"store": store} if store else None, observers=observers or ()
    )


def call(
    fn: Callable[[], Coroutine[Any, Any, T]], *, abandon: Callable[[T], bool] | None = None
) -> T:
    """Run a coroutine factory; a :class:`SpindleError` becomes ``error: ...`` and exit 2.

    On Ctrl-C the coroutine is cancelled (the engine releases its lease and
    closes the store) and KeyboardInterrupt propagates *without* closing the
    event loop's thread pool: closing it would wait for a Python task still
    running in a thread, which cannot be stopped. See :func:`hard_exit`. The
    same holds for a result ``abandon`` says to leave (a cancelled run whose
    task may still run in a thread): the caller then ends with :func:`hard_exit`.
    """
    from spindle._cli._collector import settle
    from spindle.core.errors import SpindleError

    settle()  # the loop may run for long: collect as usual from here on
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
    if abandon is None or not abandon(result):
        runner.close()
    return result


def call_driving(
    main: Callable[[], Coroutine[Any, Any, RunState]],
    run_id: Callable[[], str | None],
    progress: Progress | None,
    secrets: list[str] | None = None,
    *,
    recorded: Callable[[str], bool | None] | None = None,
) -> RunState:
    """Run the ``main`` of a command that drives a run (run, resume, retry, rerun).

    A run that ended cancelled is not waited for (its tasks may still run in
    threads); Ctrl-C prints how the run ``run_id()`` names continues (with the
    ``secrets`` to give again) and exits 130; the progress display is closed
    either way.

    A command that starts a *new* run names its id before the engine writes it
    (the run is written with its first step), so Ctrl-C in between would claim
    a run that does not exist. Such a command passes ``recorded`` (usually
    :func:`run_recorded` on its store): after Ctrl-C it is asked whether the run
    was written before the message says it can be resumed.
    """
    try:
        return call(main, abandon=cancelled)
    except KeyboardInterrupt:
        name = run_id()
        if name and recorded is not None and recorded(name) is False:
            if progress is not None:
                progress.close()
            click.echo(
                f"\ninterrupted before run {name} was recorded; nothing to resume "
                "(start it again with the same command)",
                err=True,
            )
            hard_exit(EXIT_INTERRUPTED)
        interrupted_exit(name, secrets, progress)
    finally:
        if progress is not None:
            progress.close()


def run_recorded(store: str | None, run_id: str, timeout: float = 5.0) -> bool | None:
    """Whether the store holds ``run_id``: True, False, or None when it cannot tell.

    Asked after Ctrl-C, with a fresh engine on a fresh event loop (the
    interrupted one is abandoned), within ``timeout`` seconds: an unreachable
    store must not keep an interrupted command from exiting.
    """
    from spindle.core.errors import RunNotFound

    async def look() -> bool:
        async with make_engine(store) as engine:
            try:
                await engine.get_run(run_id)
            except RunNotFound:
                return False
            return True

    async def bounded() -> bool:
        return await asyncio.wait_for(look(), timeout)

    try:
        return asyncio.run(bounded())
    except (Exception, KeyboardInterrupt):  # a second Ctrl-C, or a store that fails
        return None


def cancelled(state: RunState) -> bool:
    """Whether a run ended cancelled: its tasks may still run in threads, never wait for them."""
    return state.status.value == "cancelled"


def hard_exit(code: int) -> NoReturn:
    """Exit now, without waiting for worker threads.

    Used after Ctrl-C, once the run's state is committed and the store closed: a
    node still running in a thread is abandoned (it was not recorded as completed,
    so ``spindle resume`` runs it again), rather than keeping the user waiting.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def interrupted_exit(
    run_id: str | None, secrets: list[str] | None, progress: Progress | None
) -> NoReturn:
    if progress is not None:
        progress.close()  # before the hard exit: a live spinner hides the cursor
    if run_id:
        click.echo(
            f"\ninterrupted: run {run_id} is recorded and can continue where it stopped: "
            f"spindle resume {run_id}{secret_flags(secrets)}",
            err=True,
        )
    else:
        click.echo("\ninterrupted", err=True)
    hard_exit(EXIT_INTERRUPTED)


def secret_flags(secrets: list[str] | None) -> str:
    return "".join(f" --input {name}=VALUE" for name in secrets or ())


async def secret_names(engine: Engine, state: RunState) -> list[str]:
    if not state.definition_id:
        return []
    definition = await engine.store.get_definition(state.definition_id)
    declared = definition.get("inputs") or {}
    return [
        name for name, spec in declared.items() if isinstance(spec, dict) and spec.get("secret")
    ]


async def give_secrets(
    engine: Engine, state: RunState, values: dict[str, Any], command: str = "resume"
) -> None:
    """Hand the engine the run's secret inputs again (secrets are never stored).

    Every declared secret must be given: a node that needs one this process
    does not hold would fail the run, so the command refuses before resuming.
    """
    from spindle.core.errors import ValidationError

    names = await secret_names(engine, state)
    wrong = [n for n in values if n not in names]
    if wrong:
        raise ValidationError(
            f"--input on {command} gives secret inputs again, and run {state.run_id} "
            f"({state.workflow}) has no secret input {', '.join(repr(n) for n in wrong)}; "
            f"its secret inputs: {', '.join(names) or '(none)'}"
        )
    missing = [n for n in names if n not in values]
    if missing:
        raise ValidationError(
            f"run {state.run_id} has secret inputs, which are never stored: give them "
            f"again with spindle {command} {state.run_id}{secret_flags(missing)}"
            + (" (plus --key/--payload to answer a wait)" if command == "resume" else "")
        )
    engine.give_secrets(state.run_id, values)


def status_code(state: RunState) -> int:
    """0 completed, 1 failed or cancelled, 3 not finished (waiting, pending, running)."""
    if not state.status.terminal:
        return EXIT_WAITING
    return EXIT_OK if state.status.value == "completed" else EXIT_FAILED


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--input NAME=VALUE`` pairs as a mapping (JSON values parsed, else text)."""
    from spindle._cli._render import parse_value

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--input {pair!r} must look like NAME=VALUE (e.g. --input who=Ada)")
        out[name.strip()] = parse_value(value)
    return out


def report(state: RunState, as_json: bool) -> NoReturn:
    """Print how a driven run stands (text or the ``--json`` document) and exit with its code."""
    from spindle._cli._common import echo_json
    from spindle._cli._render import document, print_outcome

    if as_json:
        echo_json(document(state))
    else:
        print_outcome(state)
    if cancelled(state):
        hard_exit(EXIT_FAILED)  # without waiting for a task left running in a thread
    exit_with(status_code(state))
