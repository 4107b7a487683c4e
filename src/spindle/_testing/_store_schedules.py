"""Schedules.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from spindle.core.model import (
    Schedule,
)
from spindle.core.store import Store

T0 = datetime(2030, 1, 1, 3, tzinfo=UTC)


DAY = timedelta(days=1)


def schedule(schedule_id: str = "nightly", **changes: Any) -> Schedule:
    values: dict[str, Any] = {
        "workflow": "wf",
        "definition_id": "d" * 32,
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "next_slot": T0,
        "inputs": {"n": 1, "who": ["a", "b"]},
        "catch_up": "all",
        "source": "/tmp/nightly.yaml",
        "created_at": datetime(2029, 12, 31, 12, 30, 1, 123456, tzinfo=UTC),
    }
    values.update(changes)
    return Schedule(schedule_id=schedule_id, **values)


class SchedulesContract:
    """A store keeps schedules whole and fires each slot once."""

    async def test_a_schedule_put_is_read_back_whole(self, store: Store) -> None:
        """put_schedule keeps every field; get_schedule and list_schedules return them."""
        kept = schedule(last_slot=T0 - DAY, enabled=False)
        await store.put_schedule(kept)
        assert await store.get_schedule("nightly") == kept
        assert await store.list_schedules() == [kept]

    async def test_an_unknown_schedule_is_none_and_listing_is_by_id(self, store: Store) -> None:
        """get_schedule of an unknown id is None; list_schedules orders by id."""
        assert await store.get_schedule("nope") is None
        assert await store.list_schedules() == []
        for sid in ("b", "c", "a"):
            await store.put_schedule(schedule(sid))
        assert [s.schedule_id for s in await store.list_schedules()] == ["a", "b", "c"]

    async def test_putting_a_schedule_again_replaces_it(self, store: Store) -> None:
        """A second put_schedule with the same id replaces the first."""
        await store.put_schedule(schedule())
        changed = schedule(cron="*/5 * * * *", next_slot=T0 + DAY, inputs={}, enabled=False)
        await store.put_schedule(changed)
        assert await store.list_schedules() == [changed]

    async def test_deleting_a_schedule_says_whether_there_was_one(self, store: Store) -> None:
        """delete_schedule removes it and returns True, then False."""
        await store.put_schedule(schedule())
        assert await store.delete_schedule("nightly") is True
        assert await store.delete_schedule("nightly") is False
        assert await store.get_schedule("nightly") is None

    async def test_claiming_a_slot_moves_next_slot_and_last_slot(self, store: Store) -> None:
        """A claim with the stored next_slot advances it and records the fired slot."""
        await store.put_schedule(schedule())
        won = await store.claim_schedule_slot("nightly", expected=T0, next_slot=T0 + DAY, fired=T0)
        got = await store.get_schedule("nightly")
        assert won is True
        assert got == schedule(next_slot=T0 + DAY, last_slot=T0)

    async def test_a_claim_that_skips_leaves_the_last_fired_slot(self, store: Store) -> None:
        """fired=None moves next_slot only (slots skipped by the catch-up rule)."""
        await store.put_schedule(schedule(last_slot=T0 - DAY))
        assert await store.claim_schedule_slot(
            "nightly", expected=T0, next_slot=T0 + 2 * DAY, fired=None
        )
        got = await store.get_schedule("nightly")
        assert got is not None and (got.next_slot, got.last_slot) == (T0 + 2 * DAY, T0 - DAY)

    async def test_a_stale_claim_is_refused_and_changes_nothing(self, store: Store) -> None:
        """A claim whose expected slot is no longer stored returns False."""
        await store.put_schedule(schedule())
        assert await store.claim_schedule_slot("nightly", expected=T0, next_slot=T0 + DAY, fired=T0)
        again = await store.claim_schedule_slot(
            "nightly", expected=T0, next_slot=T0 + DAY, fired=T0
        )
        assert again is False
        assert await store.get_schedule("nightly") == schedule(next_slot=T0 + DAY, last_slot=T0)

    async def test_a_paused_or_missing_schedule_cannot_be_claimed(self, store: Store) -> None:
        """Claims of a disabled schedule or an unknown id return False."""
        await store.put_schedule(schedule(enabled=False))
        assert not await store.claim_schedule_slot("nightly", expected=T0, next_slot=T0, fired=T0)
        assert not await store.claim_schedule_slot("gone", expected=T0, next_slot=T0, fired=T0)
        assert await store.get_schedule("nightly") == schedule(enabled=False)

    async def test_racing_claims_of_one_slot_have_one_winner(self, store: Store) -> None:
        """Many claims of the same slot at once: exactly one succeeds."""
        await store.put_schedule(schedule())
        wins = await asyncio.gather(
            *(
                store.claim_schedule_slot("nightly", expected=T0, next_slot=T0 + DAY, fired=T0)
                for _ in range(10)
            )
        )
        assert sorted(wins) == [False] * 9 + [True]

    async def test_schedules_are_copies_not_shared_objects(self, store: Store) -> None:
        """Changing a schedule after put or after get does not change what is kept."""
        kept = schedule()
        await store.put_schedule(kept)
        kept.inputs["n"] = 99
        got = await store.get_schedule("nightly")
        assert got is not None and got.inputs == {"n": 1, "who": ["a", "b"]}
        got.inputs.clear()
        assert attrs.asdict(await store.get_schedule("nightly") or got)["inputs"] == {
            "n": 1,
            "who": ["a", "b"],
        }
