"""``spindle worker``: claim runnable runs from a store under a lease and drive them."""

from __future__ import annotations

import asyncio

import click

from spindle._cli._common import EXIT_OK, store_option
from spindle._cli._running import call, hard_exit, make_engine

__all__ = ["worker"]


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
        from spindle.core.errors import LeaseHeld, SpindleError, StoreBusy, StoreFull
        from spindle.core.model import utcnow

        # A full disk or a lock held too long passes: the run is left as last
        # committed (its lease expires if it could not be given back) and is
        # driven again once due, instead of being given up like a broken run.
        passing = (StoreBusy, StoreFull)

        driven = 0
        async with make_engine(store) as engine:
            sem = asyncio.Semaphore(concurrency)

            async def one(run_id: str) -> None:
                nonlocal driven
                async with sem:
                    try:
                        state = await engine.drive(run_id)
                    except LeaseHeld:
                        return  # another worker has it
                    except passing as exc:
                        click.echo(f"run {run_id} interrupted, to be retried: {exc}", err=True)
                        return
                    except SpindleError as exc:
                        # One run this worker cannot drive (its workflow no longer
                        # loads, say) must not stop the others: report it, leave it
                        # as it is recorded, and do not pick it up again.
                        broken.add(run_id)
                        click.echo(f"run {run_id} cannot be driven here: {exc}", err=True)
                        return
                    driven += 1
                    click.echo(f"run {run_id} {state.status.value}", err=True)

            broken: set[str] = set()
            while True:
                try:
                    found = await engine.store.due_runs(
                        utcnow(), limit=concurrency * 4 + len(broken)
                    )
                except passing as exc:
                    if once:
                        raise
                    click.echo(f"cannot look for due runs now, retrying: {exc}", err=True)
                    found = []
                due = [r for r in found if r not in broken]
                if due:
                    await asyncio.gather(*(one(r) for r in due))
                if once:
                    return driven
                if not due:
                    await asyncio.sleep(poll)

    try:
        n = call(main)
    except KeyboardInterrupt:
        click.echo("worker stopped", err=True)
        hard_exit(EXIT_OK)
    click.echo(f"drove {n} run(s)", err=True)
