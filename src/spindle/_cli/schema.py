"""``spindle schema [--group G] [--output FILE]``: the JSON Schema of workflow files.

The schema is built from the installed kinds (so a third-party runtime shows
up as soon as it is installed), honouring the ``[plugins]`` allow/deny lists.
Point an editor at it for completion and checking of workflow files::

    spindle schema --output spindle.schema.json
    # first line of a workflow file:
    # yaml-language-server: $schema=./spindle.schema.json
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from spindle._cli._common import cli_registry, handle_errors
from spindle.core.workflow import WORKFLOW_GROUPS, group_schema, workflow_schema

__all__ = ["schema"]


@click.command()
@click.option(
    "--group",
    type=click.Choice(WORKFLOW_GROUPS),
    default=None,
    help="Print only this group's union of kinds.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the schema to FILE instead of stdout.",
)
@handle_errors
def schema(group: str | None, output: Path | None) -> None:
    """Print the JSON Schema (draft 2020-12) of workflow files, from the installed kinds.

    A kind that cannot be loaded is left out, with a "$comment" saying why.
    """
    registry = cli_registry()
    document = group_schema(registry, group) if group else workflow_schema(registry)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
    click.echo(f"wrote {output}", err=True)
