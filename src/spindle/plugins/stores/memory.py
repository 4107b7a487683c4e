"""The ``memory://`` store: everything in dicts, gone when the process ends.

It is the store for tests, examples and throwaway runs, and the reference
the contract suite compares the durable stores against, so it enforces the
same rules: ledger continuity, fencing tokens, one consumer per inbox event,
``RunNotFound`` for unknown runs.

Isolation: what is committed is copied (containers deeply, attrs objects
field by field), and what is returned is copied again, so a caller that
mutates its ``RunState`` after a commit, or mutates a loaded one, never
changes what the store holds. Objects that are neither containers nor
spindle models (a user's own class in a result) are shared, not copied
(see ``_memory_copy``).

This module holds what a run's progress goes through: the commit, run
queries, the ledger and leases; the tables beside them (definitions, the
inbox, artifacts, audit entries, handoffs) are in ``_memory_base``, pruning
in ``_memory_prune``, schedules in ``_memory_schedules``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import define

from spindle.core.errors import ConfigError, StoreError
from spindle.core.model import Lease, LedgerHead, RunState, RunStatus, StepRecord
from spindle.core.store import (
    Commit,
    check_aware,
    check_records,
    event_waits,
    lease_expiry,
    lease_lost,
    may_acquire,
    queued_elsewhere,
    run_exists,
    unconsumable,
)
from spindle.plugins.stores._common import parse_options, split_url
from spindle.plugins.stores._memory_base import RunEntry
from spindle.plugins.stores._memory_cache import MemoryCache
from spindle.plugins.stores._memory_copy import clone, cloner
from spindle.plugins.stores._memory_prune import MemoryPrune

__all__ = ["MemoryStore"]

# Every commit copies its records: the copy function is looked up once.
_clone_record = cloner(StepRecord)


@define
class MemoryStore(MemoryCache, MemoryPrune, kind="memory"):
    """Keeps runs, ledgers, artifacts and the inbox in process memory.

    Nothing survives the process, so it suits tests and experiments; it
    enforces the same contract as the durable stores. Its methods never
    await, so each one is atomic on the event loop that calls it; it is not
    meant to be shared between threads.

    Example::

        store = MemoryStore.from_url("memory://")
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStore:
        """Build a memory store from ``memory://`` (``?durability=`` is accepted and moot).

        Raises:
            ConfigError: the URL is not ``memory://`` or has an unknown option.
        """
        rest, query = split_url(url, "memory")
        if rest:
            raise ConfigError(f"store URL {url!r}: a memory store has no location; use 'memory://'")
        return cls(url=url, **{**parse_options(url, query, {"durability": str}), **options})

    # --- runs ------------------------------------------------------------------

    async def commit(self, commit: Commit) -> None:
        """Apply the run's new state, ledger records and consumed events atomically.

        Every check runs before anything is written, so a refused commit
        leaves the store as it was.

        Raises:
            LeaseLost: ``commit.token`` is not the run's current lease token.
            LedgerError: the records do not continue the run's ledger.
            RunNotFound: the run does not exist and ``commit.create`` is false.
            StoreError: the run already exists (``create``), or an event to
                consume is unknown or consumed by another run.
        """
        state = commit.state
        run_id = state.run_id
        records = commit.records
        entry = self._runs.get(run_id)
        if commit.create:
            if entry is not None:
                raise run_exists(run_id, "the memory store")
            if commit.token is not None:
                raise lease_lost(run_id, commit.token, 0, new=True)
            count, head = 0, ""
        else:
            if entry is None:
                raise self._missing(run_id)
            if commit.token is not None and commit.token != entry.token:
                raise lease_lost(run_id, commit.token, entry.token)
            count, head = len(entry.records), entry.head
        if records:
            head = check_records(run_id, records, count, head)
        for event_id in commit.consume_events:
            self._check_consumable(event_id, run_id)

        lease = commit.lease
        if lease is not None and not commit.create:
            raise StoreError(f"run {run_id!r}: Commit.lease is only for creating a run")

        # Every check passed: write.
        if entry is None:
            entry = self._runs[run_id] = RunEntry(clone(state), len(self._runs))
            if lease is not None:
                entry.token = 1
                entry.lease = clone(lease)
                entry.lease.token = 1
        elif commit.state_changed:
            entry.state = clone(state)
        else:
            # The hot path: only the counters moved (Commit.state_changed is false).
            kept = entry.state
            kept.event_seq = state.event_seq  # (step_count is set from the ledger below)
            kept.updated_at = state.updated_at
        for record in records:
            copy = _clone_record(record)
            entry.records.append(copy)
            entry.keys[copy.idempotency_key] = copy
        entry.head = head
        # step_count is the store's to keep: the ledger's length, whatever the state said.
        entry.state.step_count = len(entry.records)
        # The ledger head, with the engine's state digest and key id as given.
        entry.state.head = LedgerHead(
            len(entry.records), head, commit.state_digest, commit.ledger_key_id
        )
        waits_changed = False
        if commit.state_changed and (state.waits or entry.waits):
            waits_changed = self._set_waits(entry, run_id, event_waits(state))
        for event_id in commit.consume_events:
            self._events[event_id].consumed_by = run_id
        if waits_changed:
            self._release_queued(run_id, entry.waits)
        if commit.release_lease and entry.lease is not None and entry.lease.token == commit.token:
            entry.lease = None

    def _check_consumable(self, event_id: str, run_id: str) -> None:
        event = self._events.get(event_id)
        if event is None:
            raise unconsumable(event_id, run_id, None, "the memory store")
        if event.consumed_by not in (None, run_id):
            raise unconsumable(event_id, run_id, event.consumed_by, "the memory store")
        if event.run_id not in (None, run_id):
            raise queued_elsewhere(event_id, run_id, event.run_id)

    def _set_waits(self, entry: RunEntry, run_id: str, waits: dict[str, datetime]) -> bool:
        if waits == entry.waits:
            return False
        for key in entry.waits:
            waiters = self._waiters[key]
            del waiters[run_id]
            if not waiters:
                del self._waiters[key]
        for key, since in waits.items():
            self._waiters.setdefault(key, {})[run_id] = since
        entry.waits = waits
        return True

    def _release_queued(self, run_id: str, waits: dict[str, datetime]) -> None:
        """Events queued for the run under keys it no longer waits on go to any run."""
        if not self._queued_any:
            return
        for event in self._events.values():
            if event.run_id == run_id and event.consumed_by is None and event.key not in waits:
                event.run_id = None

    async def load_run(self, run_id: str) -> RunState:
        """Return a copy of the run's state. Raises ``RunNotFound``."""
        return clone(self._run(run_id).state)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs matching every given filter, newest first (by ``created_at``)."""
        entries = [
            e
            for e in self._runs.values()
            if (status is None or e.state.status == status)
            and (workflow is None or e.state.workflow == workflow)
            and (parent_run_id is None or e.state.parent_run_id == parent_run_id)
        ]
        entries.sort(key=lambda e: (e.state.created_at, e.order), reverse=True)
        return [clone(e.state) for e in entries[:limit]]

    async def due_runs(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Runs with work and no live driver, the longest-due first.

        Due means: pending; waiting with a timer due at or before ``now``; or
        running under a lease that expired (its driver crashed). A run whose
        lease is still live is left to its holder.
        """
        check_aware(now)
        due: list[tuple[datetime, int, str]] = []
        for run_id, e in self._runs.items():
            lease = e.lease
            if lease is not None and lease.expires_at > now:
                continue
            status = e.state.status
            if status == RunStatus.PENDING:
                due.append((e.state.created_at, e.order, run_id))
            elif status == RunStatus.WAITING:
                wake_at = e.state.wake_at
                if wake_at is not None and wake_at <= now:
                    due.append((wake_at, e.order, run_id))
            elif status == RunStatus.RUNNING and lease is not None:
                due.append((lease.expires_at, e.order, run_id))
        due.sort()
        return [run_id for _, _, run_id in due[:limit]]

    # --- ledger ------------------------------------------------------------------

    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every record of the run in ``seq`` order. Raises ``RunNotFound``."""
        return [clone(r) for r in self._run(run_id).records]

    async def find_step(self, run_id: str, idempotency_key: str) -> StepRecord | None:
        """The latest record of the run with this idempotency key, or None."""
        entry = self._runs.get(run_id)
        record = None if entry is None else entry.keys.get(idempotency_key)
        return None if record is None else clone(record)

    async def ledger_head(self, run_id: str) -> tuple[int, str]:
        """``(record count, last record_hash or "")``. Raises ``RunNotFound``."""
        entry = self._run(run_id)
        return len(entry.records), entry.head

    # --- leases -----------------------------------------------------------------------

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
        entry = self._run(run_id)
        if not may_acquire(entry.lease, owner=owner, now=now, steal_token=steal_token):
            return None
        entry.token += 1
        entry.lease = Lease(
            owner=owner, host=host, pid=pid, expires_at=expires_at, token=entry.token
        )
        return clone(entry.lease)

    async def renew_lease(
        self, run_id: str, *, owner: str, token: int, ttl: float, now: datetime
    ) -> bool:
        """Extend our lease to ``now + ttl``; False when it is no longer ours."""
        expires_at = lease_expiry(now, ttl)
        entry = self._holding(run_id, owner, token)
        if entry is None or entry.lease is None:
            return False
        entry.lease.expires_at = expires_at
        return True

    async def release_lease(self, run_id: str, *, owner: str, token: int) -> None:
        """Give the lease up if it is still ours; the token counter is kept."""
        entry = self._holding(run_id, owner, token)
        if entry is not None:
            entry.lease = None

    def _holding(self, run_id: str, owner: str, token: int) -> RunEntry | None:
        """The run if ``owner`` holds its lease under ``token``, else None."""
        entry = self._runs.get(run_id)
        lease = None if entry is None else entry.lease
        if lease is None or lease.owner != owner or lease.token != token:
            return None
        return entry

    async def get_lease(self, run_id: str) -> Lease | None:
        """The run's current lease, expired or not. Raises ``RunNotFound``."""
        return clone(self._run(run_id).lease)
