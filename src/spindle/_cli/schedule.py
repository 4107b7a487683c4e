"""``spindle schedule``: add, list, pause, resume and remove the schedules a store keeps.

Workers (``spindle worker``) fire them: each slot starts one run, with the id
``sched:ID:YYYYMMDDTHHMMZ``, however many workers share the store.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import echo_json, fail, json_option, store_option
from spindle._cli._running import call, make_engine, parse_inputs

if TYPE_CHECKING:
    from spindle.core.model import Schedule

__all__ = ["schedule"]


@click.group("schedule")
def schedule() -> None:
    """Start workflows on cron schedules (add, list, pause, resume, remove).

    A schedule is kept in the store; every spindle worker on that store fires
    its slots, each slot once across all workers. See docs/schedules.md for
    the cron syntax, time zones and the catch-up rule after downtime.
    """


def _document(s: Schedule) -> dict[str, Any]:
    return {
        "id": s.schedule_id,
        "workflow": s.workflow,
        "source": s.source,
        "cron": s.cron,
        "timezone": s.timezone,
        "inputs": s.inputs,
        "catch_up": s.catch_up,
        "enabled": s.enabled,
        "next_slot": s.next_slot.isoformat(),
        "last_slot": s.last_slot.isoformat() if s.last_slot else None,
        "created_at": s.created_at.isoformat(),
    }


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r} is not an ISO-8601 time (e.g. 2030-01-01T03:00:00+00:00)")
    if when.tzinfo is None:
        fail(f"--since {value!r} has no UTC offset; add one (e.g. {value}+00:00)")
    return when


@schedule.command("add")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--cron", default=None, metavar="EXPR", help="Cron expression (default: the file's).")
@click.option("--timezone", default=None, metavar="TZ", help="IANA time zone (default: UTC).")
@click.option(
    "--id", "schedule_id", default=None, metavar="ID", help="Schedule id (default: name)."
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input of every run (over the file's schedule inputs).",
)
@click.option(
    "--catch-up",
    "catch_up",
    default=None,
    metavar="RULE",
    help="Missed slots to fire after downtime: latest (default), all, none, or N.",
)
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    help="Fire slots from this ISO-8601 time on (default: now); past slots are due at once.",
)
@click.option("--replace", is_flag=True, help="Replace a schedule with the same id.")
@store_option
@json_option
def add(
    file: Path,
    cron: str | None,
    timezone: str | None,
    schedule_id: str | None,
    inputs: tuple[str, ...],
    catch_up: str | None,
    since: str | None,
    replace: bool,
    store: str | None,
    as_json: bool,
) -> None:
    """Keep a schedule that starts workflow FILE at each slot of its cron expression.

    The expression, zone, inputs and catch-up rule come from the file's
    schedule: field unless given. The workflow's definition is stored now:
    later edits of FILE need spindle schedule add --replace. Exits 2 when the
    file, the expression, the zone or an input is invalid, or the id is taken.
    """
    from spindle.core.engine import add_schedule
    from spindle.core.errors import SpindleError
    from spindle.core.workflow import load_workflow

    values = parse_inputs(inputs)
    start = _since(since)
    try:
        engine = make_engine(store)
        wf = load_workflow(file, registry=engine.registry, policy=engine.policy)
    except SpindleError as exc:
        fail(str(exc))

    async def main() -> Schedule:
        async with engine:
            return await add_schedule(
                engine,
                wf,
                schedule_id=schedule_id,
                cron=cron,
                timezone=timezone,
                inputs=values,
                catch_up=catch_up,
                since=start,
                replace=replace,
            )

    added = call(main)
    if as_json:
        echo_json(_document(added))
    else:
        click.echo(
            f"schedule {added.schedule_id} added: {added.cron} ({added.timezone}), "
            f"next slot {added.next_slot.isoformat()}"
        )


@schedule.command("list")
@store_option
@json_option
def list_(store: str | None, as_json: bool) -> None:
    """List the store's schedules: id, expression, zone, next and last slot, paused."""

    async def main() -> list[Schedule]:
        async with make_engine(store) as engine:
            return await engine.store.list_schedules()

    found = call(main)
    if as_json:
        echo_json([_document(s) for s in found])
        return
    if not found:
        click.echo("no schedules", err=True)
        return
    for s in found:
        state = "" if s.enabled else "  (paused)"
        last = s.last_slot.isoformat() if s.last_slot else "-"
        click.echo(
            f"{s.schedule_id}  {s.workflow}  {s.cron!r} {s.timezone}  "
            f"next {s.next_slot.isoformat()}  last {last}{state}"
        )


async def _change(store: str | None, schedule_id: str, enabled: bool | None) -> str:
    """Pause, resume (None: remove) a schedule; what happened."""
    from spindle.core.model import parse_cron, utcnow

    async with make_engine(store) as engine:
        if enabled is None:
            if not await engine.store.delete_schedule(schedule_id):
                fail(f"no schedule {schedule_id!r} in the store; see spindle schedule list")
            return f"schedule {schedule_id} removed (its runs are kept)"
        found = await engine.store.get_schedule(schedule_id)
        if found is None:
            fail(f"no schedule {schedule_id!r} in the store; see spindle schedule list")
        found.enabled = enabled
        if enabled:
            # The slots of the pause are not missed ones: go on from now.
            cron = parse_cron(found.cron, found.timezone)
            found.next_slot = max(found.next_slot, cron.next_after(utcnow()))
        await engine.store.put_schedule(found)
        return f"schedule {schedule_id} {'resumed' if enabled else 'paused'}"


@schedule.command("remove")
@click.argument("schedule_id", metavar="ID")
@store_option
def remove(schedule_id: str, store: str | None) -> None:
    """Remove schedule ID (the runs it started stay). Exits 2 when there is none."""
    click.echo(call(lambda: _change(store, schedule_id, None)))


@schedule.command("pause")
@click.argument("schedule_id", metavar="ID")
@store_option
def pause(schedule_id: str, store: str | None) -> None:
    """Stop firing schedule ID until it is resumed."""
    click.echo(call(lambda: _change(store, schedule_id, False)))


@schedule.command("resume")
@click.argument("schedule_id", metavar="ID")
@store_option
def resume(schedule_id: str, store: str | None) -> None:
    """Fire schedule ID again, from its next slot after now (the paused slots are skipped)."""
    click.echo(call(lambda: _change(store, schedule_id, True)))
