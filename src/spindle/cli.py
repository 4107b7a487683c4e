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
lives and its one-line help), so listing them imports nothing. ``cli`` (the
click group), ``SpindleGroup`` and ``make_cli`` are importable from here too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from spindle._version import __version__

if TYPE_CHECKING:
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

#: name -> ("module:attr", one-line help); the help is shown without importing.
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("spindle._cli.runs:run", "Start a run of a workflow file."),
    "resume": ("spindle._cli.runs:resume", "Answer a wait, or continue an interrupted run."),
    "emit": ("spindle._cli.runs:emit", "Deliver an event to the runs waiting for it."),
    "cancel": ("spindle._cli.runs:cancel", "Cancel a run and its sub-workflows."),
    "runs": ("spindle._cli.runs:runs", "List runs."),
    "show": ("spindle._cli.runs:show", "Show a run: status, waits, output, error."),
    "ledger": ("spindle._cli.runs:ledger", "Print a run's ledger; 'ledger verify' checks it."),
    "worker": ("spindle._cli.worker:worker", "Claim and drive runnable runs from a store."),
    "plugins": (
        "spindle._cli.plugins:plugins",
        "List installed plugin kinds (--check loads them).",
    ),
    "schema": ("spindle._cli.schema:schema", "Print the JSON Schema of every installed kind."),
}

#: The top-level help text.
GROUP_HELP = """spindle: durable, plugin-based workflow runs.

Every step of a run is recorded, so a run survives a crash, can wait for a
person or an event, and resumes exactly where it stopped.
"""

HELP_OPTIONS = ["-h", "--help"]

_GROUP_MODULE = "spindle._cli._group"


def __getattr__(name: str) -> Any:
    # The click group is built on first use, so importing this module stays cheap.
    if name in ("cli", "SpindleGroup", "make_cli"):
        import importlib

        return getattr(importlib.import_module(_GROUP_MODULE), name)
    raise AttributeError(f"module 'spindle.cli' has no attribute {name!r}")


def _render_help() -> str:
    """Render the top-level help with click (what ``--help`` prints, without the newline)."""
    from spindle._cli._group import cli as group

    with group.make_context("spindle", [], resilient_parsing=True) as ctx:
        return group.get_help(ctx)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run ``spindle ARGS`` and exit with its code."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Once the click group exists in this process, code may have changed it
    # (add_command): then click itself must answer.
    untouched = _GROUP_MODULE not in sys.modules
    if untouched and args == ["--version"]:
        sys.stdout.write(f"spindle {__version__}\n")
        raise SystemExit(0)
    if untouched and len(args) == 1 and args[0] in HELP_OPTIONS:
        from spindle._cli import _fasthelp

        key = _fasthelp.help_key(GROUP_HELP, BUILTIN_COMMANDS)
        text = _fasthelp.lookup(key)
        if text is None:
            text = _render_help()
            _fasthelp.store(key, text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        raise SystemExit(0)
    from spindle._cli._group import cli as group

    group.main(args=args, prog_name="spindle")
