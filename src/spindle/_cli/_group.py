"""The ``spindle`` click group: subcommands are imported on invocation only.

* built-in commands are named in :data:`spindle.cli.BUILTIN_COMMANDS` with
  their one-line help; their modules (``spindle._cli.*``) are imported on
  invocation;
* commands from the ``spindle.cli`` entry-point group are listed from
  metadata (the discovery cache) and imported on invocation, through the
  registry, so a broken one fails only when it is used — with an error that
  names its distribution and entry point;
* the ``spindle_add_cli_commands`` hook is called only when a name is neither
  built in nor an entry point, never for ``--help``;
* the group's own ``-v/--verbose`` sets up logging on stderr
  (:mod:`spindle._cli._logging`) when a command runs, never for ``--help``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import click

from spindle._cli._commands import BUILTIN_COMMANDS, GROUP_HELP, HELP_OPTIONS
from spindle._cli._fasthelp import cli_entry_points
from spindle._version import __version__

__all__ = ["SpindleGroup", "cli", "make_cli"]


def _broken(name: str, message: str) -> click.Command:
    """A stand-in for a command that cannot be loaded: it fails when invoked, not before."""

    def callback() -> None:
        from spindle._cli._common import EXIT_USAGE, fail

        fail(message, EXIT_USAGE)

    return click.Command(
        name,
        callback=callback,
        help=f"(unavailable: {message})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


def _load_builtin(name: str) -> click.Command:
    module_name, _, attr = BUILTIN_COMMANDS[name][0].partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        return _broken(
            name,
            f"built-in command '{name}' cannot be loaded from {module_name}:{attr} "
            f"({type(exc).__name__}: {exc}); is spindle installed completely?",
        )
    if not isinstance(obj, click.Command):
        return _broken(name, f"{module_name}:{attr} is not a click command")
    return obj


#: Exit code after Ctrl-C (128 + SIGINT), as the run commands use too.
_EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        raise click.exceptions.Exit(_EXIT_INTERRUPTED) from None


class SpindleGroup(click.Group):
    """A click group whose subcommands are imported on invocation only.

    What it learns while resolving (entry-point names, imported commands,
    whether the hook ran) is kept on the invocation's root context, so each
    ``main()`` call — one per process for the console script, one per
    ``CliRunner.invoke`` in tests — sees exactly what is installed then.
    Commands added with :meth:`add_command` (including by the
    ``spindle_add_cli_commands`` hook) stay on the group.
    """

    @staticmethod
    def _meta(ctx: click.Context) -> dict[str, Any]:
        meta: dict[str, Any] = ctx.find_root().meta.setdefault("spindle.cli", {})
        return meta

    # --- names, from static tables and metadata only ------------------------

    def entry_point_commands(self, ctx: click.Context) -> dict[str, str]:
        """Commands declared in the ``spindle.cli`` entry-point group: name -> distribution."""
        meta = self._meta(ctx)
        found: dict[str, str] | None = meta.get("entry_points")
        if found is None:
            found = meta["entry_points"] = cli_entry_points(BUILTIN_COMMANDS)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name: built in, from entry points, or added in code."""
        return sorted({*BUILTIN_COMMANDS, *self.commands, *self.entry_point_commands(ctx)})

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str | None:
        cmd = self.commands.get(name) or self._meta(ctx).get("loaded", {}).get(name)
        if cmd is not None:
            return None if cmd.hidden else str(cmd.get_short_help_str(limit))
        if name in BUILTIN_COMMANDS:
            return BUILTIN_COMMANDS[name][1]
        return f"(from {self.entry_point_commands(ctx)[name]})"

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the command list without importing any command."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            short = self._short_help(ctx, name, limit)
            if short is not None:
                rows.append((name, short))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Complete command names from the tables, without importing commands."""
        from click.shell_completion import CompletionItem

        items: list[Any] = [
            CompletionItem(name, help=self._short_help(ctx, name, 45))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        # Options of the group itself (--help, --version, --verbose) come from click.
        items.extend(click.Command.shell_complete(self, ctx, incomplete))
        return items

    # --- Ctrl-C -------------------------------------------------------------

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the group's options; Ctrl-C meanwhile ends as :meth:`invoke` says."""
        with _interruptible():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; Ctrl-C ends with ``interrupted`` and exit code 130.

        click's own answer is ``Aborted!`` and exit code 1, which a script cannot
        tell from a failed run. The run commands catch Ctrl-C themselves (to say
        how the run continues); this covers every other moment, such as a
        subcommand still being imported or a workflow file still being read.
        """
        with _interruptible():
            return super().invoke(ctx)

    # --- resolution, importing only the command asked for -------------------

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command ``cmd_name``, importing only it."""
        cmd = self.commands.get(cmd_name)
        if cmd is not None:
            return cmd
        loaded: dict[str, click.Command] = self._meta(ctx).setdefault("loaded", {})
        if cmd_name in loaded:
            return loaded[cmd_name]
        if cmd_name in BUILTIN_COMMANDS:
            cmd = _load_builtin(cmd_name)
        else:
            # A plugin's command may run for as long as it likes: the collector must be
            # on for it (built-in commands turn it on before their event loop runs).
            from spindle._cli._collector import settle

            settle()
            if cmd_name not in self.entry_point_commands(ctx):
                self._call_hooks(ctx, cmd_name)
                return self.commands.get(cmd_name)
            cmd = self._load_entry_point(ctx, cmd_name)
        loaded[cmd_name] = cmd
        return cmd

    def _load_entry_point(self, ctx: click.Context, name: str) -> click.Command:
        from spindle._cli._common import cli_registry
        from spindle.core.errors import SpindleError

        try:
            obj = cli_registry().get("cli", name)
        except SpindleError as exc:
            return _broken(name, str(exc))
        if not isinstance(obj, click.Command):  # registered in code with another shape
            dist = self.entry_point_commands(ctx)[name]
            return _broken(name, f"cli '{name}' from {dist} is not a click command")
        return obj

    def _call_hooks(self, ctx: click.Context, name: str) -> None:
        meta = self._meta(ctx)
        if meta.get("hooks_called"):
            return
        meta["hooks_called"] = True
        from spindle._cli._common import plugin_manager
        from spindle.core.errors import SpindleError

        try:
            pm = plugin_manager()
            pm.hook.spindle_add_cli_commands(group=self)
        except SpindleError as exc:
            ctx.fail(f"No such command '{name}' (hook plugins could not be loaded: {exc}).")


