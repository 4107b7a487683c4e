"""What ``spindle new-plugin`` writes: the files of a plugin package, as text.

:func:`plan` returns every file of the package ``spindle-NAME`` (module
``spindle_NAME``, ``src`` layout) for the chosen kinds; :func:`write` puts
them in a directory. The kinds' modules and tests come from
:mod:`spindle._cli._scaffold_src` and :mod:`spindle._cli._scaffold_tests`.
Standard library only: the command imports nothing of the engine.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from spindle._cli._scaffold_src import CLASSES, SOURCES
from spindle._cli._scaffold_tests import TESTS
from spindle.core.plugin import GROUPS

__all__ = ["KINDS", "check_name", "plan", "write"]

#: Every kind ``--kind`` takes, in the order the package lists them: every
#: plugin group but ``cli`` (a command is added to a package by hand).
KINDS: tuple[str, ...] = tuple(group for group in GROUPS if group != "cli")

_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")

_WHAT = {
    "runtime": "a runtime (prepares a Python call)",
    "executor": "an executor (runs Python calls on a thread)",
    "effect": "an effect handler (waits for a yes/no answer)",
    "store": "a store (starts as the in-memory store, under its own URL scheme)",
    "observer": "an observer (appends lifecycle events to a JSON-lines file)",
    "middleware": "a middleware (a layer around every node)",
    "hooks": "a hook module (labels how each run ended)",
}

_USE = {
    "runtime": "nodes:\n  hello:\n    runtime: {kind: @@name@@, greeting: hi}\n"
    "    inputs: {text: inputs.who}",
    "executor": "nodes:\n  work:\n    runtime: {kind: python, function: 'mymodule:work'}\n"
    "    executor: {kind: @@name@@}",
    "effect": "nodes:\n  approve:\n    effect: {kind: @@name@@, prompt: 'ship it?'}",
    "store": '# spindle.toml\nstore = "@@name@@://"',
    "observer": '# spindle.toml\n[[observers]]\nkind = "@@name@@"\npath = "events.jsonl"',
    "middleware": '# spindle.toml\n[[middleware]]\nkind = "@@name@@"\nprefix = "> "',
    "hooks": "# active in every engine once the package is installed",
}


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a plugin, or None when it can."""
    if not _NAME.fullmatch(name):
        return (
            f"plugin name {name!r} is not valid: use lower-case letters and digits, words "
            f"joined by single underscores, starting with a letter (e.g. 'acme' or "
            f"'acme_cloud'); it becomes the kind name, the module spindle_NAME and the "
            f"distribution spindle-NAME"
        )
    if keyword.iskeyword(name):
        return f"plugin name {name!r} is a Python keyword; choose another name"
    return None


def _fill(text: str, name: str) -> str:
    camel = "".join(part.capitalize() for part in name.split("_"))
    return text.replace("@@name@@", name).replace("@@Camel@@", camel)


def _pyproject(name: str, kinds: Iterable[str], version: str) -> str:
    lines = [
        "[build-system]",
        'requires = ["setuptools>=68"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "spindle-{name}"',
        'version = "0.1.0"',
        f'description = "A spindle plugin: {name}."',
        'readme = "README.md"',
        'requires-python = ">=3.11"',
        f'dependencies = ["spindle>={version}"]',
        "",
        "[project.optional-dependencies]",
        'test = ["pytest", "hypothesis"]',
        "",
        "# The entry-point NAME is the kind users write (`kind: NAME`); the value is module:Class.",
    ]
    for kind in kinds:
        value = f"spindle_{name}.{kind}" + (f":{CLASSES[kind]}" if kind in CLASSES else "")
        lines += [
            "",
            f'[project.entry-points."spindle.{kind}"]',
            f'{name} = "{_fill(value, name)}"',
        ]
    lines += [
        "",
        "[tool.setuptools.packages.find]",
        'where = ["src"]',
        "",
        "[tool.pytest.ini_options]",
        'testpaths = ["tests"]',
        'filterwarnings = ["error"]',
        "# Other installed packages' hook modules stay out of these tests.",
        'usefixtures = ["spindle_no_installed_hooks"]',
        "",
        "[tool.ruff]",
        "line-length = 100",
        'src = ["src", "tests"]',
    ]
    return "\n".join(lines) + "\n"


def _init(name: str, kinds: list[str]) -> str:
    # Nothing is imported here: each entry point names its own module, so using
    # one kind imports only that kind's module (spindle loads plugins lazily).
    lines = "".join(f"- ``spindle_{name}.{kind}``: {_WHAT[kind]}.\n" for kind in kinds)
    return f'"""spindle-{name}: a spindle plugin.\n\n{lines}"""\n'


def _readme(name: str, kinds: list[str]) -> str:
    rows = "".join(
        f"- `{kind}` `{name}`: {_WHAT[kind]}, in `src/spindle_{name}/{kind}.py`\n" for kind in kinds
    )
    uses = "\n\n".join(f"```yaml\n{_fill(_USE[k], name)}\n```" for k in kinds)
    return f"""# spindle-{name}

A spindle plugin, generated by `spindle new-plugin {name}`.
It adds these kinds (each a small working example to edit into the real thing):

{rows}
Each is declared under a `spindle.*` entry point in `pyproject.toml`; installing
the package is all it takes for spindle to find it:

```console
pip install -e '.[test]'
spindle plugins --check     # lists the kinds, imported and checked
pytest                      # the tests pass as generated
```

## Use

{uses}

## Test

`tests/` uses spindle's pytest plugin (`spindle.testing`, active once spindle is
installed): `run_workflow` runs a workflow on `memory://` with your kinds
registered and returns the run's status, output and each node's result;
`make_task_context` / `make_effect_context` build the contexts that
`_setup_runtime` and `handle()` receive; a store subclasses `StoreContract`, the
store contract suite spindle's own stores pass. `usefixtures =
["spindle_no_installed_hooks"]` keeps other packages' hook modules out.
See spindle's "Writing plugins" guide for every kind's contract.
"""


def plan(name: str, kinds: Iterable[str], *, version: str) -> dict[str, str]:
    """Every file of the package for ``name`` and ``kinds``: ``{relative path: text}``.

    Raises:
        ValueError: ``name`` is not a valid plugin name or a kind is unknown.
    """
    problem = check_name(name)
    if problem:
        raise ValueError(problem)
    chosen = [k for k in KINDS if k in set(kinds)]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not chosen:
        raise ValueError(f"unknown kind {', '.join(unknown) or '(none)'}; use {', '.join(KINDS)}")
    package = f"src/spindle_{name}"
    files = {
        "pyproject.toml": _pyproject(name, chosen, version),
        "README.md": _readme(name, chosen),
        f"{package}/__init__.py": _init(name, chosen),
        f"{package}/py.typed": "",
    }
    for kind in chosen:
        files[f"{package}/{kind}.py"] = _fill(SOURCES[kind], name)
        files[f"tests/test_{kind}.py"] = _fill(TESTS[kind], name)
    return files


def write(dest: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` under ``dest`` (creating directories); return the paths written."""
    written = []
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
