"""Where a setting came from, to point an error at the file line, variable or flag.

``load_settings`` reads the TOML with :mod:`tomllib`, which gives no line
numbers; a problem found while structuring the settings names a key path,
so the file's text is scanned line by line (no value parsing) for where
each key path is defined.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Origins", "locate"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_QUOTED_KEY = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'")


def _split_key(text: str) -> list[str] | None:
    """Split a TOML key (``a."b.c".d``) into its parts; None if it is not a key."""
    parts: list[str] = []
    rest = text.strip()
    while True:
        quoted = _QUOTED_KEY.match(rest)
        bare = _BARE_KEY.match(rest)
        if quoted:
            parts.append(quoted.group(1) if quoted.group(1) is not None else quoted.group(2))
            rest = rest[quoted.end() :].lstrip()
        elif bare:
            parts.append(bare.group())
            rest = rest[bare.end() :].lstrip()
        else:
            return None
        if not rest:
            return parts
        if rest[0] != ".":
            return None
        rest = rest[1:].lstrip()


def _assignment_key(line: str) -> str | None:
    """The key of a ``key = value`` line (the text before the first unquoted ``=``)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:i]
    return None


def _key_lines(text: str, prefix: tuple[str, ...]) -> dict[tuple[str, ...], int]:
    """Map each key path defined in TOML ``text`` under ``prefix`` to its first line.

    Best effort, line by line (no value parsing): every table header and
    ``key = value`` line registers its full path and each path prefix, so a
    problem deep inside a value still finds the line of its nearest key.
    Arrays of tables (``[[observers]]``) register their index too.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            parts = _split_key(stripped[2 : stripped.find("]]")])
            if parts is None:
                continue
            index = counts.get(tuple(parts), 0)
            counts[tuple(parts)] = index + 1
            full = table = (*parts, str(index))
        elif stripped.startswith("["):
            parts = _split_key(stripped[1 : stripped.find("]")])
            if parts is None:
                continue
            full = table = tuple(parts)
        else:
            key = _assignment_key(stripped)
            parts = _split_key(key) if key is not None else None
            if parts is None:
                continue
            full = (*table, *parts)
        if full[: len(prefix)] != prefix:
            continue
        relative = full[len(prefix) :]
        for n in range(1, len(relative) + 1):
            lines.setdefault(relative[:n], number)
    return lines


def locate(data: Any, dotted: str) -> tuple[str, ...]:
    """Split a dotted problem path into real keys, using ``data`` for keys with dots."""
    parts = dotted.split(".") if dotted else []
    out: list[str] = []
    node = data
    i = 0
    while i < len(parts):
        if isinstance(node, dict):
            for j in range(len(parts), i, -1):
                key = ".".join(parts[i:j])
                if key in node:
                    out.append(key)
                    node = node[key]
                    i = j
                    break
            else:  # a key the data does not have (an unknown field's parent is known)
                out.append(parts[i])
                node = None
                i += 1
        elif isinstance(node, list) and parts[i].isdigit() and int(parts[i]) < len(node):
            out.append(parts[i])
            node = node[int(parts[i])]
            i += 1
        else:
            out.extend(parts[i:])
            break
    return tuple(out)


def _render_key(keys: tuple[str, ...]) -> str:
    return ".".join(k if _BARE_KEY.fullmatch(k) else f'"{k}"' for k in keys)


class Origins:
    """Where each top-level setting came from, to point an error at the right place."""

    def __init__(self, source: str | None, text: str, section: str | None) -> None:
        self.source = source
        self.prefix = tuple(section.split(".")) if section else ()
        self.lines = _key_lines(text, self.prefix) if text else {}
        self.by_key: dict[str, str] = {}

    def where(self, keys: tuple[str, ...]) -> tuple[str, str]:
        """``(place, shown path)``: ``file:line`` / ``environment variable X`` / ``override``."""
        origin = self.by_key.get(keys[0], "file") if keys else "file"
        if origin != "file" or self.source is None:
            return (origin if origin != "file" else "settings"), _render_key(keys)
        for n in range(len(keys), 0, -1):
            line = self.lines.get(keys[:n])
            if line is not None:
                return f"{self.source}:{line}", _render_key((*self.prefix, *keys))
        return self.source, _render_key((*self.prefix, *keys))