#: Commands that only read metadata (no store, no run): logging is set up for them
#: only with -v, which keeps ``spindle plugins`` as fast as a listing should be.
_QUIET_COMMANDS = frozenset({"plugins", "schema"})


def make_cli() -> SpindleGroup:
    """Build the ``spindle`` group (a fresh one: tests use it to keep state apart)."""

    @click.group(
        cls=SpindleGroup,
        name="spindle",
        help=GROUP_HELP,
        context_settings={"help_option_names": HELP_OPTIONS},
    )
    @click.version_option(
        __version__, "--version", prog_name="spindle", message="%(prog)s %(version)s"
    )
    @click.option(
        "-v",
        "--verbose",
        "verbosity",
        count=True,
        help="Log more on stderr: -v adds INFO records, -vv DEBUG "
        "(warnings and errors are always shown); on a terminal, -v also prints a line "
        "per node (run commands) or per run (worker).",
    )
    @click.pass_context
    def spindle(ctx: click.Context, verbosity: int) -> None:
        """Set up logging on stderr for the subcommand that runs."""
        if not verbosity and ctx.invoked_subcommand in _QUIET_COMMANDS:
            return  # they log nothing by default: spare them importing logging
        import logging

        from spindle._cli._logging import configure_logging

        previous = configure_logging(verbosity)
        # Restored when the command ends, so one in-process invocation (CliRunner,
        # a host calling main()) does not leave its verbosity to the next.
        ctx.call_on_close(lambda: logging.getLogger("spindle").setLevel(previous))

    return spindle


#: The ``spindle`` command group.
cli = make_cli()
