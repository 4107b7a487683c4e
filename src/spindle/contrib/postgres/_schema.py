"""The PostgreSQL store's tables, their versions, and the migrations between them.

The version lives in ``spindle_schema``. :data:`MIGRATIONS` is the list of
steps from one version to the next: version *n* is reached by running the
first *n* steps, so a release appends a step and never edits an old one. An
empty database is given the current schema when a store first opens it; a
database at an older version is refused until ``spindle db upgrade`` brings
it up (several workers may share it, so none of them migrates it behind the
others' backs), and one at a newer version, written by a newer spindle, is
refused rather than misread.
"""

from __future__ import annotations

from typing import Any

from spindle.plugins.stores._cache_rows import POSTGRES_CACHE

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1: tuple[str, ...] = (
    "CREATE TABLE spindle_schema (version INTEGER NOT NULL)",
    # One row per run: ``body`` is the unstructured RunState as JSON text; the other
    # columns are copies for queries, the counters a commit moves, the ledger head
    # and the lease. ``token`` is the last fencing token handed out (0: never).
    """CREATE TABLE spindle_runs (
        run_no BIGSERIAL UNIQUE,
        run_id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        status TEXT NOT NULL,
        parent_run_id TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        wake_at TIMESTAMPTZ,
        body TEXT NOT NULL,
        step_count BIGINT NOT NULL DEFAULT 0,
        event_seq BIGINT NOT NULL DEFAULT 0,
        head_count BIGINT NOT NULL DEFAULT 0,
        head_hash TEXT NOT NULL DEFAULT '',
        state_digest TEXT,
        ledger_key_id TEXT,
        token BIGINT NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_host TEXT,
        lease_pid INTEGER,
        lease_expires_at TIMESTAMPTZ
    )""",
    # list_runs: newest first, by filter
    "CREATE INDEX spindle_runs_created ON spindle_runs (created_at DESC, run_no DESC)",
    "CREATE INDEX spindle_runs_parent ON spindle_runs (parent_run_id)"
    " WHERE parent_run_id IS NOT NULL",
    "CREATE INDEX spindle_runs_status ON spindle_runs (status, workflow)",
    # due_runs: pending runs, due timers, expired leases
    "CREATE INDEX spindle_runs_due ON spindle_runs (status, wake_at, lease_expires_at)",
    # The ledger: ``body`` is a record's canonical JSON without its hashes.
    """CREATE TABLE spindle_ledger (
        run_id TEXT NOT NULL REFERENCES spindle_runs (run_id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        idempotency_key TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        record_hash TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    # find_step: the latest record with a key
    "CREATE INDEX spindle_ledger_key ON spindle_ledger (run_id, idempotency_key, seq DESC)",
    "CREATE TABLE spindle_definitions (definition_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    """CREATE TABLE spindle_waits (
        run_id TEXT NOT NULL REFERENCES spindle_runs (run_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        since TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (run_id, key)
    )""",
    # waiting_on: the runs waiting on a key, longest first
    "CREATE INDEX spindle_waits_key ON spindle_waits (key, since, run_id)",
    """CREATE TABLE spindle_events (
        event_no BIGSERIAL PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        key TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        run_id TEXT,
        consumed_by TEXT
    )""",
    # pending_events: unconsumed events of a key, oldest first
    "CREATE INDEX spindle_events_pending ON spindle_events (key, event_no)"
    " WHERE consumed_by IS NULL",
    "CREATE TABLE spindle_blobs (digest TEXT PRIMARY KEY, data BYTEA NOT NULL)",
    """CREATE TABLE spindle_artifacts (
        ref_no BIGSERIAL PRIMARY KEY,
        run_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        name TEXT,
        media_type TEXT NOT NULL,
        size BIGINT NOT NULL
    )""",
    "CREATE UNIQUE INDEX spindle_artifacts_ref"
    " ON spindle_artifacts (run_id, digest, COALESCE(name, ''))",
    """CREATE TABLE spindle_audit (
        run_id TEXT NOT NULL REFERENCES spindle_runs (run_id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    """CREATE TABLE spindle_handoffs (
        handoff_no BIGSERIAL PRIMARY KEY,
        envelope_id TEXT NOT NULL UNIQUE,
        source_run_id TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        acknowledged_run_id TEXT,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX spindle_handoffs_source ON spindle_handoffs (source_run_id, created_at)",
)

# Version 2: work shared by workers. A queued run keeps its queue, priority and
# partition in columns (claims pick by them and count each queue's runs under a
# live lease); ``claimed_at`` is its first claim (its start, for rate limits).
# ``spindle_queues`` holds each queue's limits (its row is locked by a claim that
# takes from the queue, so concurrent claims never overrun a limit);
# ``spindle_workers`` the workers that announced themselves.
_V2: tuple[str, ...] = (
    "ALTER TABLE spindle_runs ADD COLUMN queue_name TEXT",
    "ALTER TABLE spindle_runs ADD COLUMN queue_priority INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE spindle_runs ADD COLUMN queue_partition TEXT",
    "ALTER TABLE spindle_runs ADD COLUMN claimed_at TIMESTAMPTZ",
    "CREATE INDEX spindle_runs_queue ON spindle_runs (queue_name, claimed_at)"
    " WHERE queue_name IS NOT NULL",
    "CREATE INDEX spindle_runs_pending ON spindle_runs (queue_priority DESC, created_at)"
    " WHERE status = 'pending'",
    "CREATE INDEX spindle_runs_leased ON spindle_runs (lease_owner) WHERE lease_owner IS NOT NULL",
    "CREATE TABLE spindle_queues (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE spindle_workers (worker_id TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL,"
    " body TEXT NOT NULL)",
)

# Version 3: schedules. The moving parts (the next slot not fired, the last one
# fired, paused or not) are columns, so claiming a slot is one compare-and-set
# UPDATE on ``next_slot``; the rest of a schedule is ``body`` (JSON text).
_V3: tuple[str, ...] = (
    """CREATE TABLE spindle_schedules (
        schedule_id TEXT PRIMARY KEY,
        next_slot TIMESTAMPTZ NOT NULL,
        last_slot TIMESTAMPTZ,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        body TEXT NOT NULL
    )""",
)

# Version 4: cached node results (``_cache_rows``): one row per fingerprint.
_V4: tuple[str, ...] = POSTGRES_CACHE

#: The steps from version n-1 to n (index 0 makes version 1).
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4)

#: The version this code reads and writes.
SCHEMA_VERSION = len(MIGRATIONS)


def steps_from(version: int) -> list[tuple[int, tuple[str, ...]]]:
    """The migrations to run from ``version`` to :data:`SCHEMA_VERSION`, numbered."""
    return [(n + 1, MIGRATIONS[n]) for n in range(version, SCHEMA_VERSION)]


def version_rows(rows: list[Any]) -> int:
    """The schema version a ``SELECT version FROM spindle_schema`` gave (0: none)."""
    return int(rows[0][0]) if rows else 0
