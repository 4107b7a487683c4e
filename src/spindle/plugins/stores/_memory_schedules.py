"""The memory store's schedules (a dict by id; see the contract's ``ScheduleStore``)."""

from __future__ import annotations

from datetime import datetime

from attrs import define, evolve, field

from spindle.core.model import Schedule
from spindle.core.store import check_aware
from spindle.plugins.stores._memory_copy import clone
from spindle.plugins.stores._memory_work import MemoryWork

__all__ = ["MemorySchedules"]


@define
class MemorySchedules(MemoryWork):
    """Schedules kept in a dict; each method is atomic on its event loop (none awaits)."""

    _schedules: dict[str, Schedule] = field(factory=dict, init=False, repr=False, eq=False)

    async def put_schedule(self, schedule: Schedule) -> None:
        """Keep ``schedule`` (a copy), replacing one with the same id."""
        check_aware(schedule.next_slot)
        self._schedules[schedule.schedule_id] = clone(schedule)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        """A copy of the schedule with this id, or None."""
        found = self._schedules.get(schedule_id)
        return None if found is None else clone(found)

    async def list_schedules(self) -> list[Schedule]:
        """Copies of every schedule, by id."""
        return [clone(self._schedules[k]) for k in sorted(self._schedules)]

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule; False when there was none."""
        return self._schedules.pop(schedule_id, None) is not None

    async def claim_schedule_slot(
        self,
        schedule_id: str,
        *,
        expected: datetime,
        next_slot: datetime,
        fired: datetime | None,
    ) -> bool:
        """Advance ``next_slot`` from ``expected`` (see the contract)."""
        check_aware(next_slot)
        found = self._schedules.get(schedule_id)
        if found is None or not found.enabled or found.next_slot != expected:
            return False
        last = found.last_slot if fired is None else fired
        self._schedules[schedule_id] = evolve(found, next_slot=next_slot, last_slot=last)
        return True
