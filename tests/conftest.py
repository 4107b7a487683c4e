"""Fixtures every test gets: an isolated environment and working directory.

* ``SPINDLE_*`` variables from the developer's shell are cleared, so a local
  ``SPINDLE_STORE`` never leaks into a test;
* the entry-point cache lives in a session temp dir (``SPINDLE_CACHE_DIR``),
  never in the developer's ``~/.cache``;
* each test runs in its own empty working directory, so the default store
  (``.spindle/`` under the cwd) and relative paths never touch the checkout;
* with ``PYTHONDONTWRITEBYTECODE`` set (and no ``PYTHONPYCACHEPREFIX``), the
  ``spindle`` processes the tests start write their bytecode to a session
  temp dir instead: still nothing beside the sources, but each command no
  longer compiles all of spindle again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg  # reads SPINDLE_TEST_POSTGRES_URL before the fixtures clear SPINDLE_*


@pytest.fixture(scope="session", autouse=True)
def _bytecode_for_subprocesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give the subprocesses a bytecode cache when the shell asked for none beside sources."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PYTHONDONTWRITEBYTECODE")
        mp.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("pycache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _postgres_schemas() -> Iterator[None]:
    """Drop the PostgreSQL schemas the session's stores were given (``tests/pg.py``)."""
    yield
    pg.drop_schemas()


@pytest.fixture(scope="session")
def _spindle_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spindle-cache")


@pytest.fixture(autouse=True)
def _isolated_spindle(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    _spindle_cache_dir: Path,
) -> None:
    for name in list(os.environ):
        # spindle.testing's spindle_no_installed_hooks marker sets its switch before
        # this fixture runs; it is a test's own choice, not the developer's shell.
        if name.startswith("SPINDLE_") and name != "SPINDLE_NO_INSTALLED_HOOKS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SPINDLE_CACHE_DIR", str(_spindle_cache_dir))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
