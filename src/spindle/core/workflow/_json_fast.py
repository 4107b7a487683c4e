"""Reading a JSON workflow file with :mod:`json`, with the same result as reading it as YAML.

A ``.json`` file is read as YAML, so that the problems found in it carry line
numbers, and with :func:`json.loads` only when YAML cannot read it (JSON
indented with tabs). Parsing is what the line numbers cost, and they are only
wanted when there is a problem to place: so :func:`parse_json_fast` reads the
text with :func:`json.loads` first, and the caller composes the lines from
YAML only when a problem is to be placed.

It returns nothing (and the caller reads the text as YAML, as before) for
whatever JSON and YAML would read differently or the YAML loader would
refuse: a key given twice (json keeps the last, YAML reports it), ``NaN`` and
``Infinity`` (YAML reads them as strings), an escaped surrogate pair (YAML
keeps its halves), NEL or a Unicode line separator (YAML folds them as line
breaks), a NUL character, more nesting or values than the limits allow, and
anything :func:`json.loads` refuses.
"""

from __future__ import annotations

import json
import re
from typing import Any

from spindle.core.workflow._limits import MAX_DEPTH, MAX_VALUES

__all__ = ["USE_JSON", "parse_json_fast"]

#: Read JSON files with json first; tests set it False to read them as YAML only.
USE_JSON = True

# An escaped surrogate (YAML keeps each half of a pair), and the line breaks
# YAML folds inside a string that JSON keeps as characters (NEL, U+2028, U+2029).
_DIFFERENT = re.compile(r"\\u[dD][89abAB]|[\x85\u2028\u2029]")


class _Refuse(Exception):
    """The YAML loader must read this text."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _Refuse  # a key given twice: the YAML loader's walk words it
    return mapping


def _constant(name: str) -> Any:
    raise _Refuse  # NaN, Infinity: strings to YAML


def parse_json_fast(text: str) -> tuple[bool, Any]:
    """Read ``text`` with :func:`json.loads` if that gives what reading it as YAML gives.

    Returns ``(True, data)``, or ``(False, None)``: read it as YAML.
    """
    if not USE_JSON or _DIFFERENT.search(text):
        return False, None
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except (_Refuse, ValueError, RecursionError):
        return False, None
    if not _within_limits(data):
        return False, None
    return True, data


def _within_limits(data: Any) -> bool:
    """Depth, values and NUL as the YAML loader counts them (JSON has no aliases; its
    text is never longer than the file, so never over the text limit)."""
    values = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        values += 1
        if type(item) is str:
            if "\0" in item:
                return False
        elif type(item) is dict:
            if depth >= MAX_DEPTH and item:
                return False
            for k, v in item.items():
                if "\0" in k:
                    return False
                values += 1
                stack.append((v, depth + 1))
        elif type(item) is list:
            if depth >= MAX_DEPTH and item:
                return False
            stack.extend((v, depth + 1) for v in item)
    return values <= MAX_VALUES
