"""``spindle prune``: delete finished runs older than a duration, batch by batch.

Each batch is one short transaction (see ``spindle.core.store._prune``), so
workers driving runs on the same store carry on while a prune runs. On a
terminal a live line on stderr counts what went so far; piped, each batch
that deleted something is one line on stderr. The totals are printed on
stdout (``--json``: one document). Exit 0, also when nothing was old enough;
2 for a duration or status that cannot be used.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import EXIT_USAGE, echo_json, fail, json_option, store_option
from spindle._cli._running import call, make_engine

if TYPE_CHECKING:
    from spindle.core.model import RunStatus
    from spindle.core.store import PruneResult

__all__ = ["parse_statuses", "prune"]

_FINISHED = ("completed", "failed", "cancelled")
_LIVE = ("pending", "running", "waiting")


def parse_statuses(given: tuple[str, ...]) -> frozenset[RunStatus]:
    """The statuses ``--status`` names (all finished ones when none), or exit 2 saying why."""
    from spindle.core.model import RunStatus

    if not given:
        return frozenset(RunStatus(s) for s in _FINISHED)
    wanted = set()
    for raw in given:
        for name in (part.strip().lower() for part in raw.split(",")):
            if name in _LIVE:
                fail(
                    f"--status {name}: only finished runs are pruned, and a {name} run may "
                    "still continue; use --status completed, --status failed or --status "
                    "cancelled (default: all three)",
                    EXIT_USAGE,
                )
            if name not in _FINISHED:
                fail(
                    f"--status {name!r} is not a run status; use completed, failed or "
                    "cancelled (repeat --status for several; default: all three)",
                    EXIT_USAGE,
                )
            wanted.add(RunStatus(name))
    return frozenset(wanted)


def _counts(result: PruneResult) -> str:
    return (
        f"{result.runs} run(s), {result.records} ledger record(s), "
        f"{result.events} inbox event(s), {result.artifacts} artifact(s)"
    )


@click.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="DURATION",
    help="Prune runs that finished longer ago than this: 30d, 12h, 90m, 45s, 1w, 1d12h, 0s.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="Only runs in this finished status (completed, failed, cancelled; repeatable). "
    "Default: all three.",
)
@store_option
@click.option(
    "--batch",
    default=500,
    show_default=True,
    type=click.IntRange(1),
    metavar="N",
    help="Runs deleted per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@json_option
def prune(
    older_than: str,
    statuses: tuple[str, ...],
    store: str | None,
    batch: int,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete finished runs older than a duration, with their ledgers, consumed inbox
    events, the artifacts no remaining run references, and their run directories.

    Only completed, failed and cancelled runs are pruned, and never one a
    process holds a lease on; a sub-workflow's runs go with their parent,
    never alone. Events no run consumed are kept. Runs go in batches of
    --batch, each one short transaction, so live runs are not held up.

    Example: spindle prune --older-than 30d --status completed
    """
    from spindle.core.errors import ConfigError
    from spindle.core.model import format_duration, parse_duration, utcnow

    try:
        age = parse_duration(older_than, what="--older-than")
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    wanted = parse_statuses(statuses)
    now = utcnow()
    terminal = not as_json and sys.stderr.isatty()
    batches: list[PruneResult] = []

    def shown(result: PruneResult) -> None:
        batches.append(result)
        if not result.runs:
            return
        if terminal:
            total = sum(b.runs for b in batches)
            click.echo(f"\r\x1b[Kpruning: {total} run(s) so far", nl=False, err=True)
        elif not as_json:
            click.echo(f"batch {len(batches)}: {_counts(result)}", err=True)

    async def main() -> PruneResult:
        from spindle.core.engine import apply_retention

        async with make_engine(store) as engine:
            if dry_run:
                before = now - age
                return await engine.store.prune(
                    before=before, statuses=wanted, batch=batch, now=now, dry_run=True
                )
            return await apply_retention(
                engine.store,
                age,
                statuses=wanted,
                now=now,
                batch=batch,
                on_batch=shown,
                run_dir=engine.run_dir,
            )

    try:
        result = call(main)
    finally:
        if terminal and batches:
            click.echo("\r\x1b[K", nl=False, err=True)
    names = sorted(s.value for s in wanted)
    before = now - age
    if as_json:
        document: dict[str, Any] = {
            "older_than": format_duration(age),
            "before": before.isoformat(),
            "statuses": names,
            "dry_run": dry_run,
            "batches": len(batches),
            **result.to_dict(),
        }
        echo_json(document)
        return
    verb = "would prune" if dry_run else "pruned"
    click.echo(
        f"{verb} {_counts(result)} ({'/'.join(names)} runs last updated before "
        f"{before.isoformat(timespec='seconds')})"
    )
