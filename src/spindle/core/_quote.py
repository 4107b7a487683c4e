"""Quoting user values in error messages, shortened so a message stays readable.

A message that quotes what the user gave (``got list [...]``) helps only
while it fits on a screen: a value from a hostile or generated file can be
megabytes long, and printing it whole turns one error into a flood. Every
message that quotes a value routes it through :func:`quote`, which keeps the
first :data:`QUOTE_LIMIT` characters of its ``repr`` and says how long the
whole was.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QUOTE_LIMIT", "quote"]

#: How many characters of a value's ``repr`` an error message shows.
QUOTE_LIMIT = 200


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...`` and the full length.

    Example::

        >>> quote("x" * 1000, limit=10)
        "'xxxxxxxx... (1002 characters)"
    """
    try:
        text = repr(value)
    except RecursionError:  # a self-referencing structure built in Python
        return f"<{type(value).__name__} nested too deeply to show>"
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}... ({len(text)} characters)"
