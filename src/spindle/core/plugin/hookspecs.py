"""Engine hook specifications (pluggy).

Implement any of these in a module and load it through the ``spindle.hooks``
entry-point group, the ``hooks = ["module"]`` config key, or
``Engine(hooks=[module])``. Every hook is called with keyword arguments. A
misspelled implementation is caught at start-up: an installed module with
one is skipped with a warning, a module named in config or code fails with
``PluginLoadError`` (see ``docs/hooks.md``, "Broken hook modules").

Import the marker as ``from spindle import hookimpl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from spindle.core.config import Settings
    from spindle.core.engine import FinishingRun
    from spindle.core.model import UnsettledWork
    from spindle.core.plugin._registry import Registry
    from spindle.core.workflow import NodeSpec

PROJECT = "spindle"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- start-up -------------------------------------------------------------------


@hookspec(historic=True)
def spindle_configure(config: Settings) -> None:
    """Called once when an engine is built, with the settings it was built from.

    Historic: a plugin registered later still receives the call. A plugin may
    read the settings and set itself up; it must not replace them.
    """


@hookspec
def spindle_register_kinds(registry: Registry) -> None:
    """Called when an engine is built, before it loads any workflow definition.

    Register extra kinds with ``registry.register(cls)`` — for kinds that are
    generated at run time or should not be separate entry points.
    """


@hookspec
def spindle_add_cli_commands(group: click.Group) -> None:
    """Called when the ``spindle`` command group is built for a subcommand.

    Add commands with ``group.add_command(cmd)``. Prefer the ``spindle.cli``
    entry-point group for plain commands: it is lazy and keeps ``--help`` fast.
    """


# --- running tasks --------------------------------------------------------------


@hookspec(firstresult=True)
def spindle_select_executor(node: NodeSpec, payload: Any) -> str | None:
    """Called before a task runs when its node names no executor.

    firstresult: the first implementation returning an executor kind name
    wins; return None to leave the choice to the runtime's default.
    """


# --- finishing runs ---------------------------------------------------------------


@hookspec
def spindle_on_finish(run: FinishingRun, output: Any, unsettled: UnsettledWork) -> Any:
    """Called when a run has no node left to run, before its final status is saved.

    Implementations are called one after another (pluggy order: last
    registered first); each receives the output as the previous one left it.
    Return a value to replace the output (``None`` keeps it). Through ``run``
    an implementation may write audit entries (``run.audit(...)``), hand the
    output to another workflow (``run.handoff(target, payload)``) and set the
    final disposition (``run.set_disposition(...)``). An exception fails the
    run with the implementation's name in the error; nothing already recorded
    is cleared.
    """
