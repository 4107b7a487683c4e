"""The table of built-in ``spindle`` subcommands and the top-level help text.

Both the front door (:mod:`spindle.cli`, which must not import click) and
the click group (:mod:`spindle._cli._group`) read it, so it lives apart from
both. Standard library only.
"""

from __future__ import annotations

__all__ = ["BUILTIN_COMMANDS", "GROUP_HELP", "HELP_OPTIONS"]

#: name -> ("module:attr", one-line help); the help is shown without importing.
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("spindle._cli.runs:run", "Start a run of a workflow file."),
    "resume": ("spindle._cli.runs:resume", "Answer a wait, or continue an interrupted run."),
    "emit": ("spindle._cli.runs:emit", "Deliver an event to the runs waiting for it."),
    "cancel": ("spindle._cli.runs:cancel", "Cancel a run and its sub-workflows."),
    "retry": ("spindle._cli.rerun:retry", "Continue a failed or cancelled run."),
    "rerun": ("spindle._cli.rerun:rerun", "Run a run again from a node, in a new run."),
    "runs": ("spindle._cli.runs:runs", "List runs."),
    "show": ("spindle._cli.runs:show", "Show a run: status, waits, output, error."),
    "ledger": ("spindle._cli.runs:ledger", "Print a run's ledger; 'ledger verify' checks it."),
    "logs": ("spindle._cli.logs:logs", "Print what a run's nodes printed and raised (-f follows)."),
    "audit": ("spindle._cli.audit:audit", "Show a run's audit trail, disposition and handoffs."),
    "worker": ("spindle._cli.worker:worker", "Claim and drive runnable runs from a store."),
    "schedule": (
        "spindle._cli.schedule:schedule",
        "Start workflows on cron schedules (add, list, pause, remove).",
    ),
    "workers": ("spindle._cli.work:workers", "List live workers and the runs they hold."),
    "queue": (
        "spindle._cli.work:queue",
        "Show or change queue limits ('queue set', 'queue list').",
    ),
    "prune": ("spindle._cli.prune:prune", "Delete finished runs older than a duration."),
    "plugins": (
        "spindle._cli.plugins:plugins",
        "List installed plugin kinds (--check loads them).",
    ),
    "schema": ("spindle._cli.schema:schema", "Print the JSON Schema of every installed kind."),
    "db": ("spindle._cli.db:db", "A store's schema version; 'db upgrade' migrates it."),
    "cache": ("spindle._cli.cache:cache", "List or clear cached node results ('cache clear')."),
    "new-plugin": (
        "spindle._cli.new_plugin:new_plugin",
        "Write a new plugin package.",
    ),
}

#: The top-level help text.
GROUP_HELP = """spindle: durable, plugin-based workflow runs.

Every step of a run is recorded, so a run survives a crash, can wait for a
person or an event, and resumes exactly where it stopped.
"""

HELP_OPTIONS = ["-h", "--help"]
