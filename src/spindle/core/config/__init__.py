"""The config layer: settings from ``spindle.toml``, ``SPINDLE_*`` and flags.
Imports the workflow layer and below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindle.core._lazy import lazy_facade

if TYPE_CHECKING:
    from spindle.core.config._settings import DEFAULT_STORE as DEFAULT_STORE
    from spindle.core.config._settings import PluginSettings as PluginSettings
    from spindle.core.config._settings import PolicySettings as PolicySettings
    from spindle.core.config._settings import Settings as Settings
    from spindle.core.config._settings import load_settings as load_settings

_LAZY: dict[str, str] = {
    "DEFAULT_STORE": "spindle.core.config._settings",
    "PluginSettings": "spindle.core.config._settings",
    "PolicySettings": "spindle.core.config._settings",
    "Settings": "spindle.core.config._settings",
    "load_settings": "spindle.core.config._settings",
}

__getattr__, __dir__ = lazy_facade(__name__, _LAZY)
__all__ = sorted(_LAZY)
