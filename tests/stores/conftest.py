"""Fixtures for the store tests: one store of every kind, and ``async def`` tests.

Every test that takes ``store`` runs once per entry of :data:`STORES`; a new
store kind joins the whole contract suite by adding one line there.

``async def`` tests run on the event loop the ``store`` fixture opened its
store on (``event_loop``), so a store holding loop-bound connections (a
later PostgreSQL store) works too. pytest-asyncio is not a dependency; the
hook below is all the support these tests need.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spindle._testing import _store_helpers
from spindle.core.model import StepRecord
from spindle.core.store import Store
from spindle.plugins.stores.memory import MemoryStore
from spindle.plugins.stores.sqlite import SQLiteStore
from tests.pg import postgres_url


def _postgres(tmp: Path) -> Store:
    from spindle.contrib.postgres import PostgresStore

    return PostgresStore.from_url(postgres_url())


#: How to build a fresh, unopened store of each kind in an empty directory.
STORES: dict[str, Callable[[Path], Store]] = {
    "postgres": _postgres,
    "memory": lambda tmp: MemoryStore.from_url("memory://"),
    "sqlite": lambda tmp: SQLiteStore.from_url(f"sqlite:///{tmp}/spindle.db"),
    # durability=full turns group commit on (group_commit=auto): every write goes
    # through the writer thread's batches.
    "sqlite-full": lambda tmp: SQLiteStore.from_url(f"sqlite:///{tmp}/spindle.db?durability=full"),
}


@pytest.fixture(params=sorted(STORES))
def store_kind(request: pytest.FixtureRequest) -> str:
    """The name of the store kind under test."""
    return str(request.param)


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path) -> Callable[[], Store]:
    """Build a new, unopened store of the kind under test (each in its own directory)."""
    counter = itertools.count()

    def make() -> Store:
        directory = tmp_path / f"store{next(counter)}"
        directory.mkdir()
        return STORES[store_kind](directory)

    return make


@pytest.fixture
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for one test, closed afterwards."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@pytest.fixture
def store(
    make_store: Callable[[], Store], event_loop: asyncio.AbstractEventLoop
) -> Iterator[Store]:
    """An open store of the kind under test, closed afterwards."""
    instance = make_store()
    event_loop.run_until_complete(instance.open())
    yield instance
    event_loop.run_until_complete(instance.aclose())


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on the test's ``event_loop`` (or a new one)."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    names = inspect.signature(function).parameters
    coroutine = function(**{name: pyfuncitem.funcargs[name] for name in names})
    loop = pyfuncitem.funcargs.get("event_loop")
    if isinstance(loop, asyncio.AbstractEventLoop):
        loop.run_until_complete(coroutine)
    else:
        asyncio.run(coroutine)
    return True


@pytest.fixture
def chain() -> Callable[..., list[StepRecord]]:
    """``chain(run_id, count, start=0, head="")``: records that continue a ledger."""
    return _store_helpers.chain
