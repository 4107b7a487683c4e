"""``spindle workers`` and ``spindle queue``: who drives runs, and the queues' limits.

Workers announce themselves in the store and refresh that record with their
heartbeat, so any machine that reaches the store can list them with the runs
they hold. Queue limits live in the store too: ``spindle queue set`` changes
them while workers run, and the next claim obeys them.
"""

from __future__ import annotations

import socket
from typing import Any

import click

from spindle._cli._common import EXIT_USAGE, echo_json, fail, json_option, store_option
from spindle._cli._running import call, make_engine

__all__ = ["queue", "workers"]


@click.command("workers")
@store_option
@json_option
@click.option("--all", "show_all", is_flag=True, help="Also list workers that stopped refreshing.")
def workers(store: str | None, as_json: bool, show_all: bool) -> None:
    """List the live workers of a store: id, host and pid, queues, and the runs each holds.

    A worker refreshes its record every third of its lease life; one that has
    not for a whole lease life (killed, or its machine gone) is not live, and
    is listed only with --all (marked "gone"). A worker that stopped cleanly
    removes its record.
    """
    from spindle.core.engine._leases import pid_alive
    from spindle.core.model import utcnow

    async def main() -> list[Any]:
        async with make_engine(store) as engine:
            return await engine.store.list_workers()

    now = utcnow()
    host = socket.gethostname()

    def live(w: Any) -> bool:
        # A worker of this host whose process is gone is not live, whatever its record says.
        return bool(w.live(now)) and not (w.host == host and not pid_alive(w.pid))

    found = [w for w in call(main) if show_all or live(w)]
    if as_json:
        echo_json({"workers": [{**w.to_dict(), "live": live(w)} for w in found]})
        return
    if not found:
        click.echo("no live workers" if not show_all else "no workers")
        return
    rows = [("WORKER", "STATE", "SEEN", "QUEUES", "SLOTS", "HOLDS")]
    for w in found:
        state = "gone" if not live(w) else "stopping" if w.stopping else "live"
        seen = f"{max(0.0, (now - w.seen_at).total_seconds()):.0f}s ago"
        queues = ",".join(w.queues) if w.queues is not None else "*"
        holds = " ".join(w.holds) or "-"
        rows.append((w.worker_id, state, seen, queues, f"{len(w.holds)}/{w.concurrency}", holds))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(v.ljust(widths[i]) for i, v in enumerate(r[:5])) + "  " + r[5])


@click.group("queue")
def queue() -> None:
    """Show or change the limits of the queues workers claim runs from (set, list)."""


def _limit(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """A limit option: a whole number of at least 1, or ``none`` to remove the limit."""
    if value is None:
        return None
    if value.strip().lower() in ("none", "off", "-"):
        return "none"
    try:
        number = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a whole number or 'none', got {value!r}") from None
    if number < 1:
        raise click.BadParameter(f"expected at least 1 (or 'none' for no limit), got {number}")
    return number


def parse_rate(text: str) -> tuple[int, float]:
    """``"10/1m"`` (ten starts a minute) as ``(10, 60.0)``: a count, ``/``, and a duration
    as ``spindle prune`` reads them (``30s``, ``1m``, ``1h``, ``1d``; a bare unit is one).

    Raises:
        ValueError: saying what is wrong and how a rate is written.
    """
    from spindle.core.errors import ConfigError
    from spindle.core.model import parse_duration

    example = "write e.g. 10/1m (ten starts a minute), 5/s, 100/1h or 'none'"
    count, sep, per = text.strip().partition("/")
    if not sep or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"rate {text!r} is not N/PERIOD with N at least 1; {example}")
    per = per.strip()
    try:
        period = parse_duration(
            f"1{per}" if per in ("s", "m", "h", "d", "w") else per, what="rate period"
        )
    except ConfigError as exc:
        raise ValueError(f"rate {text!r}: {exc}") from None
    if period.total_seconds() <= 0:
        raise ValueError(f"rate {text!r}: the period must be longer than 0s; {example}")
    return int(count), period.total_seconds()


