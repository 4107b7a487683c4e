"""The SQLite store's schedules: the ``schedules`` table (schema version 6).

Slots are kept as integer microseconds since the epoch, so the claim's
compare-and-set compares exact values, never floats.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from attrs import define

from spindle.core.model import Schedule
from spindle.core.store import check_aware
from spindle.plugins.stores._schedule_rows import from_micros, micros, schedule_body, schedule_from
from spindle.plugins.stores._sqlite_prune import SQLitePrune

__all__ = ["SQLiteSchedules"]

_COLUMNS = "body, next_slot, last_slot, enabled"


@define
class SQLiteSchedules(SQLitePrune):
    """Schedules in a SQLite file; the claim is one ``UPDATE ... WHERE next_slot = ?``."""

    def _schedule(self, row: Any) -> Schedule:
        body, next_us, last_us, enabled = row
        return schedule_from(
            body,
            from_micros(next_us),
            None if last_us is None else from_micros(last_us),
            bool(enabled),
            where=f"SQLite store {self.path}",
            medium="file",
        )

    async def put_schedule(self, schedule: Schedule) -> None:
        """Keep ``schedule``, replacing one with the same id."""
        last = schedule.last_slot
        await self._execute(
            "INSERT OR REPLACE INTO schedules (schedule_id, body, next_slot, last_slot, enabled)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                schedule.schedule_id,
                schedule_body(schedule),
                micros(check_aware(schedule.next_slot)),
                None if last is None else micros(last),
                int(schedule.enabled),
            ),
        )

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        """The schedule with this id, or None."""
        rows = self._read(f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ?", (schedule_id,))
        return self._schedule(rows[0]) if rows else None

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id."""
        rows = self._read(f"SELECT {_COLUMNS} FROM schedules ORDER BY schedule_id")
        return [self._schedule(row) for row in rows]

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule; False when there was none."""

        def delete(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
            return cur.rowcount > 0

        return await self._transact(delete)

    async def claim_schedule_slot(
        self,
        schedule_id: str,
        *,
        expected: datetime,
        next_slot: datetime,
        fired: datetime | None,
    ) -> bool:
        """Advance ``next_slot`` from ``expected`` in one compare-and-set (see the contract)."""
        params = (
            micros(check_aware(next_slot)),
            None if fired is None else micros(fired),
            schedule_id,
            micros(expected),
        )

        def claim(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE schedules SET next_slot = ?, last_slot = coalesce(?, last_slot)"
                " WHERE schedule_id = ? AND next_slot = ? AND enabled = 1",
                params,
            )
            return cur.rowcount == 1

        return await self._transact(claim)
