"""Which registry plugin configuration is structured against, in this context.

Structuring ``{"kind": "command", ...}`` into a :class:`~spindle.Runtime`
needs a registry to look ``command`` up in. :func:`using_registry` sets it
for a block (``Registry.create`` and ``Workflow.from_dict`` do); outside such
a block the process-wide default registry is used once it exists.

This module is on the path of ``spindle plugins``: standard library only.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

from spindle.core.errors import SpindleError

if TYPE_CHECKING:
    from spindle.core.plugin._registry import Registry

__all__ = ["active_registry", "default", "set_default_registry", "using_registry"]

_active: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "spindle_registry", default=None
)
_default: list[Registry] = []


@contextlib.contextmanager
def using_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the one plugin unions resolve kinds against, in this context."""
    token = _active.set(registry)
    try:
        yield registry
    finally:
        _active.reset(token)


def set_default_registry(registry: Registry | None) -> None:
    """Record (or, with None, forget) the process-wide default registry."""
    _default[:] = [] if registry is None else [registry]


def default() -> Registry | None:
    """The process-wide default registry, if one was created."""
    return _default[0] if _default else None


def active_registry() -> Registry:
    """The registry in force: the one :func:`using_registry` set, else the default.

    Raises:
        SpindleError: neither exists (no registry was ever created in this process).
    """
    registry = _active.get()
    if registry is not None:
        return registry
    if _default:
        return _default[0]
    raise SpindleError(
        "no plugin registry is in force; build plugins with Registry.create() or "
        "structure inside 'with using_registry(registry):'"
    )
