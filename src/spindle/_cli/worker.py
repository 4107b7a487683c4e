"""``spindle worker``: claim runnable runs from a store under a lease and drive them."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from spindle._cli._common import EXIT_OK, store_option
from spindle._cli._retention import worker_retention
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
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME",
    help="Claim only runs of this queue (repeatable); default: runs of any queue and of none.",
)
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds between looks for due work (PostgreSQL also wakes workers at once).",
)
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="On SIGTERM, seconds to let runs being driven finish before handing them back.",
)
@click.option("--id", "worker_id", metavar="ID", help="This worker's id (default HOST:PID:RANDOM).")
@click.option("--once", is_flag=True, help="Drive what is due now, then exit.")
@click.option(
    "--retention",
    metavar="DURATION",
    help="Prune finished runs older than this (30d, 12h...) now and then "
    "(default: the retention setting; none: keep every run).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port, printed); "
    "needs pip install 'spindle[metrics]'.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="The address --metrics-port listens on (0.0.0.0: every interface).",
)
def worker(
    store: str | None,
    concurrency: int,
    queues: tuple[str, ...],
    poll: float,
    grace: float,
    worker_id: str | None,
    once: bool,
    retention: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Claim runnable runs (new, resumed, timer or retry due, left by a dead worker)
    under a lease and drive up to --concurrency of them at once.

    Many workers may share one store (PostgreSQL across machines, or one SQLite
    file on one machine): each run is claimed by one of them, queue limits hold
    across all of them (spindle queue set), and a run a dead worker on this host
    held is taken over at once (elsewhere once its lease expires). SIGTERM (or
    Ctrl-C) stops claiming, lets the runs being driven finish for up to --grace
    seconds, hands the rest back to other workers, and exits 0.

    On a terminal one live line shows the runs claimed, running, finished and
    failed, the time since the worker started and the runs running now;
    failures are printed above it, every claimed and finished run only with
    spindle -v. Piped, it prints one line per claimed run ("run ID claimed")
    and per run it stops driving ("run ID completed", "run ID failed: ERROR",
    "run ID waiting").

    With --metrics-port it serves its runs', nodes' and waits' counters and
    durations to Prometheus (see docs/metrics.md), and prints where:
    "metrics on http://HOST:PORT/metrics".
    """
    from spindle.core.engine._worker import Worker, WorkerStats
    from spindle.core.model import check_queue_name, check_worker_id

    for name in queues:
        try:
            check_queue_name(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--queue") from None
    if worker_id is not None:
        try:
            check_worker_id(worker_id)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--id") from None
    progress = WorkerProgress()

    async def main() -> WorkerStats:
        async with make_engine(store, [progress]) as engine, contextlib.AsyncExitStack() as stack:
            keeper = worker_retention(retention, engine.settings.retention, engine.run_dir)
            if metrics_port is not None:
                from spindle._cli._metrics import serve_metrics

                server = serve_metrics(engine, metrics_port, metrics_host)
                stack.callback(server.close)
                click.echo(f"metrics on {server.url}", err=True)
            progress.show()
            runner = Worker(
                engine,
                concurrency=concurrency,
                queues=queues or None,
                poll=poll,
                grace=grace,
                worker_id=worker_id,
                report=progress,
                retention=keeper,
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, _stopping, runner, progress)
            try:
                stats = await runner.run(once=once)
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            if stats.handed_back:
                progress.note(None, f"handed {stats.handed_back} run(s) back to other workers")
            return stats

    # A run handed back may still have a node running in a thread (it cannot be
    # stopped): leave it, rather than wait for it at exit (it was not recorded).
    try:
        stats = call(main, abandon=lambda s: s.handed_back > 0)
    except KeyboardInterrupt:
        progress.close()  # before the hard exit: a live line hides the cursor
        click.echo("worker stopped", err=True)
        hard_exit(EXIT_OK)
    finally:
        progress.close()
    click.echo(f"drove {stats.driven} run(s)", err=True)
    if stats.handed_back:
        hard_exit(EXIT_OK)


def _stopping(runner: object, progress: WorkerProgress) -> None:
    from spindle.core.engine._worker import Worker

    assert isinstance(runner, Worker)
    if runner.stopping:  # a second signal: stop at once
        raise KeyboardInterrupt
    progress.note(None, "stopping: no new runs are claimed; waiting for the runs in flight")
    runner.stop()