@queue.command("set")
@click.argument("name")
@store_option
@click.option(
    "--concurrency",
    metavar="N|none",
    callback=_limit,
    help="Runs of the queue driven at once, by all workers.",
)
@click.option(
    "--per-worker",
    metavar="N|none",
    callback=_limit,
    help="Runs of the queue one worker drives at once.",
)
@click.option("--rate", metavar="N/PERIOD|none", help="Starts per period, e.g. 10/1m, 5/s, 100/1h.")
@click.option(
    "--partition-concurrency",
    metavar="N|none",
    callback=_limit,
    help="Runs of one partition (e.g. one tenant) driven at once.",
)
@click.option("--pause/--unpause", default=None, help="Stop (or restart) claims from the queue.")
@json_option
def set_queue(
    name: str,
    store: str | None,
    concurrency: int | str | None,
    per_worker: int | str | None,
    rate: str | None,
    partition_concurrency: int | str | None,
    pause: bool | None,
    as_json: bool,
) -> None:
    """Create a queue or change its limits; options not given keep their value, 'none'
    removes a limit. Workers obey the new limits from their next claim; runs already
    being driven are not stopped."""
    from spindle.core.model import QueueLimits, check_queue_name

    try:
        check_queue_name(name)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    parsed_rate: tuple[int, float] | str | None = None
    if rate is not None:
        if rate.strip().lower() in ("none", "off", "-"):
            parsed_rate = "none"
        else:
            try:
                parsed_rate = parse_rate(rate)
            except ValueError as exc:
                fail(f"--rate: {exc}", EXIT_USAGE)

    async def main() -> QueueLimits:
        async with make_engine(store) as engine:
            known = {q.name: q for q in await engine.store.get_queues()}
            lim = known.get(name) or QueueLimits(name)
            for field, value in (
                ("concurrency", concurrency),
                ("per_worker", per_worker),
                ("partition_concurrency", partition_concurrency),
            ):
                if value is not None:
                    setattr(lim, field, None if value == "none" else value)
            if parsed_rate == "none":
                lim.rate = None
            elif isinstance(parsed_rate, tuple):
                lim.rate, lim.period = parsed_rate
            if pause is not None:
                lim.paused = pause
            await engine.store.set_queue(lim)
            return lim

    lim = call(main)
    if as_json:
        echo_json(lim.to_dict())
    else:
        click.echo(f"queue {name}: {_describe(lim)}")


@queue.command("list")
@store_option
@json_option
def list_queues(store: str | None, as_json: bool) -> None:
    """List the queues (those with limits, and those runs were started on) with their
    limits, the runs waiting to be claimed and the runs being driven now."""
    from spindle.core.model import QueueLimits, utcnow

    async def main() -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
        async with make_engine(store) as engine:
            limits = {q.name: q for q in await engine.store.get_queues()}
            return limits, await engine.store.queue_counts(utcnow())

    limits, counts = call(main)
    names = sorted(set(limits) | set(counts))
    if as_json:
        docs = []
        for n in names:
            waiting, driven = counts.get(n, (0, 0))
            docs.append(
                {
                    **(limits.get(n) or QueueLimits(n)).to_dict(),
                    "waiting": waiting,
                    "driven": driven,
                }
            )
        echo_json({"queues": docs})
        return
    if not names:
        click.echo("no queues")
        return
    for n in names:
        waiting, driven = counts.get(n, (0, 0))
        described = _describe(limits[n]) if n in limits else "no limits"
        click.echo(f"{n}  waiting {waiting}  driven {driven}  ({described})")


def _describe(lim: Any) -> str:
    parts = []
    if lim.paused:
        parts.append("paused")
    if lim.concurrency is not None:
        parts.append(f"concurrency {lim.concurrency}")
    if lim.per_worker is not None:
        parts.append(f"per worker {lim.per_worker}")
    if lim.rate is not None:
        parts.append(f"rate {lim.rate}/{lim.period:g}s")
    if lim.partition_concurrency is not None:
        parts.append(f"per partition {lim.partition_concurrency}")
    return ", ".join(parts) or "no limits"
