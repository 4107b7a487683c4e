"""Engine test fixtures: an engine factory parametrised over the embedded stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from spindle import Settings
from spindle.core.engine import Engine


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion in a fresh event loop."""
    return asyncio.run(coro)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for each store: the embedded two, and PostgreSQL (a fresh schema on
    the test server, see ``tests/pg.py``)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "postgres":
        from tests.pg import postgres_url

        return postgres_url()
    return f"sqlite:///{tmp_path / 'spindle.db'}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store URL in the test's temp dir."""
    return f"sqlite:///{tmp_path / 'spindle.db'}"


@pytest.fixture
def make_engine(tmp_path: Path) -> Callable[..., Engine]:
    """Build engines whose run dirs live under the test's temp dir."""

    def factory(store: str, **settings: Any) -> Engine:
        kwargs = {
            k: settings.pop(k)
            for k in ("observers", "hooks", "middleware", "workflows", "policy")
            if k in settings
        }
        settings.setdefault("runs_dir", str(tmp_path / "runs"))
        return Engine(store, settings=Settings(**settings), **kwargs)

    return factory


@pytest.fixture(params=["libyaml", "python"])
def yaml_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Read workflow files with libyaml (and json), and again with the pure-Python YAML
    loader alone (the fallback without libyaml, and the reading before either): a module
    asks for both with ``pytestmark = pytest.mark.usefixtures("yaml_reader")``."""
    from spindle.core.workflow import _json_fast, _yaml_fast

    if request.param == "libyaml" and not _yaml_fast.HAS_LIBYAML:
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(_yaml_fast, "USE_LIBYAML", request.param == "libyaml")
    monkeypatch.setattr(_json_fast, "USE_JSON", request.param == "libyaml")
    return str(request.param)
