"""What every ``spindle`` subcommand shares: exit codes, errors, options, settings.

Exit codes (the CLI contract)::

    0  completed          3  waiting
    1  failed/cancelled   2  usage or input error

:func:`handle_errors` turns a :class:`~spindle.SpindleError` into one clean
``error: ...`` on stderr (no traceback) and exit code 2. This module imports
only click and :mod:`spindle.core.errors`; settings, the registry and the
plugin manager are imported by the helpers that need them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from spindle.core.errors import SpindleError

if TYPE_CHECKING:
    import pluggy

    from spindle.core.config import Settings
    from spindle.core.plugin import Registry

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_WAITING",
    "cli_registry",
    "cli_settings",
    "echo_json",
    "fail",
    "handle_errors",
    "has_config_file",
    "json_option",
    "plugin_manager",
    "store_option",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAITING = 3


P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command callback: a :class:`SpindleError` exits 2 with a one-line message.

    Example::

        @click.command()
        @handle_errors
        def show(run_id: str) -> None: ...
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SpindleError as exc:
            fail(str(exc), EXIT_USAGE)

    return wrapper


def echo_json(document: Any) -> None:
    """Print one JSON document on stdout (values JSON cannot hold are printed with ``str``)."""
    import json

    from spindle._cli._stdout import document_stream

    stream = document_stream()
    if stream is None:  # stdout was closed when spindle started: nowhere to print
        return
    click.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False), file=stream)
    stream.flush()  # before a hard exit, which flushes nothing


#: ``--store URL``: per command, like the design's CLI contract.
store_option = click.option(
    "--store",
    "store",
    metavar="URL",
    default=None,
    help="Store URL (default: $SPINDLE_STORE, spindle.toml, or sqlite:///.spindle/spindle.db).",
)


def _reserve_stdout(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """With ``--json``, stdout is kept for the document (see :mod:`spindle._cli._stdout`)."""
    if value:
        from spindle._cli._stdout import reserve_stdout

        # Undone when the root context closes: click does not close the command's own
        # context when parsing its later arguments fails, and that would leave stdout
        # reserved for whatever runs next in this process (a host, a test runner).
        ctx.find_root().call_on_close(reserve_stdout())
    return value


#: ``--json``: print one JSON document for scripts instead of text. Nothing else
#: reaches stdout then: what tasks run by the command print goes to stderr.
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_reserve_stdout,
    help="Print one JSON document (for scripts).",
)


def has_config_file(cwd: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``cwd`` has ``spindle.toml`` or a ``pyproject.toml`` with ``[tool.spindle]``.

    Cheap on purpose (no TOML parsing, no pathlib), so commands that need
    settings only when there are some can skip importing the settings machinery.
    """
    base = os.fspath(cwd) if cwd is not None else os.getcwd()
    if os.path.isfile(os.path.join(base, "spindle.toml")):
        return True
    try:
        with open(os.path.join(base, "pyproject.toml"), encoding="utf-8") as f:
            return "tool.spindle" in f.read()
    except (OSError, UnicodeDecodeError):
        return False


def cli_settings(**overrides: Any) -> Settings:
    """Load settings for a command: the working directory's file, ``SPINDLE_*``, then flags.

    ``None`` overrides (flags not given) are ignored.
    """
    from spindle.core.config import load_settings

    return load_settings(overrides=overrides)


def cli_registry(settings: Settings | None = None) -> Registry:
    """The plugin registry for a command, honouring ``[plugins]`` when configured.

    Without ``settings`` and without a configuration file, the settings
    machinery is not imported at all (``spindle plugins`` stays fast).
    """
    from spindle.core.plugin import Registry

    if settings is None and has_config_file():
        settings = cli_settings()
    if settings is None:
        return Registry()
    return Registry.from_settings(settings.plugins)


def plugin_manager(settings: Settings | None = None) -> pluggy.PluginManager:
    """The pluggy manager with hooks from entry points and the ``hooks`` setting."""
    from spindle.core.plugin import make_plugin_manager

    settings = settings if settings is not None else cli_settings()
    return make_plugin_manager(registry=cli_registry(settings), modules=settings.hooks)
