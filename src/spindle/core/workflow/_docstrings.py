"""Descriptions read from docstrings, for the workflow JSON Schema.

A plugin's or an attrs class's description is the first paragraph of its
docstring; a field's comes from a Google-style ``Attributes:`` (or ``Args:``,
``Options:``, ``Fields:``) section anywhere along the MRO. reST double-backtick
literals become the single backticks editors and Markdown show.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = ["attribute_docs", "class_summary", "markdown"]


def class_summary(cls: Any) -> str:
    """The first paragraph of a class docstring, on one line."""
    doc = inspect.getdoc(cls) or ""
    if not cls.__dict__.get("__doc__"):
        return ""  # inherited docstrings describe the base, not this class
    return " ".join(doc.split("\n\n", 1)[0].split())


_ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")


def markdown(text: str) -> str:
    """Turn reST literals and Sphinx roles into the single-backtick code Markdown shows.

    A double-backtick literal keeps its text; a role (``:attr:`stats```) keeps
    its target, or with ``~`` (``:class:`~spindle.Registry```) its last name.
    """
    text = _ROLE.sub(lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)
    return re.sub(r"``(.+?)``", r"`\1`", text)


_SECTION = re.compile(r"^(Attributes|Args|Options|Fields):\s*$")
_ENTRY = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def attribute_docs(cls: Any) -> dict[str, str]:
    """Field descriptions from Google-style ``Attributes:`` sections along the MRO."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__")
        if isinstance(doc, str):
            out.update(_parse_attributes(inspect.cleandoc(doc)))
    return out


def _parse_attributes(doc: str) -> dict[str, str]:
    out: dict[str, str] = {}
    in_section = False
    current: str | None = None
    entry_indent = -1
    for line in doc.splitlines():
        if _SECTION.match(line.strip()) and not line.startswith(" "):
            in_section, current, entry_indent = True, None, -1
            continue
        if not in_section:
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_section, current = False, None
            continue
        match = _ENTRY.match(line.strip())
        if match and (entry_indent < 0 or indent <= entry_indent):
            entry_indent = indent
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out
