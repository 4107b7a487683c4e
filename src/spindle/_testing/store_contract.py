"""The store contract suite as a test class: :class:`StoreContract`.

Import it from :mod:`spindle.testing`. A store passes the contract when a
subclass that says how to build it passes::

    import pytest
    from spindle.testing import StoreContract

    from spindle_redis import RedisStore


    class TestRedisStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: RedisStore.from_url("redis://localhost/15")

spindle's own stores (memory, SQLite, PostgreSQL) run this same class in
``tests/stores/test_contract.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from spindle._testing import _store_helpers
from spindle._testing._store_cache import CacheContract
from spindle._testing._store_head import HeadContract
from spindle._testing._store_leases import LeasesContract
from spindle._testing._store_prune import PruneContract
from spindle._testing._store_runs import RunsContract
from spindle._testing._store_schedules import SchedulesContract
from spindle._testing._store_work import WorkContract
from spindle.core.store import Store

try:
    from spindle._testing._store_properties import PropertiesContract
except ModuleNotFoundError as missing:  # hypothesis is in spindle's "test" extra only
    if missing.name != "hypothesis":
        raise

    class PropertiesContract:  # type: ignore[no-redef]
        """Stands in for the property tests when hypothesis is not installed."""

        def test_store_properties(self) -> None:
            """The contract's property tests need hypothesis; they are skipped without it."""
            pytest.skip(
                "hypothesis is not installed, so the store contract's three property tests "
                "(commit sequences, pruning forests, claims under limits) do not run; "
                "pip install hypothesis (or spindle[test]) to run them"
            )


__all__ = ["StoreContract"]


class StoreContract(
    RunsContract,
    LeasesContract,
    HeadContract,
    PruneContract,
    WorkContract,
    SchedulesContract,
    CacheContract,
    PropertiesContract,
):
    """Every test of the store contract, for a store kind a subclass builds.

    Subclass it in a module pytest collects (a ``Test...`` class) and give it
    a ``make_store`` fixture returning a callable that builds a **new,
    unopened** store each time it is called, on empty storage: some tests
    build several stores, and the property tests one per example. The class
    provides the rest: ``store`` (one from ``make_store``, opened on
    ``event_loop`` and closed after the test), ``event_loop`` (a fresh loop the
    ``async def`` tests run on, so a store holding loop-bound connections
    works) and ``chain`` (:func:`spindle._testing._store_helpers.chain`).

    The ``async def`` tests run without pytest-asyncio: spindle's pytest
    plugin runs them on the test's ``event_loop``. The property tests need
    hypothesis (skipped, with the reason, without it).

    Example::

        class TestMyStore(StoreContract):
            @pytest.fixture
            def make_store(self, tmp_path):
                counter = itertools.count()
                return lambda: MyStore.from_url(f"mine:///{tmp_path}/db{next(counter)}")
    """

    #: Tells spindle's pytest plugin to run this class's ``async def`` tests.
    spindle_store_contract: ClassVar[bool] = True

    #: Whether a second store built from the same URL sees what the first
    #: wrote (a file, a server). Set it to ``False`` in the subclass for a
    #: store that keeps everything in its own process memory: the tests that
    #: reopen a store's medium are then skipped, saying why.
    shared_medium: ClassVar[bool] = True

    @pytest.fixture
    def make_store(self) -> Callable[[], Store]:
        """Stands in until the subclass defines ``make_store``, and says so."""
        raise pytest.UsageError(
            f"{type(self).__name__} needs a make_store fixture: define "
            f"'@pytest.fixture def make_store(self, tmp_path)' in the class, returning a "
            f"callable that builds a new, unopened store each time it is called"
        )

    @pytest.fixture
    def event_loop(self) -> Iterator[asyncio.AbstractEventLoop]:
        """A fresh event loop for one test, closed afterwards."""
        loop = asyncio.new_event_loop()
        yield loop
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    @pytest.fixture
    def store(
        self, make_store: Callable[[], Store], event_loop: asyncio.AbstractEventLoop
    ) -> Iterator[Store]:
        """An open store from ``make_store``, closed after the test."""
        instance = make_store()
        if not isinstance(instance, Store):
            raise TypeError(
                f"make_store() returned {instance!r}, not a spindle Store; the make_store "
                f"fixture must return a callable that builds a new, unopened store"
            )
        event_loop.run_until_complete(instance.open())
        yield instance
        event_loop.run_until_complete(instance.aclose())

    @pytest.fixture
    def chain(self) -> _store_helpers.Chain:
        """``chain(run_id, count, start=0, head="")``: records that continue a ledger."""
        return _store_helpers.chain
