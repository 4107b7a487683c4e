"""CLI commands that run and inspect workflows: run, resume, emit, cancel, runs, show,
ledger, worker.

Exit codes (design.md): 0 completed, 3 waiting, 1 failed or cancelled, 2 usage
or input error, 130 interrupted by Ctrl-C (the run stays resumable).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from spindle.core._engine import Engine
    from spindle.core._models import RunState

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

store_option = click.option(
    "--store",
    "store",
    default=None,
    metavar="URL",
    help="Store URL (default: $SPINDLE_STORE or sqlite:///.spindle/spindle.db).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of text."
)


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _engine(store: str | None, **kwargs: Any) -> Engine:
    from spindle.core._engine import Engine

    overrides = {"store": store} if store else None
    return Engine.from_config(overrides=overrides, **kwargs)


def _call(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine factory, mapping spindle's errors to exit code 2 with one line."""
    from spindle.core.errors import SpindleError

    try:
        return asyncio.run(fn())
    except SpindleError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from None


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
        if not sep or not name:
            _fail(f"--input {pair!r} must look like NAME=VALUE (e.g. --input who=Ada)")
        out[name.strip()] = _parse_value(value)
    return out


def _document(state: RunState) -> dict[str, Any]:
    from spindle.core._converter import converter

    wait = state.waits[0] if state.waits else None
    return {
        "run_id": state.run_id,
        "workflow": state.workflow,
        "status": state.status.value,
        "output": converter.unstructure(state.output),
        "waiting": None
        if wait is None
        else {
            "key": wait.key,
            "reason": wait.reason.value,
            "prompt": wait.prompt,
            "choices": wait.choices,
            "node_id": wait.node_id,
            "due_at": wait.due_at.isoformat() if wait.due_at else None,
        },
        "waits": [
            {"key": w.key, "reason": w.reason.value, "prompt": w.prompt, "choices": w.choices}
            for w in state.waits
        ],
        "error": state.error,
        "parent_run_id": state.parent_run_id,
    }


def _exit_code(state: RunState) -> int:
    from spindle.core._models import RunStatus

    if state.status == RunStatus.COMPLETED:
        return EXIT_OK
    if state.status in (RunStatus.WAITING, RunStatus.PENDING, RunStatus.RUNNING):
        return EXIT_WAITING
    return EXIT_FAILED


def _how_to_answer(state: RunState) -> str:
    lines = []
    for w in state.waits:
        if w.reason.value == "user":
            example = json.dumps(w.choices[0]) if w.choices else '"your answer"'
            choices = f" [{' / '.join(w.choices)}]" if w.choices else ""
            lines.append(f"  {w.key}: {w.prompt}{choices}")
            lines.append(
                f"    answer: spindle resume {state.run_id} --key {w.key} --payload '{example}'"
            )
        elif w.reason.value == "event":
            lines.append(f"  {w.key}: waiting for event '{w.event_key}'")
            lines.append(f"    deliver: spindle emit {w.event_key} --payload '{{...}}'")
        elif w.due_at is not None:
            lines.append(f"  {w.key}: {w.reason.value} due at {w.due_at.isoformat()}")
            lines.append(
                f"    a worker fires it (spindle worker), or: spindle resume {state.run_id}"
            )
        else:
            lines.append(
                f"  {w.key}: waiting on {w.reason.value}"
                + (f" run {w.child_run_id}" if w.child_run_id else "")
            )
    return "\n".join(lines)


def _report(state: RunState, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_document(state), default=str))
    else:
        status = state.status.value
        click.echo(f"run {state.run_id} {status}")
        if state.status.value == "completed" and state.output is not None:
            out = state.output
            click.echo(f"output: {out if isinstance(out, str) else json.dumps(out, default=str)}")
        if state.error:
            click.echo(f"error: {state.error}")
        if state.waits:
            click.echo("waiting on:")
            click.echo(_how_to_answer(state))
    sys.exit(_exit_code(state))


