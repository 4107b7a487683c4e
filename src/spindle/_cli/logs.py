"""``spindle logs RUN_ID [NODE] [--follow] [--json]``: what a run's nodes left.

For each node (or the one named): the stdout and stderr its executor kept
in the run directory (see :mod:`spindle._cli._logfiles` for
where and how), and the traceback of each failed Python attempt, which the
ledger keeps (see :mod:`spindle._cli._tracebacks`). Both are redacted of
secret inputs before they are written, so nothing here needs to redact.

Exit codes: 0 once printed; with ``--follow``, the run's status code when it
stops (0 completed, 1 failed or cancelled, 3 waiting or interrupted), 130 on
Ctrl-C; 2 for an unknown run or node, or a usage error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import echo_json, fail, json_option, store_option
from spindle._cli._logfiles import STREAMS, Blocks, StreamTail, log_file, read_log
from spindle._cli._render import cached_nodes, interrupted
from spindle._cli._running import (
    EXIT_INTERRUPTED,
    call,
    exit_with,
    hard_exit,
    make_engine,
    status_code,
)
from spindle._cli._tracebacks import attempt_traceback, step_traceback

if TYPE_CHECKING:
    from spindle.core.engine import Engine
    from spindle.core.model import RunState, StepRecord

__all__ = ["POLL_SECONDS", "logs"]

#: How often ``--follow`` looks at the log files and the ledger.
POLL_SECONDS = 0.25

_LIVE = ("pending", "running")
_NOT_CAPTURED = (
    "a node's output is kept when it prints to stdout or stderr: a command's, and a Python "
    "task's print(); what C code or os.system() writes from a Python task run inline is not"
)


@click.command("logs")
@click.argument("run_id")
@click.argument("node", required=False)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new output while the run is pending or running, then exit "
    "with the run's status code (like spindle show).",
)
@store_option
@json_option
def logs(run_id: str, node: str | None, follow: bool, store: str | None, as_json: bool) -> None:
    """Print what a run's nodes left: captured stdout and stderr, and tracebacks.

    For each node, or only NODE: the stdout and stderr it printed (what a
    command wrote, and what Python code printed, in any built-in executor)
    and the traceback of each failed attempt of Python code, and
    of each failed attempt of a sub-step (``ctx.step``) inside it. Each block
    is headed ``==> NODE STREAM (attempt N) <==`` (``NODE step 'NAME'
    traceback`` for a sub-step's). The log files are per
    node: a retry appends to them after a ``--- attempt N ---`` line, which
    --json keeps as it is. Secret inputs are shown as ``***``.
    """
    if follow and as_json:
        fail(
            "--follow and --json cannot be used together: --json prints one document of "
            "what the run has left so far; drop --follow, or --json to follow the output"
        )
    blocks = Blocks()
    notes: list[str] = []
    cached: dict[str, dict[str, Any]] = {}

    async def main() -> RunState:
        async with make_engine(store) as engine:
            state, records, nodes = await _load(engine, run_id, node)
            cached.update({n: c for n, c in cached_nodes(records).items() if n in nodes})
            reader = _Reader(engine, state, nodes)
            if as_json:
                echo_json(reader.document(records))
                return state
            if not follow:
                await reader.drain(blocks, final=True, records=records)
                return state
            return await _follow(engine, reader, blocks, notes)

    try:
        state = call(main)
    except KeyboardInterrupt:
        blocks.end()
        hard_exit(EXIT_INTERRUPTED)
    if as_json:
        return
    blocks.end()
    for nid, src in cached.items():
        notes.append(
            f"node '{nid}' did not run: its result was cached from {src['run_id']}/"
            f"{src['node_id']} (spindle logs {src['run_id']} {src['node_id']} prints its output)"
        )
    if not blocks.printed and not cached:
        what = f"node '{node}' of run {run_id}" if node else f"no node of run {run_id}"
        left = "left no output and no traceback" if node else "left output or a traceback"
        notes.insert(0, f"{what} {left} ({_NOT_CAPTURED})")
    for note in notes:
        click.echo(note, err=True)
    if follow:
        exit_with(status_code(state))


async def _load(
    engine: Engine, run_id: str, node: str | None
) -> tuple[RunState, list[StepRecord], list[str]]:
    """The run, its ledger and the nodes to print (all, or ``node`` if the run has it)."""
    from spindle.core.errors import RunError, RunNotFound

    try:
        state = await engine.get_run(run_id)
    except RunNotFound as exc:
        raise RunNotFound(f"{exc} ({await _newest(engine)})") from None
    records = await engine.ledger(run_id)
    order: list[str] = []
    if state.definition_id:
        definition = await engine.store.get_definition(state.definition_id)
        order = list(definition.get("nodes", {}))
    for rec in records:
        if rec.node_id and rec.node_id not in order:
            order.append(rec.node_id)
    if node is None:
        return state, records, order
    if node not in order:
        raise RunError(
            f"run {run_id} ({state.workflow}) has no node {node!r}; its nodes: "
            f"{', '.join(order) or '(none)'} (or give no NODE to see them all)"
        )
    return state, records, [node]


async def _newest(engine: Engine, limit: int = 3) -> str:
    """The newest runs of the store, to name in an error about a run id it lacks."""
    states = await engine.list_runs(limit=limit)
    if not states:
        return "the store has no runs yet"
    listed = ", ".join(f"{s.run_id} ({s.workflow}, {s.status.value})" for s in states)
    return f"newest runs in this store: {listed}"


class _Reader:
    """What one run's nodes left: their log files, read on, and the ledger, read on."""

    def __init__(self, engine: Engine, state: RunState, nodes: list[str]) -> None:
        self.engine = engine
        self.run_id = state.run_id
        run_dir = engine.run_dir(state.run_id)
        self.tails = {
            n: [StreamTail(n, s, log_file(run_dir, n, s)) for s in STREAMS] for n in nodes
        }
        self._seen = 0  # ledger records already looked at

    def document(self, records: list[StepRecord]) -> dict[str, Any]:
        """The ``--json`` document: each node's whole log files and its tracebacks."""
        tracebacks = _tracebacks(records)
        cached = cached_nodes(records)
        nodes = {
            n: {
                **{tail.stream: read_log(tail.path) for tail in tails},
                "tracebacks": [
                    {"attempt": a, "step": step, "traceback": text}
                    for step, a, text in tracebacks.get(n, [])
                ],
                **({"cached_from": cached[n]} if n in cached else {}),
            }
            for n, tails in self.tails.items()
        }
        return {"run_id": self.run_id, "nodes": nodes}

    async def drain(
        self, blocks: Blocks, *, final: bool, records: list[StepRecord] | None = None
    ) -> None:
        """Print what was written since the last drain, node by node."""
        if records is None:
            records = await self._new_records()
        else:
            records, self._seen = records[self._seen :], len(records)
        tracebacks = _tracebacks(records)
        for node_id, tails in self.tails.items():
            for tail in tails:
                for attempt, text in tail.poll(final=final):
                    blocks.add(node_id, tail.stream, attempt, text)
            for step, attempt, text in tracebacks.get(node_id, []):
                what = "traceback" if step is None else f"step '{step}' traceback"
                blocks.add(node_id, what, attempt, text)

    async def _new_records(self) -> list[StepRecord]:
        # The head is one indexed read; the whole ledger is read only when it grew.
        count, _ = await self.engine.store.ledger_head(self.run_id)
        if count <= self._seen:
            return []
        records = await self.engine.ledger(self.run_id)
        new, self._seen = records[self._seen :], len(records)
        return new


def _tracebacks(records: list[StepRecord]) -> dict[str, list[tuple[str | None, int, str]]]:
    """Per node, ``(step, attempt, traceback)`` of each failed attempt that kept one, in order.

    ``step`` is None for an attempt of the node, the sub-step's name for a failed
    attempt of a ``ctx.step`` inside it (one that was tried again, or gave up).
    """
    out: dict[str, list[tuple[str | None, int, str]]] = {}
    for rec in records:
        if not rec.node_id:
            continue
        text = attempt_traceback(rec)
        if text is not None:
            out.setdefault(rec.node_id, []).append((None, rec.attempt, text))
        elif (text := step_traceback(rec)) is not None:
            step = rec.name or rec.idempotency_key.rsplit(":", 2)[-2]
            out.setdefault(rec.node_id, []).append((step, rec.attempt, text))
    return out


async def _follow(engine: Engine, reader: _Reader, blocks: Blocks, notes: list[str]) -> RunState:
    """Print new output every :data:`POLL_SECONDS` until the run stops being pending or running.

    The status is read before the files and the ledger, so whatever was written
    before the run stopped is printed before this returns.
    """
    run_id = reader.run_id
    while True:
        state = await engine.get_run(run_id)
        live = state.status.value in _LIVE
        if live and interrupted(state, await engine.store.get_lease(run_id), engine.host):
            live = False
            notes.append(
                f"run {run_id} is interrupted: the process driving it stopped; continue it "
                f"with: spindle resume {run_id}"
            )
        await reader.drain(blocks, final=not live)
        if not live:
            return state
        await asyncio.sleep(POLL_SECONDS)
