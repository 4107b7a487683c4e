"""The ``spindle`` command.

``spindle --help`` and ``spindle --version`` must answer in about the time
Python takes to start, however many plugins are installed. This module is
the front door and imports neither click nor any command:

* ``--version`` is answered here;
* ``--help`` is answered from a cache of the text click rendered last time
  (:mod:`spindle._cli._fasthelp`), keyed on everything the text depends on;
* anything else goes to the click group in :mod:`spindle._cli._group`, which
  imports only the subcommand that runs.

Built-in commands are declared in :data:`BUILTIN_COMMANDS` (name → where it
lives and its one-line help; the table is in :mod:`spindle._cli._commands`,
which the click group reads too), so listing them imports nothing. ``cli`` (the
click group), ``SpindleGroup`` and ``make_cli`` are importable from here too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from spindle._version import __version__

if TYPE_CHECKING:
    from spindle._cli._commands import BUILTIN_COMMANDS as BUILTIN_COMMANDS
    from spindle._cli._commands import GROUP_HELP as GROUP_HELP
    from spindle._cli._commands import HELP_OPTIONS as HELP_OPTIONS
    from spindle._cli._group import SpindleGroup as SpindleGroup
    from spindle._cli._group import cli as cli
    from spindle._cli._group import make_cli as make_cli

__all__ = [
    "BUILTIN_COMMANDS",
    "GROUP_HELP",
    "HELP_OPTIONS",
    "SpindleGroup",
    "cli",
    "main",
    "make_cli",
]

_GROUP_MODULE = "spindle._cli._group"
_TABLE_MODULE = "spindle._cli._commands"
_LAZY = {
    "cli": _GROUP_MODULE,
    "SpindleGroup": _GROUP_MODULE,
    "make_cli": _GROUP_MODULE,
    "BUILTIN_COMMANDS": _TABLE_MODULE,
    "GROUP_HELP": _TABLE_MODULE,
    "HELP_OPTIONS": _TABLE_MODULE,
}


def __getattr__(name: str) -> Any:
    # The click group is built on first use, and even the command table is read
    # only when needed, so ``--version`` imports nothing but this module.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spindle.cli' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def _render_help() -> str:
    """Render the top-level help with click (what ``--help`` prints, without the newline)."""
    from spindle._cli._group import cli as group

    with group.make_context("spindle", [], resilient_parsing=True) as ctx:
        return group.get_help(ctx)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run ``spindle ARGS`` and exit with its code.

    With ``argv`` None (the console script, ``python -m spindle``) the process
    is the command's: the garbage collector skips start-up's objects and the
    exit does not walk them (:mod:`spindle._cli._collector`). Given ``argv``
    (a host or a test calling it in-process), nothing of the process is changed.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # Once the click group exists in this process, code may have changed it
    # (add_command): then click itself must answer.
    untouched = _GROUP_MODULE not in sys.modules
    if untouched and args == ["--version"]:
        sys.stdout.write(f"spindle {__version__}\n")
        raise SystemExit(0)
    if untouched and len(args) == 1 and args[0] in ("-h", "--help"):  # HELP_OPTIONS
        from spindle._cli import _fasthelp
        from spindle._cli._commands import BUILTIN_COMMANDS, GROUP_HELP

        key = _fasthelp.help_key(GROUP_HELP, BUILTIN_COMMANDS)
        text = _fasthelp.lookup(key)
        if text is None:
            text = _render_help()
            _fasthelp.store(key, text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        raise SystemExit(0)
    if argv is None:
        # The console script or ``python -m spindle``: this process is ours.
        from spindle._cli import _collector

        _collector.own()
    try:
        from spindle._cli._group import cli as group
    except KeyboardInterrupt:  # Ctrl-C while the commands are imported
        sys.stderr.write("\ninterrupted\n")
        raise SystemExit(130) from None
    group.main(args=args, prog_name="spindle")
