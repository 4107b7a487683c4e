"""CLI commands that read runs without changing them: runs, show, ledger (and verify).

They are listed in the command table as ``spindle._cli.runs:NAME``, with the
commands that change runs (:mod:`spindle._cli.runs` imports them from here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import click

from spindle._cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    echo_json,
    fail,
    json_option,
    store_option,
)
from spindle._cli._graph import FORMATS, build_graph, render
from spindle._cli._nested import nested_children, nested_document, print_nested
from spindle._cli._render import (
    document,
    interrupted,
    node_rows,
    print_ledger,
    print_runs,
    print_show,
)
from spindle._cli._running import call, exit_with, make_engine, status_code
from spindle._cli._tracebacks import add_tracebacks

if TYPE_CHECKING:
    from spindle.core.model import RunState

__all__ = ["ledger", "runs", "show"]

_STATUSES = ["pending", "running", "waiting", "completed", "failed", "cancelled"]


@click.command("runs")
@click.option("--status", "status", default=None, type=click.Choice(_STATUSES))
@click.option("--workflow", default=None, help="Only runs of this workflow name.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@store_option
@json_option
def runs(
    status: str | None, workflow: str | None, limit: int, store: str | None, as_json: bool
) -> None:
    """List runs, newest first.

    A run whose driver died (its lease expired, or its process on this host is
    gone) shows as ``interrupted``: ``spindle resume RUN_ID`` continues it.
    """

    async def main() -> tuple[list[RunState], set[str]]:
        async with make_engine(store) as engine:
            states = await engine.list_runs(status=status, workflow=workflow, limit=limit)
            stopped = {
                s.run_id
                for s in states
                if s.status.value == "running"
                and interrupted(s, await engine.store.get_lease(s.run_id), engine.host)
            }
            return states, stopped

    states, stopped = call(main)
    if as_json:
        echo_json({"runs": [{**document(s), "interrupted": s.run_id in stopped} for s in states]})
        return
    if not states:
        click.echo("no runs" + (f" with status {status}" if status else ""))
        return
    print_runs(states, stopped)


@click.command("show")
@click.argument("run_id")
@click.option("--graph", is_flag=True, help="Draw the run's graph with node states (see --format).")
@click.option(
    "--format",
    "fmt",
    default=None,
    type=click.Choice(FORMATS),
    help="With --graph: tree (the default, for the terminal), mermaid or dot.",
)
@store_option
@json_option
def show(run_id: str, graph: bool, fmt: str | None, store: str | None, as_json: bool) -> None:
    """Show a run: status, nodes, waits (with prompt and choices), output, error.

    Under a failed node's error comes the end of the traceback its Python code
    raised (the ledger keeps it); spindle logs RUN_ID NODE prints all of it,
    with the node's captured output. Sub-workflow runs are shown under the node
    that started them, with their own nodes (five levels deep at most).

    --graph draws the run's graph instead: each node under what it depends on,
    with its state (a skip says why), map items and loop iterations under their
    node; --format mermaid or dot prints it for a diagram tool, --json as data.
    """
    if fmt is not None and not graph:
        fail("--format only applies with --graph: spindle show RUN_ID --graph --format FMT")

    async def main() -> tuple[RunState, dict[str, Any], list[RunState], bool, Any]:
        async with make_engine(store) as engine:
            state = await engine.get_run(run_id)
            records = await engine.ledger(run_id)
            definition = None
            if state.definition_id:
                definition = await engine.store.get_definition(state.definition_id)
            if graph:
                active = state.status.value in ("pending", "running", "waiting")
                drawn = build_graph(run_id, definition, records, active=active)
                return state, {}, [], False, drawn
            lease = await engine.store.get_lease(run_id)
            children = await engine.store.list_runs(parent_run_id=run_id)
            stopped = interrupted(state, lease, engine.host)
            nodes = node_rows(list((definition or {}).get("nodes", {})), records)
            add_tracebacks(nodes, records)
            nested = await nested_children(engine, children, nodes) if children else None
            return state, nodes, children, stopped, nested

    state, nodes, children, stopped, extra = call(main)
    if graph:
        if as_json:
            echo_json(extra.document())
        else:
            for line in render(extra, fmt or "tree"):
                click.echo(line)
        exit_with(status_code(state))
    if as_json:
        echo_json(
            {
                **document(state),
                "interrupted": stopped,
                "nodes": {nid: _node_document(info) for nid, info in nodes.items()},
                "children": [c.run_id for c in children],
                "children_detail": nested_document(*(extra or ({}, {}))),
            }
        )
    else:
        grouped, more = extra or ({}, {})
        print_show(
            state, nodes, children, stopped, lambda pad, nid: print_nested(pad, nid, grouped, more)
        )
    exit_with(status_code(state))


def _node_document(info: dict[str, Any]) -> dict[str, Any]:
    """A node's entry in ``show --json``: its row, with ``traceback`` (null when none kept)."""
    return {k: v for k, v in info.items() if k != "traceback_attempt"}


