"""``spindle worker``: claim runnable runs from a store under a lease and drive them."""

from __future__ import annotations

import asyncio

import click

from spindle._cli._common import EXIT_OK, store_option
from spindle._cli._running import call, hard_exit, make_engine
from spindle._cli._worker_progress import WorkerProgress

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
    """Claim runnable runs (new, resumed, timer or retry due) under a lease and drive them.

    On a terminal one live line shows the runs claimed, running, finished and
    failed, the time since the worker started and the runs running now;
    failures are printed above it, every claimed and finished run only with
    spindle -v. Piped, it prints one line per claimed run ("run ID claimed")
    and per run it stops driving ("run ID completed", "run ID failed: ERROR",
    "run ID waiting").
    """
    progress = WorkerProgress()

    async def main() -> int:
        from spindle.core.engine import fire_due_schedules, until_next_slot
        from spindle.core.errors import LeaseHeld, SpindleError, StoreBusy, StoreFull
        from spindle.core.model import utcnow

        # A full disk or a lock held too long passes: the run is left as last
        # committed (its lease expires if it could not be given back) and is
        # driven again once due, instead of being given up like a broken run.
        passing = (StoreBusy, StoreFull)

        driven = 0
        async with make_engine(store, [progress]) as engine:
            progress.show()
            sem = asyncio.Semaphore(concurrency)

            async def one(run_id: str) -> None:
                nonlocal driven
                async with sem:
                    progress.offered(run_id)
                    try:
                        state = await engine.drive(run_id)
                    except LeaseHeld:
                        progress.dropped(run_id)
                        return  # another worker has it
                    except passing as exc:
                        progress.note(run_id, f"run {run_id} interrupted, to be retried: {exc}")
                        return
                    except SpindleError as exc:
                        # One run this worker cannot drive (its workflow no longer
                        # loads, say) must not stop the others: report it, leave it
                        # as it is recorded, and do not pick it up again.
                        broken.add(run_id)
                        progress.note(run_id, f"run {run_id} cannot be driven here: {exc}")
                        return
                    driven += 1
                    progress.ended(run_id, state)

            broken: set[str] = set()
            while True:
                await fire_due_schedules(engine, utcnow())  # a due slot starts a pending run
                try:
                    found = await engine.store.due_runs(
                        utcnow(), limit=concurrency * 4 + len(broken)
                    )
                except passing as exc:
                    if once:
                        raise
                    progress.note(None, f"cannot look for due runs now, retrying: {exc}")
                    found = []
                due = [r for r in found if r not in broken]
                if due:
                    await asyncio.gather(*(one(r) for r in due))
                if once:
                    return driven
                if not due:
                    # Woken at once by a store that pushes new work (PostgreSQL);
                    # otherwise this is the poll interval.
                    await engine.store.wait_for_work(await until_next_slot(engine, utcnow(), poll))

    try:
        n = call(main)
    except KeyboardInterrupt:
        progress.close()  # before the hard exit: a live line hides the cursor
        click.echo("worker stopped", err=True)
        hard_exit(EXIT_OK)
    finally:
        progress.close()
    click.echo(f"drove {n} run(s)", err=True)
