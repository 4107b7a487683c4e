"""Lazy package facades: a name is imported from its module on first access.

Every sub-package of :mod:`spindle.core` re-exports its public names through
a facade built here, so ``from spindle.core.plugin import Registry`` imports
the registry and nothing else from the package. That keeps the paths that
must start fast (``spindle --help``, ``spindle plugins``) free of attrs,
cattrs and the engine, however the packages are cut.

A facade is a literal table of name to module, which the import-graph test
reads as the package's edges::

    _LAZY = {"Registry": "spindle.core.plugin._registry"}
    __getattr__, __dir__ = lazy_facade(__name__, _LAZY)
    __all__ = sorted(_LAZY)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_facade"]


def lazy_facade(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of a facade over ``table``.

    Args:
        package: the facade's ``__name__``.
        table: public name to the module that defines it.
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next access is a plain lookup
        return value

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
