"""The result cache: ``put_cached``, ``get_cached``, ``list_cached``, ``clear_cached``.

Part of :class:`spindle.testing.StoreContract`; the ``store`` fixture comes
from there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spindle.core.model import CacheEntry
from spindle.core.store import Store

T0 = datetime(2030, 1, 1, 3, tzinfo=UTC)
HOUR = timedelta(hours=1)


def entry(fingerprint: str = "f" * 64, **changes: Any) -> CacheEntry:
    values: dict[str, Any] = {
        "workflow": "wf",
        "run_id": "run-1",
        "node_id": "build",
        "result": {"value": [1, "two", None], "outputs": {"out": "/runs/run-1/out.txt"}},
        "created_at": T0,
        "artifacts": {"out": "a" * 64},
        "expires_at": T0 + HOUR,
    }
    values.update(changes)
    return CacheEntry(fingerprint=fingerprint, **values)


class CacheContract:
    """A store keeps cached node results whole, by fingerprint, until they expire."""

    async def test_an_entry_put_is_found_by_its_fingerprint_whole(self, store: Store) -> None:
        kept = entry()
        await store.put_cached(kept)
        assert await store.get_cached(kept.fingerprint, T0) == kept
        assert await store.get_cached("0" * 64, T0) is None
        assert await store.list_cached() == [kept]

    async def test_an_expired_entry_is_not_found_but_stays_listed(self, store: Store) -> None:
        kept = entry()
        await store.put_cached(kept)
        assert await store.get_cached(kept.fingerprint, T0 + HOUR - timedelta(seconds=1)) == kept
        assert await store.get_cached(kept.fingerprint, T0 + HOUR) is None
        assert await store.list_cached() == [kept]

    async def test_an_entry_without_expiry_is_found_at_any_time(self, store: Store) -> None:
        kept = entry(expires_at=None, artifacts={}, result="plain")
        await store.put_cached(kept)
        assert await store.get_cached(kept.fingerprint, T0 + 1000 * HOUR) == kept

    async def test_putting_the_same_fingerprint_replaces_the_entry(self, store: Store) -> None:
        await store.put_cached(entry(run_id="run-1"))
        newer = entry(run_id="run-2", created_at=T0 + HOUR, expires_at=None, result=2)
        await store.put_cached(newer)
        assert await store.get_cached(newer.fingerprint, T0) == newer
        assert await store.list_cached() == [newer]

    async def test_entries_are_listed_newest_first_and_by_workflow(self, store: Store) -> None:
        old = entry("1" * 64, created_at=T0)
        new = entry("2" * 64, created_at=T0 + HOUR)
        other = entry("3" * 64, workflow="other", created_at=T0 + 2 * HOUR)
        for e in (old, other, new):
            await store.put_cached(e)
        assert await store.list_cached() == [other, new, old]
        assert await store.list_cached(workflow="wf") == [new, old]
        assert await store.list_cached(workflow="none") == []

    async def test_clear_removes_all_or_by_workflow_or_by_age(self, store: Store) -> None:
        old = entry("1" * 64, created_at=T0)
        new = entry("2" * 64, created_at=T0 + 2 * HOUR)
        other = entry("3" * 64, workflow="other", created_at=T0)
        for e in (old, new, other):
            await store.put_cached(e)
        assert await store.clear_cached(workflow="wf", before=T0 + HOUR) == 1
        assert await store.list_cached() == [new, other]
        assert await store.clear_cached(before=T0 + HOUR) == 1
        assert await store.list_cached() == [new]
        assert await store.clear_cached(workflow="other") == 0
        assert await store.clear_cached() == 1
        assert await store.list_cached() == []
        assert await store.get_cached(new.fingerprint, T0) is None

    async def test_entries_are_read_by_another_instance_on_the_same_medium(
        self, store: Store
    ) -> None:
        if not getattr(self, "shared_medium", True) or store.url.startswith("memory:"):
            pytest.skip("an in-memory store is its own medium: no second instance can see it")
        kept = entry()
        await store.put_cached(kept)
        again = type(store).from_url(store.url)
        await again.open()
        try:
            assert await again.get_cached(kept.fingerprint, T0) == kept
        finally:
            await again.aclose()