class _Progress:
    """Prints node lifecycle lines as they happen (plain text; rich live view on a TTY)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started: dict[str, float] = {}
        self.console: Any = None
        if enabled and sys.stdout.isatty():
            from rich.console import Console

            self.console = Console(stderr=True)

    async def on_event(self, event: Any) -> None:
        if not self.enabled:
            return
        import time

        kind = event.type.value
        node = event.node_id or ""
        if kind == "node_started":
            self.started[node] = time.monotonic()
            return
        if kind in ("node_completed", "node_failed", "node_retrying"):
            took = ""
            if node in self.started:
                took = f" ({time.monotonic() - self.started.pop(node):.2f}s)"
            extra = ""
            if kind != "node_completed" and event.payload.get("error"):
                extra = f": {event.payload['error']}"
            word = {
                "node_completed": "completed",
                "node_failed": "failed",
                "node_retrying": "retrying",
            }[kind]
            self._line(f"  {node} {word}{took}{extra}", word)
        elif kind == "run_waiting":
            self._line(f"  waiting: {', '.join(event.payload.get('waits', []))}", "waiting")

    def _line(self, text: str, word: str) -> None:
        if self.console is not None:
            style = {
                "completed": "green",
                "failed": "red",
                "retrying": "yellow",
                "waiting": "cyan",
            }.get(word, "")
            self.console.print(text, style=style, highlight=False)
        else:
            click.echo(text, err=True)


async def _interactive_answers(engine: Engine, state: RunState) -> RunState:
    """Answer ``ask_user`` waits at the terminal until the run stops asking."""
    while state.status.value == "waiting":
        asks = [w for w in state.waits if w.reason.value == "user"]
        if not asks:
            return state
        wait = asks[0]
        if wait.choices:
            answer: Any = click.prompt(wait.prompt or wait.key, type=click.Choice(wait.choices))
        else:
            answer = _parse_value(click.prompt(wait.prompt or wait.key))
        state = await engine.resume(state.run_id, wait.key, answer)
    return state


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a workflow input (JSON values are parsed; anything else is text).",
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
    """Run a workflow file and wait until it completes, fails or waits."""
    values = _parse_inputs(inputs)
    progress = _Progress(enabled=not quiet and not as_json)
    started: dict[str, str] = {}

    async def main() -> RunState:
        from spindle.core._loader import load_workflow

        engine = _engine(store, observers=[progress])
        async with engine:
            wf = load_workflow(file, registry=engine.registry, policy=engine.policy)
            run_id = await engine.start(wf, values)
            started["run_id"] = run_id
            if detach:
                return await engine.get_run(run_id)
            if not as_json:
                click.echo(f"run {run_id} started ({wf.name})", err=True)
            state = await engine.drive(run_id, workflow=wf)
            if interactive:
                state = await _interactive_answers(engine, state)
            return state

    try:
        state = _call(main)
    except KeyboardInterrupt:
        rid = started.get("run_id")
        if rid:
            click.echo(
                f"\ninterrupted: run {rid} is recorded and resumable; continue it "
                f"with: spindle resume {rid}",
                err=True,
            )
        sys.exit(EXIT_INTERRUPTED)
    if detach:
        if as_json:
            click.echo(json.dumps(_document(state), default=str))
        else:
            click.echo(
                f"run {state.run_id} recorded; a worker will drive it "
                f"(spindle worker), or: spindle resume {state.run_id}"
            )
        sys.exit(EXIT_OK)
    _report(state, as_json)


@click.command("resume")
@click.argument("run_id")
@click.option("--key", "key", default=None, help="The wait to answer (optional if only one).")
@click.option(
    "--payload",
    default=None,
    metavar="JSON",
    help="The answer, as JSON (plain text is taken as a string).",
)
@store_option
@click.option(
    "--force",
    is_flag=True,
    help="Continue even if completed nodes changed in the workflow definition.",
)
@click.option("--interactive", is_flag=True, help="Answer further ask_user waits here.")
@json_option
def resume(
    run_id: str,
    key: str | None,
    payload: str | None,
    store: str | None,
    force: bool,
    interactive: bool,
    as_json: bool,
) -> None:
    """Answer a waiting run, or continue an interrupted one."""
    value = _parse_value(payload) if payload is not None else None

    async def main() -> RunState:
        engine = _engine(store, observers=[_Progress(enabled=not as_json)])
        async with engine:
            state = await engine.resume(run_id, key, value, force=force)
            if interactive:
                state = await _interactive_answers(engine, state)
            return state

    try:
        state = _call(main)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: continue with: spindle resume {run_id}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _report(state, as_json)


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
        click.echo(json.dumps({"key": key, "resumed": resumed}))
    elif resumed:
        click.echo(f"event '{key}' delivered to run {', '.join(resumed)}")
    else:
        click.echo(f"event '{key}' kept in the inbox until a run waits for it")


@click.command("cancel")
@click.argument("run_id")
@click.option("--reason", default="cancelled from the command line")
@store_option
@json_option
def cancel(run_id: str, reason: str, store: str | None, as_json: bool) -> None:
    """Cancel a run (and its child runs). A finished run is left as it is."""

    async def main() -> tuple[RunState, bool]:
        async with _engine(store) as engine:
            before = await engine.get_run(run_id)
            if before.status.terminal:
                return before, False
            return await engine.cancel(run_id, reason), True

    state, changed = _call(main)
    if as_json:
        doc = _document(state)
        doc["cancelled_now"] = changed
        click.echo(json.dumps(doc, default=str))
    elif changed:
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(f"run {run_id} has already {state.status.value}; nothing to cancel")


@click.command("runs")
@click.option(
    "--status",
    "status",
    default=None,
    type=click.Choice(["pending", "running", "waiting", "completed", "failed", "cancelled"]),
)
@click.option("--workflow", default=None, help="Only runs of this workflow name.")
@click.option("--limit", default=50, show_default=True, type=int)
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
        click.echo(json.dumps({"runs": [_document(s) for s in states]}, default=str))
        return
    if not states:
        click.echo("no runs")
        return
    rows = [
        (
            s.run_id,
            s.workflow,
            s.status.value,
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            (s.waits[0].key if s.waits else (s.error or ""))[:60],
        )
        for s in states
    ]
    _table(("RUN", "WORKFLOW", "STATUS", "CREATED (UTC)", "WAITING / ERROR"), rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@click.command("show")
@click.argument("run_id")
@store_option
@json_option
def show(run_id: str, store: str | None, as_json: bool) -> None:
    """Show a run: status, nodes, waits (with prompt and choices), output, error."""

    async def main() -> tuple[RunState, list[Any], Any]:
        async with _engine(store) as engine:
            state = await engine.get_run(run_id)
            ledger = await engine.ledger(run_id)
            lease = await engine.store.get_lease(run_id)
            return state, ledger, lease

    state, ledger, lease = _call(main)
    nodes: dict[str, dict[str, Any]] = {}
    for rec in ledger:
        if not rec.node_id or rec.kind.value not in ("node", "retry", "wait"):
            continue
        info = nodes.setdefault(
            rec.node_id, {"status": "", "attempts": 0, "seconds": None, "error": None}
        )
        info["status"] = {"retry": "retrying", "wait": "waiting"}.get(
            rec.kind.value, rec.status.value
        )
        info["attempts"] = max(info["attempts"], rec.attempt)
        if rec.started_at and rec.finished_at:
            info["seconds"] = round((rec.finished_at - rec.started_at).total_seconds(), 3)
        info["error"] = rec.error
    from spindle.core._models import utcnow

    interrupted = state.status.value == "running" and (
        lease is None or lease.owner is None or lease.expires_at <= utcnow()
    )
    if as_json:
        doc = _document(state)
        doc["nodes"] = nodes
        doc["interrupted"] = interrupted
        click.echo(json.dumps(doc, default=str))
        sys.exit(_exit_code(state))
    click.echo(f"run       {state.run_id}")
    click.echo(f"workflow  {state.workflow}")
    status = state.status.value + (
        f" (interrupted: continue with spindle resume {state.run_id})" if interrupted else ""
    )
    click.echo(f"status    {status}")
    if state.parent_run_id:
        click.echo(f"parent    {state.parent_run_id}")
    click.echo(f"created   {state.created_at.isoformat()}")
    if nodes:
        click.echo("nodes:")
        for nid, info in nodes.items():
            took = f" {info['seconds']}s" if info["seconds"] is not None else ""
            att = f" (attempt {info['attempts']})" if info["attempts"] > 1 else ""
            click.echo(f"  {nid}: {info['status']}{took}{att}")
            if info["error"] and info["status"] != "completed":
                click.echo(f"    {info['error']}")
    if state.waits:
        click.echo("waiting on:")
        click.echo(_how_to_answer(state))
    if state.output is not None:
        click.echo(f"output    {json.dumps(state.output, default=str)}")
    if state.error:
        click.echo(f"error     {state.error}")
    sys.exit(_exit_code(state))


@click.command("ledger")
@click.argument("args", nargs=-1, required=True, metavar="[verify] RUN_ID")
@store_option
@json_option
def ledger(args: tuple[str, ...], store: str | None, as_json: bool) -> None:
    """Print a run's ledger, or check its hash chain with `spindle ledger verify RUN_ID`."""
    if args[0] == "verify":
        if len(args) != 2:
            _fail("usage: spindle ledger verify RUN_ID")
        _verify(args[1], store, as_json)
        return
    if len(args) != 1:
        _fail("usage: spindle ledger RUN_ID  |  spindle ledger verify RUN_ID")
    run_id = args[0]

    async def main() -> list[Any]:
        async with _engine(store) as engine:
            return await engine.ledger(run_id)

    records = _call(main)
    if as_json:
        from spindle.core._converter import converter

        click.echo(
            json.dumps(
                {"run_id": run_id, "records": [converter.unstructure(r) for r in records]},
                default=str,
            )
        )
        return
    rows = [
        (
            str(r.seq),
            r.kind.value,
            r.node_id or "-",
            r.status.value,
            str(r.attempt),
            r.idempotency_key,
            (r.error or _short(r.result))[:50],
            r.record_hash[:12],
        )
        for r in records
    ]
    _table(("SEQ", "KIND", "NODE", "STATUS", "TRY", "KEY", "RESULT / ERROR", "HASH"), rows)


