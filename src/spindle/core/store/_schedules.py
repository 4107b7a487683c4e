"""The schedules part of the store contract: kept schedules and the claim of a slot.

A schedule's ``next_slot`` is the first slot not fired yet. Every worker
that finds it due starts the slot's run (whose id the slot names, so the
start is idempotent) and then tries :meth:`ScheduleStore.claim_schedule_slot`:
a compare-and-set on the stored ``next_slot``, which exactly one of them wins.

The shared suite ``tests/stores/test_schedule_contract.py`` is this part's definition.
"""

from __future__ import annotations

import abc
from datetime import datetime

from spindle.core.model import Schedule

__all__ = ["ScheduleStore"]


class ScheduleStore(abc.ABC):
    """Schedules: add, read, list, remove, and advance one slot at a time."""

    @abc.abstractmethod
    async def put_schedule(self, schedule: Schedule) -> None:
        """Keep ``schedule``, replacing one with the same ``schedule_id``."""

    @abc.abstractmethod
    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        """The schedule with this id, or None."""

    @abc.abstractmethod
    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id."""

    @abc.abstractmethod
    async def delete_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule (the runs it started stay); False when there was none."""

    @abc.abstractmethod
    async def claim_schedule_slot(
        self,
        schedule_id: str,
        *,
        expected: datetime,
        next_slot: datetime,
        fired: datetime | None,
    ) -> bool:
        """Move an enabled schedule's ``next_slot`` from ``expected`` to ``next_slot``
        (and its ``last_slot`` to ``fired``, unless None) in one compare-and-set.

        Returns True for the one caller that moved it; False when the stored
        ``next_slot`` is not ``expected`` any more (another worker claimed it),
        the schedule is paused, or it is gone.
        """
