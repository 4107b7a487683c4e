"""``spindle new-plugin NAME [--kind KIND]... [--dest DIR] [--force]``: scaffold a plugin package.

Writes ``spindle-NAME`` (module ``spindle_NAME``, ``src`` layout): a
``pyproject.toml`` declaring each kind under its ``spindle.*`` entry point, one
small working class per kind, tests using :mod:`spindle.testing` that pass as
generated, and a README. The files are in :mod:`spindle._cli._scaffold`.
"""

from __future__ import annotations

from pathlib import Path

import click

from spindle._cli._common import fail
from spindle._cli._scaffold import KINDS, check_name, plan, write
from spindle._version import __version__

__all__ = ["new_plugin"]


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--kind",
    "kinds",
    type=click.Choice([*KINDS, "all"]),
    multiple=True,
    help="A kind to include (repeat it for several; 'all': every kind). Default: runtime.",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Where to write the package (default: ./spindle-NAME).",
)
@click.option("--force", is_flag=True, help="Write into DIR even if it is not empty.")
def new_plugin(name: str, kinds: tuple[str, ...], dest: Path | None, force: bool) -> None:
    """Write a new plugin package spindle-NAME whose tests pass as generated.

    NAME (lower case, words joined by underscores) becomes the kind name of
    every generated kind, the module spindle_NAME and the distribution
    spindle-NAME. Then: cd into it, pip install -e '.[test]', and run pytest.
    """
    problem = check_name(name)
    if problem:
        fail(problem)
    chosen = list(KINDS) if "all" in kinds else list(kinds or ("runtime",))
    target = dest if dest is not None else Path(f"spindle-{name}")
    try:
        if target.exists() and not target.is_dir():
            fail(f"{target} exists and is not a directory; choose another --dest")
        if target.is_dir() and any(target.iterdir()) and not force:
            fail(
                f"{target} exists and is not empty; choose another --dest, or pass --force "
                f"to write into it (files of the same names are replaced)"
            )
        written = write(target, plan(name, chosen, version=__version__))
    except OSError as exc:
        fail(f"cannot write the package to {target}: {exc.strerror or exc}")
    click.echo(f"wrote spindle-{name} ({', '.join(chosen)}) to {target}/:")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")
