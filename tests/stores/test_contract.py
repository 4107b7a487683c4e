"""The store contract: every store kind must pass every test of ``StoreContract``.

The suite ships in ``spindle.testing`` so that a third-party store runs the
same tests against itself. Here ``make_store`` comes from ``conftest.py``,
parametrised over every kind in ``conftest.STORES`` (memory, sqlite,
sqlite-full and postgres, which needs ``SPINDLE_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spindle.core.store import Store
from spindle.testing import StoreContract


class TestStoreContract(StoreContract):
    """spindle's own stores pass the contract suite it ships."""

    @pytest.fixture
    def make_store(self, make_store: Callable[[], Store]) -> Callable[[], Store]:
        """The store kinds of ``conftest.STORES`` (this requests the conftest fixture)."""
        return make_store