@click.command("ledger")
@click.argument("args", nargs=-1, required=True, metavar="[verify] RUN_ID")
@click.option(
    "--require-key",
    is_flag=True,
    help="ledger verify: fail (exit 1) unless the ledger is keyed (SPINDLE_LEDGER_KEY).",
)
@store_option
@json_option
def ledger(args: tuple[str, ...], require_key: bool, store: str | None, as_json: bool) -> None:
    """Print a run's ledger, or check it: spindle ledger verify RUN_ID.

    verify checks the hash chain (an HMAC chain under SPINDLE_LEDGER_KEY for a
    keyed run), that the ledger ends where its head says (no record removed
    from its end or added), and that the run's stored state (status, output,
    error) matches the digest committed with its last record.
    """
    if args[0] == "verify":
        if len(args) != 2:
            fail("usage: spindle ledger verify RUN_ID")
        _verify(args[1], store, as_json, require_key)
    if require_key:
        fail("--require-key is for 'spindle ledger verify RUN_ID'")
    if len(args) != 1:
        fail("usage: spindle ledger RUN_ID  |  spindle ledger verify RUN_ID")
    run_id = args[0]

    async def main() -> list[Any]:
        async with make_engine(store) as engine:
            return await engine.ledger(run_id)

    records = call(main)
    if as_json:
        from spindle.core.model import converter

        echo_json({"run_id": run_id, "records": [converter.unstructure(r) for r in records]})
        return
    print_ledger(records)


def _verify(run_id: str, store: str | None, as_json: bool, require_key: bool) -> NoReturn:
    async def main() -> Any:
        async with make_engine(store) as engine:
            return await engine.verify_ledger(run_id)

    result = call(main)
    if require_key and result.ok and not result.keyed:
        # Someone able to write the file could have removed a run's key id and
        # recomputed a plain chain; when every run must be keyed, that is a failure.
        result.ok = False
        result.problem = "not keyed"
        result.reason = (
            f"ledger of run {run_id} is not keyed: it was written without SPINDLE_LEDGER_KEY, "
            "or its key id was removed and its hashes recomputed (--require-key)"
        )
    # A keyed ledger checked without its key is not known broken: it is a usage error.
    code = EXIT_OK if result.ok else EXIT_USAGE if result.key_problem else EXIT_FAILED
    if as_json:
        echo_json(
            {
                "run_id": run_id,
                "ok": result.ok,
                "count": result.count,
                "first_bad_index": result.first_bad_index,
                "reason": result.reason,
                "problem": result.problem,
                "keyed": result.keyed,
                "key_problem": result.key_problem,
                "head_recorded": result.head_recorded,
                "notes": result.notes,
            }
        )
        exit_with(code)
    if result.ok:
        chain = "keyed hash chain" if result.keyed else "hash chain"
        checked = ", head and state match" if result.head_recorded else ""
        click.echo(f"ledger of run {run_id} is intact: {result.count} records, {chain} ok{checked}")
        for note in result.notes:
            click.echo(f"note: {note}")
    elif result.key_problem:
        fail(result.reason or "the ledger's key is missing")
    elif result.problem == "chain":
        # A broken link of the chain ("record 3 was changed after it was written").
        click.echo(
            f"ledger of run {run_id} is BROKEN: first bad record at index "
            f"{result.first_bad_index} of {result.count} ({result.reason})"
        )
    else:
        # The ledger against its head, the state against its digest, or a plain chain
        # under --require-key: the reason is a whole sentence naming the run.
        click.echo(f"BROKEN: {result.reason}")
    exit_with(code)