def _short(value: Any) -> str:
    return "" if value is None else json.dumps(value, default=str)


def _verify(run_id: str, store: str | None, as_json: bool) -> None:
    async def main() -> Any:
        async with _engine(store) as engine:
            return await engine.verify_ledger(run_id)

    result = _call(main)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": run_id,
                    "ok": result.ok,
                    "count": result.count,
                    "first_bad_index": result.first_bad_index,
                    "reason": result.reason,
                }
            )
        )
    elif result.ok:
        click.echo(f"ledger of run {run_id} is intact ({result.count} records)")
    else:
        click.echo(
            f"ledger of run {run_id} is BROKEN at record {result.first_bad_index} "
            f"of {result.count}: {result.reason}"
        )
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


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
    "--poll", default=1.0, show_default=True, type=float, help="Seconds between looks for due work."
)
@click.option("--once", is_flag=True, help="Drive what is due now, then exit.")
def worker(store: str | None, concurrency: int, poll: float, once: bool) -> None:
    """Claim runnable runs (new, resumed, timer due) under a lease and drive them."""

    async def main() -> int:
        from spindle.core.errors import LeaseHeld

        driven = 0
        async with _engine(store) as engine:
            sem = asyncio.Semaphore(concurrency)

            async def one(run_id: str) -> None:
                nonlocal driven
                async with sem:
                    try:
                        state = await engine.drive(run_id)
                        driven += 1
                        click.echo(f"run {run_id} {state.status.value}", err=True)
                    except LeaseHeld:
                        return

            while True:
                from spindle.core._models import utcnow

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
        sys.exit(EXIT_OK)
    click.echo(f"drove {n} run(s)", err=True)
