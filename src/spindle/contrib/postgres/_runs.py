"""The PostgreSQL store's reads of runs and ledgers, and its leases (taken under the
run row's lock, so two workers never hold one run)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from attrs import define

from spindle.contrib.postgres._cache import PostgresCache
from spindle.contrib.postgres._tables import Conn
from spindle.core.model import Lease, LedgerHead, RunState, RunStatus, StepRecord
from spindle.core.store import check_aware, lease_expiry, may_acquire

__all__ = ["LEASE_COLUMNS", "PostgresRuns"]

_STATE = (
    "run_id, body, step_count, event_seq, updated_at, head_count, head_hash, state_digest,"
    " ledger_key_id"
)
LEASE_COLUMNS = "lease_owner, lease_host, lease_pid, lease_expires_at, token"


def _lease(row: Sequence[Any]) -> Lease | None:
    owner, host, pid, expires_at, token = row
    if owner is None:
        return None
    return Lease(owner=owner, host=host, pid=pid, expires_at=expires_at, token=token)


@define
class PostgresRuns(PostgresCache):
    """Runs, ledgers and leases of a PostgreSQL store (``PostgresStore`` adds the commit)."""

    # --- runs ----------------------------------------------------------------------------

    def _state(self, row: Sequence[Any]) -> RunState:
        run_id, body, count, event_seq, updated, head_count, head_hash, digest, key_id = row
        state = self._structure(body, RunState, f"state of run {run_id!r}")
        state.step_count = count
        state.event_seq = event_seq
        state.updated_at = updated
        state.head = LedgerHead(head_count, head_hash, digest, key_id)
        return state

    async def load_run(self, run_id: str) -> RunState:
        """Return the run's state. Raises ``RunNotFound``."""
        rows = await self._rows(
            f"SELECT {_STATE} FROM spindle_runs WHERE run_id = %s", (run_id,), run_id=run_id
        )
        if not rows:
            raise self._missing(run_id)
        return self._state(rows[0])

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs matching every given filter, newest first (by ``created_at``)."""
        filters = {
            "status": status.value if status is not None else None,
            "workflow": workflow,
            "parent_run_id": parent_run_id,
        }
        where = " AND ".join(f"{k} = %({k})s" for k, v in filters.items() if v is not None)
        sql = (
            f"SELECT {_STATE} FROM spindle_runs {'WHERE ' + where if where else ''}"
            " ORDER BY created_at DESC, run_no DESC"
            + (" LIMIT %(limit)s" if limit is not None else "")
        )
        rows = await self._rows(sql, {**filters, "limit": limit})
        return [self._state(row) for row in rows]

    async def due_runs(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Runs with work and no live driver, the longest-due first.

        Due means: pending; waiting with a timer due at or before ``now``; or
        running under a lease that expired (its driver crashed). A run whose
        lease is still live is left to its holder.
        """
        check_aware(now)
        rows = await self._rows(
            "SELECT run_id FROM ("
            " SELECT run_id, run_no, CASE status"
            "  WHEN 'pending' THEN created_at WHEN 'waiting' THEN wake_at"
            "  ELSE lease_expires_at END AS due_at"
            " FROM spindle_runs"
            " WHERE (lease_expires_at IS NULL OR lease_expires_at <= %(now)s) AND ("
            "  status = 'pending'"
            "  OR (status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= %(now)s)"
            "  OR (status = 'running' AND lease_expires_at IS NOT NULL))"
            ") due ORDER BY due_at, run_no LIMIT %(limit)s",
            {"now": now, "limit": limit},
        )
        return [r[0] for r in rows]

    # --- ledger --------------------------------------------------------------------------

    def _record(self, row: Sequence[Any], run_id: str) -> StepRecord:
        seq, body, prev_hash, record_hash = row
        record = self._structure(body, StepRecord, f"ledger record of run {run_id!r} seq {seq}")
        record.prev_hash = prev_hash
        record.record_hash = record_hash
        return record

    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every record of the run in ``seq`` order. Raises ``RunNotFound``."""

        async def read(conn: Conn) -> list[Any]:
            cur = await conn.execute(
                "SELECT seq, body, prev_hash, record_hash FROM spindle_ledger"
                " WHERE run_id = %s ORDER BY seq",
                (run_id,),
            )
            rows = list(await cur.fetchall())
            if not rows:
                await self._exists(conn, run_id)
            return rows

        return [self._record(r, run_id) for r in await self._run(read, run_id=run_id)]

    async def find_step(self, run_id: str, idempotency_key: str) -> StepRecord | None:
        """The latest record of the run with this idempotency key, or None."""
        rows = await self._rows(
            "SELECT seq, body, prev_hash, record_hash FROM spindle_ledger"
            " WHERE run_id = %s AND idempotency_key = %s ORDER BY seq DESC LIMIT 1",
            (run_id, idempotency_key),
        )
        return self._record(rows[0], run_id) if rows else None

    async def ledger_head(self, run_id: str) -> tuple[int, str]:
        """``(record count, last record_hash or "")``. Raises ``RunNotFound``."""

        async def read(conn: Conn) -> tuple[int, str]:
            await self._exists(conn, run_id)
            cur = await conn.execute(
                "SELECT seq, record_hash FROM spindle_ledger WHERE run_id = %s"
                " ORDER BY seq DESC LIMIT 1",
                (run_id,),
            )
            row = await cur.fetchone()
            return (0, "") if row is None else (row[0] + 1, row[1])

        return await self._run(read, run_id=run_id)

    # --- leases --------------------------------------------------------------------------

    async def acquire_lease(
        self,
        run_id: str,
        *,
        owner: str,
        host: str,
        pid: int,
        ttl: float,
        now: datetime,
        steal_token: int | None = None,
    ) -> Lease | None:
        """Take the run's lease with the next fencing token, or return None.

        Raises:
            RunNotFound: no such run.
        """
        expires_at = lease_expiry(now, ttl)

        async def acquire(conn: Conn) -> Lease | None:
            cur = await conn.execute(
                f"SELECT {LEASE_COLUMNS} FROM spindle_runs WHERE run_id = %s FOR UPDATE", (run_id,)
            )
            row = await cur.fetchone()
            if row is None:
                raise self._missing(run_id)
            if not may_acquire(_lease(row), owner=owner, now=now, steal_token=steal_token):
                return None
            token = row[4] + 1
            await conn.execute(
                "UPDATE spindle_runs SET lease_owner = %s, lease_host = %s, lease_pid = %s,"
                " lease_expires_at = %s, token = %s WHERE run_id = %s",
                (owner, host, pid, expires_at, token, run_id),
            )
            return Lease(owner=owner, host=host, pid=pid, expires_at=expires_at, token=token)

        return await self._run(acquire, run_id=run_id)

    async def renew_lease(
        self, run_id: str, *, owner: str, token: int, ttl: float, now: datetime
    ) -> bool:
        """Extend our lease to ``now + ttl``; False when it is no longer ours."""
        expires_at = lease_expiry(now, ttl)
        rows = await self._rows(
            "UPDATE spindle_runs SET lease_expires_at = %s WHERE run_id = %s AND"
            " lease_owner = %s AND token = %s RETURNING 1",
            (expires_at, run_id, owner, token),
            run_id=run_id,
        )
        return bool(rows)

    async def release_lease(self, run_id: str, *, owner: str, token: int) -> None:
        """Give the lease up if it is still ours; the token counter is kept."""
        await self._rows(
            "UPDATE spindle_runs SET lease_owner = NULL, lease_host = NULL, lease_pid = NULL,"
            " lease_expires_at = NULL WHERE run_id = %s AND lease_owner = %s AND token = %s"
            " RETURNING 1",
            (run_id, owner, token),
            run_id=run_id,
        )

    async def get_lease(self, run_id: str) -> Lease | None:
        """The run's current lease, expired or not. Raises ``RunNotFound``."""
        rows = await self._rows(
            f"SELECT {LEASE_COLUMNS} FROM spindle_runs WHERE run_id = %s", (run_id,), run_id=run_id
        )
        if not rows:
            raise self._missing(run_id)
        return _lease(rows[0])
