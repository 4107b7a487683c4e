"""Building an engine's pieces from settings: its store and its observers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from spindle.core.errors import StoreError
from spindle.core.plugin import CompositeObserver, ObserverBinding, Registry, ensure_observer
from spindle.core.store import Store

__all__ = ["build_observers", "open_store"]

_STORE_ALIASES = {"postgresql": "postgres", "postgres+psycopg": "postgres"}


def open_store(url: str, registry: Registry, *, durability: str = "normal") -> Store:
    """Build the store plugin for ``url`` (its scheme is the ``spindle.store`` kind)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise StoreError(
            f"store URL {url!r} has no scheme; write sqlite:///{url} for a SQLite file, "
            f"memory:// for an in-memory store, or postgresql://user@host/db"
        )
    kind = _STORE_ALIASES.get(scheme, scheme)
    cls = registry.get("store", kind)
    # A durability written in the URL (?durability=full) wins over the setting.
    options = {} if "durability=" in url else {"durability": durability}
    store: Store = cls.from_url(url, **options)
    return store


def build_observers(
    registry: Registry, configured: Iterable[Mapping[str, Any]], given: Iterable[Any]
) -> CompositeObserver:
    """Bind the observers of the ``observers`` setting, then those given in code.

    Each configured mapping names an observer ``kind`` and its options, plus
    ``required`` (a failure of a required observer propagates).
    """
    bindings: list[Any] = []
    for cfg in configured:
        options = dict(cfg)
        required = bool(options.pop("required", False))
        obs = registry.get("observer", str(options.get("kind")))
        instance = (
            registry.create("observer", options, path="observers")
            if hasattr(obs, "__attrs_attrs__")
            else obs(**{k: v for k, v in options.items() if k != "kind"})
        )
        bindings.append(ObserverBinding(ensure_observer(instance), required))
    bindings.extend(given)
    return CompositeObserver.of(bindings)
