"""The PostgreSQL store's schedules: the ``spindle_schedules`` table (schema version 3).

The claim of a slot is one ``UPDATE ... WHERE next_slot = %s``: under
PostgreSQL's row locking, of the workers that race on a slot the first one
moves it and every other one's update then matches no row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import define

from spindle.contrib.postgres._prune import PostgresPrune
from spindle.contrib.postgres._tables import Conn
from spindle.core.model import Schedule
from spindle.core.store import check_aware
from spindle.plugins.stores._schedule_rows import schedule_body, schedule_from

__all__ = ["PostgresSchedules"]

_COLUMNS = "body, next_slot, last_slot, enabled"


@define
class PostgresSchedules(PostgresPrune):
    """Schedules of a PostgreSQL store."""

    def _schedule(self, row: Any) -> Schedule:
        body, next_slot, last_slot, enabled = row
        return schedule_from(
            body, next_slot, last_slot, enabled, where=self.where, medium="database"
        )

    async def put_schedule(self, schedule: Schedule) -> None:
        """Keep ``schedule``, replacing one with the same id."""
        await self._rows(
            "INSERT INTO spindle_schedules (schedule_id, body, next_slot, last_slot, enabled)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (schedule_id) DO UPDATE SET"
            " body = EXCLUDED.body, next_slot = EXCLUDED.next_slot,"
            " last_slot = EXCLUDED.last_slot, enabled = EXCLUDED.enabled RETURNING 1",
            (
                schedule.schedule_id,
                schedule_body(schedule),
                check_aware(schedule.next_slot),
                schedule.last_slot,
                schedule.enabled,
            ),
        )

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        """The schedule with this id, or None."""
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM spindle_schedules WHERE schedule_id = %s", (schedule_id,)
        )
        return self._schedule(rows[0]) if rows else None

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id."""
        rows = await self._rows(f"SELECT {_COLUMNS} FROM spindle_schedules ORDER BY schedule_id")
        return [self._schedule(row) for row in rows]

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule; False when there was none."""
        rows = await self._rows(
            "DELETE FROM spindle_schedules WHERE schedule_id = %s RETURNING 1", (schedule_id,)
        )
        return bool(rows)

    async def claim_schedule_slot(
        self,
        schedule_id: str,
        *,
        expected: datetime,
        next_slot: datetime,
        fired: datetime | None,
    ) -> bool:
        """Advance ``next_slot`` from ``expected`` in one compare-and-set (see the contract)."""

        async def claim(conn: Conn) -> bool:
            cur = await conn.execute(
                "UPDATE spindle_schedules SET next_slot = %s,"
                " last_slot = coalesce(%s, last_slot)"
                " WHERE schedule_id = %s AND next_slot = %s AND enabled",
                (check_aware(next_slot), fired, schedule_id, expected),
            )
            return cur.rowcount == 1

        return await self._run(claim)
