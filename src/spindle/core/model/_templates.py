"""``{placeholder}`` templates: parsed once into literal text and dotted names.

Command lines (``{inputs.x}``, shell-quoted by the ``command`` runtime) and
wait keys (``order-{inputs.order}-paid``, filled in by the engine) share this
syntax: ``{dotted.name}`` is a placeholder, ``{{`` and ``}}`` are literal
braces, and any other brace is an error that says how to write it. What a
placeholder may name, and how its value is written, is the caller's business.
"""

from __future__ import annotations

import json
import re
from os import PathLike
from typing import Any

from attrs import define

__all__ = ["Placeholder", "TemplateError", "parse_template", "value_text"]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*\Z")


class TemplateError(ValueError):
    """A template is malformed (an unmatched brace, an empty or odd placeholder)."""


@define(frozen=True)
class Placeholder:
    """One ``{dotted.name}`` in a template: its text as written and its name's parts."""

    text: str
    parts: tuple[str, ...]


def parse_template(source: str, what: str) -> tuple[str | Placeholder, ...]:
    """Split ``source`` into literal strings and placeholders, in order.

    Adjacent literal text is joined and ``{{``/``}}`` become one brace, so the
    items alternate between text and placeholders. ``what`` names the template
    in error messages ("command", "wait key").

    Raises:
        TemplateError: a brace is unmatched, or a placeholder is not a dotted name.
    """
    items: list[str | Placeholder] = []
    literal: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(source):
        literal.append(source[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        if m.group(1) is None:
            raise TemplateError(
                f"unmatched '{token}' at position {m.start() + 1} in {what}; "
                f"write '{token}{token}' for a literal brace"
            )
        name = m.group(1)
        if not _NAME.match(name):
            raise TemplateError(
                f"malformed placeholder '{token}' in {what}; placeholders are dotted "
                f"names like '{{inputs.x}}' (write '{{{{' and '}}}}' for literal braces)"
            )
        if text := "".join(literal):
            items.append(text)
        literal = []
        items.append(Placeholder(token, tuple(name.split("."))))
    if text := "".join([*literal, source[pos:]]):
        items.append(text)
    return tuple(items)


def value_text(value: Any) -> str:
    """How a value reads where a placeholder stood.

    Strings and paths as they are, numbers in decimal, booleans as
    ``true``/``false``, None as an empty string; anything else (lists,
    mappings) as compact JSON.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | PathLike):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), default=str)
