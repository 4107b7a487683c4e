"""Importing ``prometheus_client`` with an error that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from spindle import ConfigError

__all__ = ["INSTALL", "prometheus_client"]

#: How to get what this package needs.
INSTALL = "pip install 'spindle[metrics]'"


def prometheus_client() -> ModuleType:
    """The ``prometheus_client`` module.

    Raises:
        ConfigError: it is not installed (the message says how to install it).
    """
    try:
        return importlib.import_module("prometheus_client")
    except ImportError as exc:
        raise ConfigError(
            f"Prometheus metrics need prometheus_client ({exc}); install it with: {INSTALL}"
        ) from None
