"""Memory-store-only behaviour (the shared contract is in test_contract.py)."""

from __future__ import annotations

import pytest

from spindle.core.errors import ConfigError
from spindle.core.model import RunState
from spindle.core.store import Commit
from spindle.plugins.stores.memory import MemoryStore


def test_url_with_a_location_raises() -> None:
    """memory:// with a path raises ConfigError: memory stores have no location."""
    with pytest.raises(ConfigError, match="no location"):
        MemoryStore.from_url("memory://somewhere")


class Opaque:
    """A user object that is neither a container nor an attrs class."""


async def test_foreign_objects_are_shared_not_copied() -> None:
    """Objects that are not containers or attrs models are kept as given, not copied."""
    store = MemoryStore()
    thing = Opaque()
    await store.commit(Commit(RunState("r1", "wf", output={"thing": thing}), create=True))
    assert (await store.load_run("r1")).output["thing"] is thing
