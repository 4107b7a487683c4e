"""A griffe extension for the docs site: Sphinx roles in docstrings become cross-references.

spindle's docstrings are Google style with Sphinx roles for the objects they
mention (``:class:`~spindle.Registry```, ``:meth:`drive```), which read well
in an editor and in ``help()``. Markdown would show the role's name as text,
so before mkdocstrings renders a docstring each role is turned into an
optional cross-reference: a link when the site documents the object, its
name in code otherwise (a private module, a name the page does not show).
A name is resolved as Python would from where the docstring is
(``:meth:`drive``` on the object's class, ``:class:`Store``` through its
module's imports). Loaded by ``mkdocs.yml`` (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from griffe import Extension, Module, NameResolutionError, Object

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|exc|data|obj|const):`(?P<tilde>~?)(?P<text>[^`]+)`"
)
_TITLED = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^>]+)>$")


def _identifier(obj: Object, target: str) -> str:
    """The full path ``target`` names when written in ``obj``'s docstring.

    The first dotted part is looked up as Python would see it from ``obj``
    (its members, its class's, its module's imports); an absolute path or a
    name griffe cannot resolve is kept as written.
    """
    head, dot, rest = target.partition(".")
    try:
        path = f"{obj.resolve(head)}{dot}{rest}"
    except NameResolutionError:
        return target
    try:  # through re-exports (``spindle.core.model.QueueSpot``) to where it is defined
        found = obj.modules_collection[path]
        return str(found.final_target.path if found.is_alias else found.path)
    except Exception:  # not loaded, or an alias griffe cannot follow: keep the path
        return path


def cross_references(text: str, obj: Object) -> str:
    """``text`` with each Sphinx role replaced by an optional autorefs cross-reference."""

    def replace(m: re.Match[str]) -> str:
        target = m["text"].strip()
        title = None
        titled = _TITLED.match(target)
        if titled:
            title, target = titled["title"], titled["target"]
        target = target.removesuffix("()")
        if title is None:
            title = target.rsplit(".", 1)[-1] if m["tilde"] else target
        identifier = _identifier(obj, target)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return _ROLE.sub(replace, text)


def _objects(obj: Object) -> Iterator[Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


class SphinxRoles(Extension):
    """Rewrite the Sphinx roles of every docstring of a loaded package (see above)."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        """Called by griffe once ``pkg`` is loaded, so every name can be resolved."""
        for obj in _objects(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = cross_references(obj.docstring.value, obj)
