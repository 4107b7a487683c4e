"""Write ``docs/workflow-reference.md`` and ``docs/plugins-reference.md``.

The reference is generated, never edited by hand: every field of every
built-in kind comes from the plugin classes themselves (attrs fields, their
defaults, and the ``Attributes:`` sections of their docstrings), through
:func:`spindle.core.workflow.workflow_schema` — the same schema ``spindle
schema`` prints. Only kinds shipped by the ``spindle`` distribution are
documented, whatever else is installed.

``docs/plugins-reference.md`` is ``spindle plugins --markdown --distribution
spindle``: each built-in kind of every group with its description and options.

Usage::

    python docs/gen_reference.py           # (re)write both pages
    python docs/gen_reference.py --check   # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from spindle._cli._markdown import schema_table
from spindle.core.errors import PluginError
from spindle.core.plugin import Registry
from spindle.core.workflow import WORKFLOW_GROUPS, workflow_schema

OUT = Path(__file__).with_name("workflow-reference.md")
PLUGINS_OUT = Path(__file__).with_name("plugins-reference.md")
DISTRIBUTION = "spindle"

_GROUP_TITLES = {"runtime": "Runtimes", "executor": "Executors", "effect": "Effects"}
_GROUP_INTRO = {
    "runtime": "A runtime prepares a task's payload: `runtime: {kind: ..., ...}` on a node.",
    "executor": "An executor runs the payload somewhere: `executor: {kind: ..., ...}` on a "
    "task node (default: the runtime's own choice).",
    "effect": "An effect is what a node asks of the engine instead of running a task: "
    "`effect: {kind: ..., ...}`. A wait's `key` is a template filled in when the node runs: "
    "`{inputs.NAME}` (a workflow input, not a secret), `{run.id}`, or `{NAME}` (one of the "
    "node's inputs); `{{` and `}}` are literal braces. It is checked when the workflow loads.",
}
_OBJECTS = {
    "node": ("Node", "Each entry of `nodes:`."),
    "retry": ("Retry", "A node's `retry:`."),
    "output": ("Output", "Each entry of a node's `outputs:`."),
    "input": ("Input", "Each entry of the workflow's `inputs:` when written as a mapping."),
}

_PATHS = [
    "## Paths",
    "",
    "A node's paths — `path` of its `file`, `folder` and `json` outputs, and its "
    "runtime's `cwd` — are relative to the run directory (`.spindle/runs/RUN_ID/` by "
    "default) and stay inside it, because an output file is copied into the artifact "
    "store and a working directory is where a command writes.",
    "",
    "- **When the workflow loads**, an absolute path, or one whose `..` climbs above the "
    "run directory (`../x`, `a/../../x`), is refused with the node and the field: "
    "`node 'x': output 'out' path '../../x' leaves the run directory (paths are relative "
    "to the run directory; a trusted workflow, run without a load policy, can allow this "
    "for the node with 'allow_outside_paths: true') @ nodes.x.outputs.out.path`. "
    "`a/../b` and `./b` are fine.",
    "- **When the node runs**, each path is resolved, symbolic links included, before the "
    "task starts and again when its outputs are collected. One that resolves outside the "
    "run directory — through a link the task or an earlier node left there — fails the "
    "node, and nothing is copied into the artifact store: `node 'x': output 'out' path "
    "'key.txt' resolves to /home/me/.ssh/id_ed25519, outside the run directory "
    "/work/.spindle/runs/RUN_ID (a symbolic link inside the run directory points out of "
    "it); refused`. A link to a file inside the run directory is an ordinary output.",
    "- **A trusted workflow** — your own file, run without a load policy — can let one "
    "node's paths leave the run directory with `allow_outside_paths: true` on that node "
    "(a shared folder, an absolute `cwd`). Its paths are then used as written, and an "
    "output file outside is copied into the artifact store like any other.",
    "- **Under a load policy** (`[policy]` in `spindle.toml`, `Engine(policy=...)`) the "
    "flag is refused when the workflow loads, with a `PolicyViolation` naming the node: "
    "`node 'x': 'allow_outside_paths' is refused by the load policy: under a policy every "
    "path stays inside the run directory (output 'out' path '/srv/x' is absolute); remove "
    "the flag and use paths relative to the run directory @ nodes.x.allow_outside_paths`. "
    "An engine with a policy does not honour the flag in a stored definition it resumes "
    "either.",
    "",
    "Paths are not templates: `{inputs.x}` in a path is taken literally. The check covers "
    "what spindle does with the paths a node declares (creating output folders, copying "
    "outputs, choosing the working directory); what a task's own code opens is limited by "
    "the kinds and executables the load policy allows.",
]


_CACHING = [
    "## Result caching",
    "",
    "Off by default. `cache:` on a task node (or at the top of the file, for every task node "
    "that sets none) makes a run reuse the result of a completed node of any run whose "
    "fingerprint matches, instead of running the node: `true`, `false` (opt out), or "
    "`{key, ttl, files}`.",
    "",
    "- **The fingerprint** is the SHA-256 of the runtime's configuration (its kind included), "
    "the declared outputs, the resolved inputs (for an upstream node's `file` output, the "
    "file's content rather than its path), the content of each file `files` lists, and `key`. "
    "The node's id, the workflow's name, `retry`, `timeout` and the run do not count.",
    "- **`files`**: the files the node reads from outside the run, relative to the workflow "
    "file's directory (or absolute): a changed file misses, an unchanged one hits. `key` and "
    "`files` are templates: `{inputs.NAME}` (a workflow input) and `{NAME}` (a node input).",
    "- **`ttl`**: how long a result is reused (`7d`, `12h`, `1d12h`); none: until `spindle "
    "cache clear` removes it.",
    "- A hit writes the node's `file` and `json` outputs into the run directory and records "
    "the reused result with a `cache` ledger record naming the source run and node, in one "
    "commit; `spindle show` says `cached from RUN/NODE`. A failed node is never kept.",
    "- Refused when the workflow loads: `cache` on an effect or control-flow node, on a node "
    "with a `folder` output, or on a node taking a secret input or whose runtime uses "
    "`{secrets.NAME}` (a fingerprint is stored and cannot tell secrets apart).",
    "",
    "See [caching](caching.md) for the whole story.",
]


def builtin_registry() -> tuple[Registry, list[str]]:
    """A registry of the kinds the spindle distribution ships, and the ones that failed."""
    installed = Registry()
    builtins = Registry(entry_points=False)
    failed: list[str] = []
    for group in WORKFLOW_GROUPS:
        for info in installed.kinds(group):
            if info.distribution != DISTRIBUTION:
                continue
            try:
                builtins.register(installed.get(group, info.kind), kind=info.kind, group=group)
            except PluginError as exc:
                failed.append(str(exc))
    return builtins, failed


def render(schema: dict[str, Any]) -> str:
    """The Markdown reference of ``schema``."""
    defs = schema["$defs"]
    out = [
        "# Workflow file reference",
        "",
        "<!-- Generated by docs/gen_reference.py from the JSON Schema of workflow files; "
        "do not edit. -->",
        "",
        "Every field a workflow file (YAML or JSON) may hold, for the kinds spindle ships. "
        "Third-party kinds add their own; `spindle schema` prints the JSON Schema of "
        "everything installed, for editors (`# yaml-language-server: $schema=...`).",
        "",
        'Unknown fields are errors, and values are never coerced: `"3"` is not an '
        "integer, `yes` is a string (YAML 1.2), a string is not a list.",
        "",
        "## Workflow",
        "",
        schema["description"],
        "",
        *_table(schema),
    ]
    for name, (title, intro) in _OBJECTS.items():
        out += ["", f"## {title}", "", intro, ""]
        if defs[name].get("description"):
            out += [defs[name]["description"], ""]
        if name == "node":
            out += [
                "A node has exactly one of `runtime`, `effect`, `workflow`, `branch`, `map` "
                "and `loop` (the last four are control flow: see `docs/control-flow.md`).",
                "",
            ]
        out += _table(defs[name])
        if name == "node":
            out += ["", *_CACHING]
        if name == "output":
            out += ["", *_PATHS]
    for group in WORKFLOW_GROUPS:
        out += ["", f"## {_GROUP_TITLES[group]}", "", _GROUP_INTRO[group]]
        kinds = [ref["$ref"].rsplit("/", 1)[1] for ref in defs[group]["oneOf"] if "$ref" in ref]
        for key in kinds:
            kind = defs[key]
            out += ["", f"### `{kind['title']}`", ""]
            if kind.get("description"):
                out += [kind["description"], ""]
            out += _table(kind, skip={"kind"})
    extra = sorted(
        set(defs)
        - set(_OBJECTS)
        - {"node_input", *WORKFLOW_GROUPS}
        - {k for k in defs if k.split(".", 1)[0] in WORKFLOW_GROUPS}
    )
    if extra:
        out += ["", "## Other objects"]
        for name in extra:
            out += ["", f"### {name}", ""]
            if defs[name].get("description"):
                out += [defs[name]["description"], ""]
            out += _table(defs[name])
    out += ["", *_limits()]
    return "\n".join(out) + "\n"


def _limits() -> list[str]:
    """The limits a file is loaded under, with the numbers the loader enforces."""
    from spindle.core.workflow._limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_TEXT, MAX_VALUES

    return [
        "## Limits",
        "",
        "A workflow file may come from elsewhere, so it is read under limits that keep a "
        "hostile file cheap to refuse; each refusal is one error naming the file (and line "
        "and column where there is one) and the limit.",
        "",
        "| limit | value |",
        "|---|---|",
        f"| file size | {MAX_FILE_BYTES:,} bytes (1 MiB); only a regular file is read "
        "(a directory, named pipe or device is refused) |",
        f"| nesting | {MAX_DEPTH} levels: the document is level 1, and a value inside a list "
        "or mapping is one level deeper than it |",
        f"| values | {MAX_VALUES:,} scalars, lists and mappings, each alias counted as "
        "what it stands for |",
        f"| text | {MAX_TEXT:,} characters of scalar text (4 MiB), aliases expanded |",
        "| aliases | an alias may not refer to the list or mapping it is inside |",
        "| NUL | no NUL character, raw or from an escape (`\\0`, `\\u0000`) |",
        "",
        "Aliases are counted as the file is read, each anchor once, so a file of nested "
        'aliases (a "billion laughs") is refused before anything expands it. An error '
        "quotes at most 200 characters of a value and says how long the whole was; at most "
        "50 problems are listed. A `subworkflow` or `handoff` that names a file "
        "(`.yaml`, `.yml`, `.json`, without a placeholder) is checked to exist, relative "
        "to the referring file's directory as at run time, when the referring file loads.",
        "",
        "### How a file is parsed",
        "",
        "YAML is parsed with libyaml, PyYAML's C parser, when PyYAML has it (its wheels do: "
        '`python -c "import yaml; print(yaml.__with_libyaml__)"`), and with PyYAML\'s '
        "pure-Python parser otherwise (eight or more times slower). Either way the file means "
        "the same: the same values (YAML 1.2 scalars), the same limits, the same line "
        "numbers and the same messages. A file libyaml would refuse is read again by the "
        "pure-Python parser, which words the error, and so is a file holding a tab, a "
        "byte-order mark past its start or a Unicode line separator, which the two parsers "
        "read differently; a file with merge keys (`<<`), tagged collections (`!!set`) "
        "or a key given twice is composed by libyaml and built by PyYAML's constructor. "
        "A JSON file is read with `json` when that gives what reading it as YAML gives "
        "(no key given twice, no `NaN`, within the limits), and as YAML otherwise; its "
        "problems carry line numbers either way (the lines are composed from YAML when "
        "there is a problem to place). `benchmarks/loading.py` measures it: a 1,000-node "
        "YAML file loads, is checked and hashed in about the time PyYAML's C loader "
        "takes only to parse it.",
    ]


def _table(obj: dict[str, Any], skip: Collection[str] = ()) -> list[str]:
    return schema_table(obj, skip, ref=_ref_label)


def _ref_label(name: str) -> str:
    """A ``$ref`` target as a link to its section of this page."""
    if name == "node_input":
        return "reference (`inputs.NAME`, `NODE`, `NODE.OUTPUT`) or `{value: ...}`"
    title = _OBJECTS.get(name, (_GROUP_TITLES.get(name, name),))[0]
    return f"[{name}](#{title.lower().replace(' ', '-')})"


def plugins_reference() -> str:
    """``spindle plugins --markdown`` for the kinds the spindle distribution ships.

    Only spindle's own kinds, so the committed page is the same on every
    machine; the docs site regenerates it with everything installed
    (``docs/_mkdocs_hooks.py``).
    """
    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "plugins", "--markdown", "--distribution", DISTRIBUTION],
        capture_output=True,
        text=True,
        cwd=OUT.parent,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"spindle plugins --markdown failed: {proc.stderr.strip()}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the references; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    parser.add_argument("--output", type=Path, default=OUT, help=f"default: {OUT}")
    parser.add_argument(
        "--plugins-output", type=Path, default=PLUGINS_OUT, help=f"default: {PLUGINS_OUT}"
    )
    args = parser.parse_args(argv)
    registry, failed = builtin_registry()
    for message in failed:
        print(f"error: a built-in kind cannot be loaded: {message}", file=sys.stderr)
    if failed:
        return 1
    pages = {
        args.output: render(workflow_schema(registry)),
        args.plugins_output: plugins_reference(),
    }
    stale = 0
    for path, text in pages.items():
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                print(f"{path} is out of date: run python docs/gen_reference.py", file=sys.stderr)
                stale += 1
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
