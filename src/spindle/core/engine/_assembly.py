"""Building an engine's pieces from settings: its store, observers and services."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spindle.core.config import Settings
from spindle.core.engine._caching import engine_cache_default
from spindle.core.engine._configured import configured_plugins
from spindle.core.engine._definitions import Definitions
from spindle.core.engine._events import EventEmitter
from spindle.core.engine._leases import Leases
from spindle.core.engine._services import Limits, Services
from spindle.core.engine._tasks import TaskRunner
from spindle.core.errors import StoreError
from spindle.core.model import LedgerChain
from spindle.core.plugin import (
    CompositeObserver,
    Middleware,
    MiddlewareChains,
    Registry,
    make_plugin_manager,
)
from spindle.core.store import Store
from spindle.core.workflow import LoadPolicy

__all__ = ["build_services", "open_store"]

_STORE_ALIASES = {"postgresql": "postgres", "postgres+psycopg": "postgres"}


def open_store(url: str, registry: Registry, *, durability: str = "normal") -> Store:
    """Build the store plugin for ``url`` (its scheme is the ``spindle.store`` kind)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise StoreError(
            f"store URL {url!r} has no scheme; write sqlite:///{url} for a SQLite file "
            f"or memory:// for an in-memory store"
        )
    kind = _STORE_ALIASES.get(scheme, scheme)
    cls = registry.get("store", kind)
    # A durability written in the URL (?durability=full) wins over the setting.
    options = {} if "durability=" in url else {"durability": durability}
    store: Store = cls.from_url(url, **options)
    return store


def build_services(
    settings: Settings,
    registry: Registry,
    store: Store | str | None,
    *,
    observers: Iterable[Any],
    middleware: Iterable[Middleware],
    hooks: Iterable[Any],
    policy: LoadPolicy | None,
    owner: str,
    host: str,
) -> Services:
    """The services of an engine, each built once from its settings and arguments.

    The hooks are registered first (``spindle_register_kinds`` may add the very
    kinds the store, observers and middleware name), then the rest in order.
    """
    pm = make_plugin_manager(registry=registry, modules=settings.hooks, plugins=hooks)
    pm.hook.spindle_register_kinds(registry=registry)
    pm.hook.spindle_configure.call_historic(kwargs={"config": settings})
    opened = (
        store
        if isinstance(store, Store)
        else open_store(store or settings.store, registry, durability=settings.durability)
    )
    bindings, layers = configured_plugins(settings, registry)
    chains = MiddlewareChains([*layers, *middleware])
    tasks = TaskRunner(pm, registry, opened, trusted=policy is None)
    return Services(
        store=opened,
        registry=registry,
        pm=pm,
        chains=chains,
        emitter=EventEmitter(CompositeObserver.of([*bindings, *observers])),
        tasks=tasks,
        leases=Leases(opened, owner, host, settings.lease_ttl),
        definitions=Definitions(opened, registry, policy),
        limits=Limits.from_settings(settings),
        runs_root=Path(settings.runs_dir).absolute(),
        node_call=chains.wrap("node", tasks.run_task),
        chain=LedgerChain(settings.ledger_key),
        cache_default=engine_cache_default(chains.layers),
    )
