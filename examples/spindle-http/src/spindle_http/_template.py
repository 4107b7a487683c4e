"""``{placeholders}`` in the ``http`` runtime's URL, headers and body.

=====================  =========================================================
``{inputs.NAME}``      the node's input ``NAME``, else the workflow input ``NAME``
``{secrets.NAME}``     the workflow input ``NAME`` (declare it ``secret: true``)
``{NAME}``             the node's input ``NAME`` (``{NAME.KEY.KEY}``: a value inside it)
``{run.id}``           the run id
``{task.name}``        the node id
=====================  =========================================================

``{{`` and ``}}`` are literal braces. In a URL every substituted value is
percent-encoded, so an input can never add a path segment, a query
parameter or another host — except a placeholder that starts the URL
(``{inputs.base}/items``), which is the base URL itself and is inserted as
it is. Elsewhere a value is inserted as text (one that is not a string, as
JSON).
"""

from __future__ import annotations

import json
import string
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from attrs import define

__all__ = ["Template", "TemplateError", "dig", "lookup", "url_quote"]

_FIXED = ("run.id", "task.name")


class TemplateError(ValueError):
    """A template is malformed (an unbalanced brace, a format spec)."""


@define(frozen=True)
class Template:
    """A parsed template: literal text and placeholder names, in order."""

    text: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse ``text``; raise :class:`TemplateError` naming what is wrong."""
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(
                f"malformed template {text!r}: {exc}; write {{{{ and }}}} for literal braces"
            ) from None
        parts: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is not None and (spec or conversion):
                raise TemplateError(
                    f"placeholder '{{{name}}}' in {text!r} has a format spec or conversion; "
                    f"write just {{NAME}}"
                )
            if name == "":
                raise TemplateError(f"empty placeholder '{{}}' in {text!r}; name a value")
            parts.append((literal, name))
        return cls(text, tuple(parts))

    @property
    def names(self) -> list[str]:
        """The placeholder names, in order."""
        return [name for _, name in self.parts if name is not None]

    def problems(self, node_inputs: set[str], workflow_inputs: set[str]) -> list[str]:
        """One line per placeholder that names nothing the node can have."""
        known = sorted(
            {*_FIXED, *node_inputs, *(f"inputs.{n}" for n in {*node_inputs, *workflow_inputs})}
            | {f"secrets.{n}" for n in workflow_inputs}
        )
        return [
            f"unknown placeholder '{{{name}}}' in {self.text!r}; available: {', '.join(known)}"
            for name in self.names
            if name not in known and name.split(".", 1)[0] not in node_inputs
        ]

    def render(
        self,
        values: Mapping[str, Any],
        *,
        quote: Callable[[str], str] = str,
        quote_first: bool = True,
    ) -> str:
        """The text with every placeholder replaced by ``quote(value as text)``;
        with ``quote_first=False`` a placeholder that starts the text is not quoted."""
        out = []
        for i, (literal, name) in enumerate(self.parts):
            out.append(literal)
            if name is not None:
                text = _text(lookup(values, name))
                starts = i == 0 and not literal
                out.append(text if starts and not quote_first else quote(text))
        return "".join(out)

    def value(self, values: Mapping[str, Any]) -> Any:
        """Like :meth:`render`, but a template that is one placeholder alone gives the
        value itself (a number stays a number in a JSON body)."""
        if len(self.parts) == 1 and self.parts[0][0] == "" and self.parts[0][1] is not None:
            return lookup(values, self.parts[0][1])
        return self.render(values)


def lookup(values: Mapping[str, Any], name: str) -> Any:
    """The value ``name`` stands for: a known name, or a dotted path into a node input."""
    if name in values:
        return values[name]
    head, *path = name.split(".")
    return dig(values[head], path, head)


def dig(value: Any, path: list[str], label: str) -> Any:
    """``value[path[0]][path[1]]...`` (list items by index); ``KeyError`` saying which
    key is missing where, with a short view of what is there."""
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            shown = _text(value)
            shown = shown if len(shown) <= 120 else shown[:120] + "..."
            raise KeyError(f"no {key!r} in {label} ({shown})")
        label = f"{label}.{key}"
    return value


def url_quote(text: str) -> str:
    """Percent-encode ``text`` so that it stays one path segment or query value."""
    return urllib.parse.quote(text, safe="")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
