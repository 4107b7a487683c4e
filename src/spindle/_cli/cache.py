"""``spindle cache``: list and clear the node results a store keeps for reuse.

A node with ``cache:`` in force reuses the result of a completed node of any
run with the same fingerprint (see docs/caching.md). ``cache clear`` removes
kept results -- all of them, one workflow's, or those older than a duration --
so the next run of such a node runs it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import echo_json, fail, json_option, store_option
from spindle._cli._render import table
from spindle._cli._running import call, make_engine

if TYPE_CHECKING:
    from datetime import timedelta

    from spindle.core.model import CacheEntry

__all__ = ["cache"]


@click.group("cache")
def cache() -> None:
    """List or clear cached node results ('cache list', 'cache clear').

    A node whose cache: is on reuses the result of a completed node of any
    run whose fingerprint -- runtime configuration, inputs, the content of its
    input files, cache key -- is the same. See docs/caching.md.
    """


def _age(older_than: str | None) -> timedelta | None:
    if older_than is None:
        return None
    from spindle.core.errors import ConfigError
    from spindle.core.model import parse_duration

    try:
        return parse_duration(older_than, what="--older-than")
    except ConfigError as exc:
        fail(str(exc))


def _document(e: CacheEntry) -> dict[str, Any]:
    return {
        "fingerprint": e.fingerprint,
        "workflow": e.workflow,
        "run_id": e.run_id,
        "node_id": e.node_id,
        "created_at": e.created_at.isoformat(),
        "expires_at": e.expires_at.isoformat() if e.expires_at else None,
        "artifacts": dict(e.artifacts),
    }


@cache.command("list")
@click.option("--workflow", default=None, metavar="NAME", help="Only this workflow's results.")
@store_option
@json_option
def list_cached(workflow: str | None, store: str | None, as_json: bool) -> None:
    """List cached node results, newest first (expired ones are marked)."""
    from spindle.core.model import utcnow

    async def main() -> list[CacheEntry]:
        async with make_engine(store) as engine:
            return await engine.store.list_cached(workflow=workflow)

    found = call(main)
    if as_json:
        echo_json({"entries": [_document(e) for e in found]})
        return
    if not found:
        click.echo("no cached results" + (f" of workflow {workflow!r}" if workflow else ""))
        return
    now = utcnow()
    rows = [
        (
            e.fingerprint[:12],
            e.workflow,
            f"{e.run_id}/{e.node_id}",
            e.created_at.isoformat(timespec="seconds"),
            "never" if e.expires_at is None else e.expires_at.isoformat(timespec="seconds"),
            "" if e.live(now) else "expired",
        )
        for e in found
    ]
    table(("FINGERPRINT", "WORKFLOW", "FROM", "CREATED", "EXPIRES", ""), rows)


@cache.command("clear")
@click.option("--workflow", default=None, metavar="NAME", help="Only this workflow's results.")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    metavar="DURATION",
    help="Only results kept longer ago than this (30d, 12h, 90m, 1d12h).",
)
@store_option
@json_option
def clear(workflow: str | None, older_than: str | None, store: str | None, as_json: bool) -> None:
    """Remove cached node results: all, one workflow's, or those older than DURATION.

    The next run of a node whose result was removed runs it again.

    Example: spindle cache clear --workflow build --older-than 7d
    """
    from spindle.core.model import utcnow

    age = _age(older_than)
    before = None if age is None else utcnow() - age

    async def main() -> int:
        async with make_engine(store) as engine:
            return await engine.store.clear_cached(workflow=workflow, before=before)

    removed = call(main)
    if as_json:
        echo_json(
            {"removed": removed, "workflow": workflow, "older_than": older_than},
        )
        return
    what = f" of workflow {workflow!r}" if workflow else ""
    age_text = f" older than {older_than}" if older_than else ""
    noun = "result" if removed == 1 else "results"
    click.echo(f"removed {removed} cached {noun}{what}{age_text}")
