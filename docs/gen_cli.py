"""Write ``docs/cli.md`` from the ``spindle`` click commands.

The CLI reference is generated, never edited by hand: usage lines, help
text, arguments and options come from the click objects themselves, so the
page cannot drift from the code. Only the built-in commands are documented
(:data:`spindle.cli.BUILTIN_COMMANDS`), whatever plugins are installed, so
the output is the same on every machine. Exit codes are not visible to
click; they are listed in :data:`EXIT_CODES` below from the command
implementations (``src/spindle/_cli/``).

Usage::

    python docs/gen_cli.py           # (re)write docs/cli.md
    python docs/gen_cli.py --check   # exit 1 if docs/cli.md is out of date
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

import click

OUT = Path(__file__).with_name("cli.md")

#: Exit codes per command, as the implementations in ``spindle._cli`` return them.
EXIT_CODES: dict[str, list[tuple[str, str]]] = {
    "new-plugin": [
        ("0", "the package was written"),
        ("2", "an invalid name, an unknown kind, or a non-empty destination without `--force`"),
    ],
    "run": [
        ("0", "the run completed (with `--detach`: the run was recorded)"),
        ("1", "the run failed or was cancelled"),
        ("2", "usage or input error (bad file, unknown input, refused kind...)"),
        ("3", "the run is waiting (a person, an event, a timer, a child run)"),
        ("130", "interrupted with Ctrl-C; the run is recorded and resumable"),
    ],
    "resume": [
        ("0", "the run completed"),
        ("1", "the run failed or was cancelled"),
        ("2", "usage or input error (unknown run, wrong key, answer not among the choices...)"),
        ("3", "the run is waiting again"),
        ("130", "interrupted with Ctrl-C; resume again to continue"),
    ],
    "emit": [
        ("0", "the event was delivered to a waiting run, or kept in the inbox"),
        ("2", "usage or store error"),
    ],
    "cancel": [
        ("0", "the run was cancelled, or had already finished"),
        ("2", "unknown run, or usage or store error"),
    ],
    "runs": [("0", "the list was printed"), ("2", "usage or store error")],
    "show": [
        ("0", "the run completed"),
        ("1", "the run failed or was cancelled"),
        ("2", "unknown run, or usage or store error"),
        ("3", "the run is pending, running or waiting"),
    ],
    "ledger": [
        (
            "0",
            "the ledger was printed; `ledger verify`: the hash chain is intact, the ledger "
            "ends where its head says and the run's state matches its digest",
        ),
        (
            "1",
            "`ledger verify`: broken: a record changed (the first bad one is named), records "
            "removed from the end or added, or the run's stored state edited",
        ),
        (
            "2",
            "unknown run, or usage or store error; `ledger verify`: the ledger is keyed and "
            "`SPINDLE_LEDGER_KEY` is not set or holds another key",
        ),
    ],
    "logs": [
        ("0", "the output was printed (without `--follow`, whatever the run's status)"),
        ("1", "`--follow`: the run failed or was cancelled"),
        ("2", "unknown run or node, `--follow` with `--json`, or usage or store error"),
        ("3", "`--follow`: the run is waiting, or interrupted (its driver stopped)"),
        ("130", "`--follow` interrupted with Ctrl-C"),
    ],
    "worker": [
        ("0", "`--once` finished, or the worker was stopped with Ctrl-C"),
        ("2", "usage or store error"),
    ],
    "plugins": [
        ("0", "the listing was printed"),
        ("1", "`--check`: at least one kind cannot be loaded"),
        ("2", "invalid configuration (`spindle.toml`)"),
    ],
    "schema": [("0", "the schema was printed or written"), ("2", "usage error")],
    "schedule add": [
        ("0", "the schedule was kept"),
        (
            "2",
            "bad file, cron expression, time zone, catch-up rule or input; the id is "
            "taken (without `--replace`); or a store error",
        ),
    ],
    "schedule list": [("0", "the list was printed"), ("2", "usage or store error")],
    "schedule remove": [
        ("0", "the schedule was removed"),
        ("2", "no such schedule, or a store error"),
    ],
    "schedule pause": [
        ("0", "the schedule was paused"),
        ("2", "no such schedule, or a store error"),
    ],
    "schedule resume": [
        ("0", "the schedule was resumed"),
        ("2", "no such schedule, or a store error"),
    ],
}

#: Groups whose subcommands get a section each (``spindle schedule add``...).
SUBCOMMANDS = ("schedule",)


def _cell(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _help_text(text: str | None) -> str:
    """Click help as Markdown paragraphs (``\\b`` blocks kept verbatim)."""
    if not text:
        return ""
    out: list[str] = []
    for para in inspect.cleandoc(text).split("\n\n"):
        if para.startswith("\b\n"):
            out.append("```text\n" + para[2:] + "\n```")
        else:
            out.append(" ".join(para.split()))
    return "\n\n".join(out)


def load_command(name: str) -> click.Command:
    """Import the built-in command ``name`` (as ``spindle NAME`` would)."""
    from spindle.cli import BUILTIN_COMMANDS

    module_name, _, attr = BUILTIN_COMMANDS[name][0].partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, click.Command):
        raise TypeError(f"{module_name}:{attr} is not a click command")
    return obj


def render_command(name: str, cmd: click.Command, root: click.Context) -> str:
    """The Markdown section of one command."""
    ctx = click.Context(cmd, info_name=name, parent=root)
    usage = " ".join(["spindle", name, *cmd.collect_usage_pieces(ctx)])
    level = "###" if " " in name else "##"
    lines = [f"{level} `spindle {name}`", "", "```text", usage, "```", ""]
    help_text = _help_text(cmd.help)
    if help_text:
        lines += [help_text, ""]
    arguments = [p for p in cmd.get_params(ctx) if isinstance(p, click.Argument)]
    if arguments:
        lines += ["| Argument | Required |", "|---|---|"]
        for arg in arguments:
            lines.append(f"| `{arg.make_metavar(ctx)}` | {'yes' if arg.required else 'no'} |")
        lines.append("")
    options = [p for p in cmd.get_params(ctx) if isinstance(p, click.Option)]
    rows = []
    for opt in options:
        record = opt.get_help_record(ctx)
        if record is None:
            continue
        opts, text = record
        if not text and isinstance(opt.default, str):
            text = f"[default: {opt.default}]"
        rows.append(f"| `{_cell(opts)}` | {_cell(text)} |")
    if rows:
        lines += ["| Option | Description |", "|---|---|", *rows, ""]
    codes = EXIT_CODES.get(name)
    if codes:
        lines += ["Exit codes:", "", "| Code | Meaning |", "|---|---|"]
        lines += [f"| {code} | {_cell(meaning)} |" for code, meaning in codes]
        lines.append("")
    return "\n".join(lines)


def _group_options(group: click.Group, root: click.Context) -> list[str]:
    """The table of the options given before the command (``spindle -v run ...``)."""
    rows = []
    for opt in group.get_params(root):
        record = opt.get_help_record(root) if isinstance(opt, click.Option) else None
        if record is not None:
            rows.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
    if not rows:
        return []
    return [
        "Options of `spindle` itself, given before the command:",
        "",
        "| Option | Description |",
        "|---|---|",
        *rows,
        "",
    ]


def render() -> str:
    """The whole ``docs/cli.md``."""
    from spindle.cli import BUILTIN_COMMANDS, make_cli

    group = make_cli()
    # The group's context settings (``-h`` as a help option) reach every subcommand.
    root = click.Context(group, info_name="spindle", **group.context_settings)
    names = sorted(BUILTIN_COMMANDS)
    out = [
        "# CLI reference",
        "",
        "<!-- Generated by docs/gen_cli.py from the click commands; do not edit. -->",
        "",
        _help_text(group.help),
        "",
        "```text",
        "spindle [--version] [-h | --help] [-v | -vv] COMMAND [ARGS]...",
        "```",
        "",
        *_group_options(group, root),
        "Every command accepts `-h`/`--help`. Commands that touch runs take `--store URL`; "
        "without it the store comes from `SPINDLE_STORE`, `spindle.toml` "
        "(see [configuration](configuration.md)), or `sqlite:///.spindle/spindle.db`. "
        "`--json` prints one JSON document for scripts instead of text.",
        "",
        "Log records from spindle's loggers are printed on stderr as "
        "`LOGGER: LEVEL: message` (`spindle.engine: INFO: took over run ...`): warnings "
        "and errors always; `-v` adds INFO records (the settings file and store in use, "
        "lease takeovers), `-vv` DEBUG ones (such as the `timing` middleware's). The "
        "events of a configured `log` observer are shown without `-v` (see "
        "[configuration](configuration.md#observers-and-middleware)). Stdout carries only "
        "the command's output, so `--json` stays one JSON document.",
        "",
        "Progress of the commands that drive runs (`run`, `resume`, `retry`, `rerun`) "
        "goes to stderr. On a terminal it is one live line, redrawn a few times a "
        "second: a bar with done/total nodes of the run, the failed, retrying and "
        "waiting counts, the elapsed time and the nodes running now (`s12, s13 +5 "
        "more`; nodes of sub-workflow runs show there with the child's short id, and "
        "are not counted in done/total). When the run ends or suspends it becomes one "
        "summary line, `500/500 nodes · 0 failed · 3.2s` (plus `· 1 waiting` and the "
        "waits, or `· 2 not run` when a failure stopped the run). A failing node is "
        "printed as a line above it as it happens, with its error; `spindle -v` adds "
        "a line per node (`  NODE completed in 0.12s`). When stderr is not a terminal "
        "(a pipe, a file, CI) there is no live line: one plain line per node event, no "
        "control characters; `--quiet` and `--json` print no progress at all. "
        "`spindle worker` shows the runs it claimed, is running, finished "
        "and that failed the same way; piped, it prints `run ID claimed` and `run ID "
        "STATUS` (`run ID failed: ERROR`) lines.",
        "",
        "Exit codes shared by the run commands: **0** completed, **3** waiting, "
        "**1** failed or cancelled, **2** usage or input error (one `error: ...` line "
        "on stderr, no traceback).",
        "",
        "Installed plugins may add commands through the `spindle.cli` entry-point group "
        "(see [plugins](plugins.md#cli-commands)); they are listed by `spindle --help` "
        "but not here.",
        "",
        "| Command | Summary |",
        "|---|---|",
    ]
    out += [f"| [`{n}`](#spindle-{n}) | {_cell(BUILTIN_COMMANDS[n][1])} |" for n in names]
    out.append("")
    for name in names:
        cmd = load_command(name)
        out.append(render_command(name, cmd, root))
        if name in SUBCOMMANDS and isinstance(cmd, click.Group):
            for sub in sorted(cmd.commands):
                out.append(render_command(f"{name} {sub}", cmd.commands[sub], root))
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the CLI reference; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument(
        "--output", type=Path, default=OUT, help="where to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(
                f"{args.output} is out of date; regenerate it with: python docs/gen_cli.py",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
