"""``spindle db status`` and ``spindle db upgrade``: a store's schema version, and migrating it.

A SQLite file is migrated when a store opens it; a PostgreSQL database,
shared by many workers, only by ``spindle db upgrade`` (run once, from one
machine, after upgrading spindle): a store refuses an older schema and says so.
"""

from __future__ import annotations

from typing import Any

import click

from spindle._cli._common import echo_json, json_option, store_option
from spindle._cli._running import call, make_engine

__all__ = ["db"]


def _url(engine: Any) -> str:
    url = str(engine.store.url)
    try:
        from spindle.contrib.postgres._base import redacted
    except ImportError:
        return url
    return redacted(url)


@click.group("db")
def db() -> None:
    """Inspect or migrate a store's schema (status, upgrade)."""


@db.command("status")
@store_option
@json_option
def status(store: str | None, as_json: bool) -> None:
    """Print the store's schema version and the version this spindle needs.

    Nothing is created or changed. Exits 0 when the two match (or the store
    keeps no schema), 1 when the store needs spindle db upgrade (or a newer
    spindle).
    """

    async def main() -> tuple[str, int | None, int | None]:
        engine = make_engine(store)
        try:
            found = await engine.store.schema_version()
            needed = engine.store.schema_target
            return _url(engine), found, needed
        finally:
            await engine.store.aclose()
            await engine.aclose()

    url, found, needed = call(main)
    ok = found is None or found in (0, needed)
    advice = (
        "up to date"
        if found == needed
        else "no schema (none needed)"
        if found is None
        else "empty: the schema is created when a store first opens it"
        if found == 0
        else f"needs: spindle db upgrade --store '{url}'"
        if needed is not None and found < needed
        else "written by a newer spindle: upgrade spindle"
    )
    if as_json:
        echo_json({"store": url, "version": found, "needed": needed, "ok": ok, "advice": advice})
    else:
        click.echo(f"store    {url}")
        click.echo(f"version  {found if found is not None else '-'}  (this spindle: {needed})")
        click.echo(f"status   {advice}")
    raise click.exceptions.Exit(0 if ok else 1)


@db.command("upgrade")
@store_option
@json_option
def upgrade(store: str | None, as_json: bool) -> None:
    """Migrate the store's schema to this spindle's version (run once, from one machine).

    Safe to run again, and from several machines at once: migrations wait for
    each other and each runs once. Stop workers of an older spindle first.
    """

    async def main() -> tuple[str, int | None, int | None]:
        engine = make_engine(store)
        try:
            before, after = await engine.store.upgrade()
            return _url(engine), before, after
        finally:
            await engine.store.aclose()
            await engine.aclose()

    url, before, after = call(main)
    if as_json:
        echo_json({"store": url, "before": before, "after": after})
    elif before is None:
        click.echo(f"{url}: this store keeps no schema; nothing to upgrade")
    elif before == after:
        click.echo(f"{url}: schema version {after}, up to date")
    else:
        click.echo(f"{url}: schema upgraded from version {before} to {after}")
