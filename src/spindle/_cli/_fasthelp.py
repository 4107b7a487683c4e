"""``spindle --help`` without importing click: click's own output, cached.

Importing click costs more than starting Python, so :func:`spindle.cli.main`
answers ``--help`` from a cache of the text click rendered the last time. The
cache key is everything that text depends on: the spindle version, the help
width, the group's help and options (the mtime of the module defining them)
and the command list — built-in names and one-line helps, and the
``spindle.cli`` entry points read from metadata. Installing a CLI plugin or
resizing the terminal changes the key, so the next ``--help`` is rendered by
click again and cached.

Only the standard library and :mod:`spindle.core.plugin._discovery` are imported.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Container

from spindle._version import __version__
from spindle.core.plugin import discover
from spindle.core.plugin._discovery import cache_dir, write_atomic

__all__ = ["cli_entry_points", "help_key", "lookup", "store", "terminal_width"]

_FORMAT = 1
_KEEP = 8  # rendered texts kept (terminal widths, virtualenvs)


def cli_entry_points(builtin: Container[str] = ()) -> dict[str, str]:
    """Commands of the ``spindle.cli`` entry-point group, ``name -> distribution``.

    Names in ``builtin`` are left out (a plugin cannot replace a built-in);
    of two distributions declaring one name, the first on ``sys.path`` wins.
    """
    found: dict[str, str] = {}
    for ep in discover():
        if ep.group == "cli" and ep.kind not in builtin:
            found.setdefault(ep.kind, ep.distribution)
    return found


def terminal_width(max_width: int = 80) -> int:
    """The width click formats help to (``shutil.get_terminal_size`` without shutil)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, max_width) - 2, 50)


def help_key(group_help: str, commands: dict[str, tuple[str, str]]) -> str:
    """The cache key of the top-level help: every input of the rendered text."""
    rows = {name: short for name, (_, short) in commands.items()}
    for name, dist in cli_entry_points(commands).items():
        rows[name] = f"(from {dist})"
    group_module = os.path.join(os.path.dirname(__file__), "_group.py")
    try:
        mtime = os.stat(group_module).st_mtime_ns
    except OSError:
        mtime = -1
    return json.dumps(
        [_FORMAT, __version__, terminal_width(), mtime, group_help, sorted(rows.items())],
        separators=(",", ":"),
    )


def _path() -> str:
    return os.path.join(cache_dir(), "cli-help.json")


def _entries() -> list[list[str]]:
    try:
        with open(_path(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [
        e
        for e in data
        if isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)
    ]


def lookup(key: str) -> str | None:
    """The help text cached under ``key``, or None."""
    for cached_key, text in _entries():
        if cached_key == key:
            return text
    return None


def store(key: str, text: str) -> None:
    """Keep ``text`` under ``key`` (most recent first; a few keys are kept)."""
    kept = [e for e in _entries() if e[0] != key][: _KEEP - 1]
    write_atomic(_path(), json.dumps([[key, text], *kept], separators=(",", ":")))
