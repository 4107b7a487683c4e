"""``spindle plugins [--check] [--json | --markdown]``: every installed kind, where it comes from.

Without ``--check`` the listing comes from metadata only — no plugin module is
imported, so a broken plugin cannot break the listing and it stays fast with
hundreds of plugins. ``--check`` imports each kind, fills in its description
and shows its load error; it exits 1 if any kind is broken.

Output is plain aligned text when stdout is not a terminal (and JSON with
``--json``); a rich table only on a terminal. ``--markdown`` imports every
kind and prints the reference the docs site shows: each kind by group with its
description and options (see :mod:`spindle._cli._markdown`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._common import EXIT_FAILED, cli_registry, echo_json, handle_errors
from spindle.core.plugin import GROUPS

if TYPE_CHECKING:
    from spindle.core.plugin import KindInfo

__all__ = ["plugins"]

_COLUMNS = ("GROUP", "KIND", "DISTRIBUTION", "VERSION", "STATUS", "DESCRIPTION")


def stdout_is_tty() -> bool:
    """Whether stdout is a terminal (rich output) rather than a pipe or file (plain text)."""
    return sys.stdout.isatty()


def _status(info: KindInfo, checked: bool) -> str:
    if info.denied:
        return "denied"
    if info.error:
        return "error"
    return "ok" if checked else "-"


def _rows(kinds: Sequence[KindInfo], checked: bool) -> list[tuple[str, ...]]:
    return [
        (
            k.group,
            k.kind,
            k.distribution,
            k.version or "-",
            _status(k, checked),
            k.description or "-",
        )
        for k in kinds
    ]


def to_json(kinds: Sequence[KindInfo]) -> dict[str, Any]:
    """The ``--json`` document: ``{"plugins": [{group, kind, value, ...}, ...]}``."""
    return {
        "plugins": [
            {
                "group": k.group,
                "kind": k.kind,
                "value": k.value,
                "distribution": k.distribution,
                "version": k.version,
                "description": k.description,
                "error": k.error,
                "denied": k.denied,
            }
            for k in kinds
        ]
    }


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str] = _COLUMNS) -> str:
    """Align ``rows`` under ``header`` in plain text (the last column is not padded)."""
    table = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = []
    for r in table:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)


def _print_rich(rows: Sequence[Sequence[str]], errors: Sequence[KindInfo]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    table = Table(*_COLUMNS, box=None, header_style="bold")
    style = {"error": "red", "denied": "yellow"}
    for r in rows:
        table.add_row(*(Text(c) for c in r), style=style.get(r[4]))
    console.print(table)
    for k in errors:
        # Text, not markup: messages contain brackets ("[plugins.prefer]").
        console.print(Text.assemble(("error: ", "red"), k.error or ""), highlight=False)


def _print_plain(rows: Sequence[Sequence[str]], errors: Sequence[KindInfo]) -> None:
    click.echo(format_table(rows))
    if errors:
        click.echo("")
        for k in errors:
            click.echo(f"error: {k.error}")


@click.command("plugins")
@click.option("--check", is_flag=True, help="Import every kind, show load errors; exit 1 if any.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--markdown",
    "as_markdown",
    is_flag=True,
    help="Print a Markdown reference: each kind's description and options (imports every kind).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    type=click.Choice(GROUPS),
    help="Only this plugin group (repeatable).",
)
@click.option(
    "--distribution",
    "distributions",
    multiple=True,
    metavar="NAME",
    help="Only kinds this distribution provides (repeatable).",
)
@handle_errors
def plugins(
    check: bool,
    as_json: bool,
    as_markdown: bool,
    groups: tuple[str, ...],
    distributions: tuple[str, ...],
) -> None:
    """List installed plugin kinds: group, kind, distribution, version, description.

    Reads entry-point metadata only; --check imports each kind to report
    whether it loads (and its description). --markdown prints the reference
    the docs site shows (docs/plugins-reference.md): every kind by group with
    its description and options.
    """
    if as_json and as_markdown:
        raise click.UsageError("--json and --markdown cannot be combined; pick one format.")
    registry = cli_registry()
    selected = list(groups) or list(GROUPS)
    kinds: list[KindInfo] = []
    for group in selected:
        kinds.extend(registry.check(group) if check or as_markdown else registry.kinds(group))
    if distributions:
        known = {k.distribution for k in kinds}
        unknown = [d for d in distributions if d not in known]
        if unknown:
            raise click.UsageError(
                f"no installed kind comes from {', '.join(map(repr, unknown))}; "
                f"distributions with kinds: {', '.join(sorted(known)) or '(none)'}."
            )
        kinds = [k for k in kinds if k.distribution in distributions]
    errors = [k for k in kinds if k.error]
    if as_markdown:
        from spindle._cli._markdown import plugins_markdown

        click.echo(plugins_markdown(registry, selected, kinds), nl=False)
    elif as_json:
        echo_json(to_json(kinds))
    else:
        rows = _rows(kinds, check)
        if stdout_is_tty():
            _print_rich(rows, errors)
        else:
            _print_plain(rows, errors)
    if check and errors:
        raise click.exceptions.Exit(EXIT_FAILED)
