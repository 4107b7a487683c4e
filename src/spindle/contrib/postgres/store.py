"""The ``postgresql://`` store: runs, ledgers, leases and the inbox in PostgreSQL, shared
by every process (and machine) that opens the same database.

A commit is one transaction that locks the run's row (``SELECT ... FOR
UPDATE``), checks the fencing token and that the new records continue the
ledger, and writes the row, the records, the run's open waits and the
events it consumed. Leases are taken the same way, so two workers never hold
one run; every other rule (who may take a lease, which events a run may
consume) is the one :mod:`spindle.core.store` states for every store, and the
contract suite checks it here as on the memory and SQLite stores.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from attrs import define

from spindle.contrib.postgres._base import WORK_CHANNEL, transient
from spindle.contrib.postgres._runs import LEASE_COLUMNS
from spindle.contrib.postgres._schema import SCHEMA_VERSION
from spindle.contrib.postgres._tables import Conn
from spindle.contrib.postgres._work import PostgresWork
from spindle.core.errors import ConfigError, StoreError
from spindle.core.model import RunStatus
from spindle.core.store import (
    Commit,
    check_records,
    event_waits,
    lease_lost,
    queued_elsewhere,
    run_exists,
    unconsumable,
)
from spindle.plugins.stores._common import dumps

__all__ = ["PostgresStore"]

_OPTIONS = {"durability": str, "pool_size": int, "retry_for": float}
#: libpq's connection parameters a URL may carry (passed on to the driver as they are).
_LIBPQ = frozenset(
    (
        "application_name",
        "channel_binding",
        "connect_timeout",
        "gssencmode",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "options",
        "passfile",
        "password",
        "port",
        "service",
        "sslcert",
        "sslcrl",
        "sslkey",
        "sslmode",
        "sslpassword",
        "sslrootcert",
        "target_session_attrs",
        "tcp_user_timeout",
        "user",
        "dbname",
    )
)


@define
class PostgresStore(PostgresWork, kind="postgres"):
    """Keeps runs in a PostgreSQL database that many workers and machines share.

    The URL is a libpq one (``postgresql://user:password@host:5432/db``, with
    libpq's own query options such as ``sslmode``), plus spindle's:
    ``pool_size`` (connections kept open, default 10), ``retry_for``
    (seconds a transient failure is retried, default 30) and ``durability``
    (``normal`` or ``full``: both commit synchronously; PostgreSQL's own
    ``synchronous_commit`` setting rules).

    Example::

        store = PostgresStore.from_url("postgresql://spindle@db.internal/spindle")
    """

    schema_target: ClassVar[int | None] = SCHEMA_VERSION

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """Build the store for ``postgresql://...`` (or ``postgres://``).

        Raises:
            ConfigError: another scheme, or a spindle option whose value does not parse.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres", "postgres+psycopg"):
            raise ConfigError(f"store URL {url!r} does not start with 'postgresql://'")
        ours: dict[str, Any] = {}
        theirs = []
        for name, text in parse_qsl(parts.query, keep_blank_values=True):
            parse = _OPTIONS.get(name)
            if parse is None:
                if name not in _LIBPQ:
                    known = ", ".join(sorted({*_OPTIONS, *_LIBPQ}))
                    raise ConfigError(
                        f"store URL {url!r}: unknown option {name!r}; known options: {known}"
                    )
                theirs.append((name, text))
                continue
            try:
                ours[name] = parse(text)
            except ValueError as exc:
                raise ConfigError(
                    f"store URL {url!r}: option {name}={text!r} is invalid ({exc})"
                ) from exc
        conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(theirs)))
        return cls(url=url, conninfo=conninfo, **{**ours, **options})

    # --- the commit ---------------------------------------------------------------------

    async def commit(self, commit: Commit) -> None:
        """Write the run's state, its new ledger records and consumed events in one transaction.

        A connection lost while the transaction was being committed leaves its
        outcome unknown: before trying again, the store looks at the ledger,
        and a commit that did land is not applied twice.

        Raises:
            LeaseLost: ``commit.token`` is not the run's current lease token.
            LedgerError: the records do not continue the run's ledger.
            RunNotFound: the run does not exist and ``commit.create`` is false.
            StoreError: the run already exists (``create``), an event to consume is
                unknown or consumed by another run, or the server stayed unreachable.
        """
        text = commit.state_text
        body = dumps(commit.state.to_dict()) if text is None else text
        rows = [
            (r.run_id, r.seq, r.idempotency_key, r.prev_hash, r.record_hash, r.canonical_body())
            for r in commit.records
        ]
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            try:
                await self._run(lambda conn: self._apply(conn, commit, body, rows), retry=False)
                return
            except StoreError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, psycopg.Error) and transient(cause)):
                    raise
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                if await self._landed(commit):
                    return

    async def _landed(self, commit: Commit) -> bool:
        """Whether a commit whose outcome was lost with its connection was written."""
        last = commit.records[-1] if commit.records else None
        try:
            if last is None:
                if not commit.create:
                    return False  # no records to recognise it by: writing it again is harmless
                await self.load_run(commit.state.run_id)
                return True
            found = await self._rows(
                "SELECT record_hash FROM spindle_ledger WHERE run_id = %s AND seq = %s",
                (last.run_id, last.seq),
            )
        except StoreError:
            return False
        except Exception:  # RunNotFound: the creation did not land
            return False
        return bool(found) and found[0][0] == last.record_hash

    async def _apply(
        self, conn: Conn, commit: Commit, body: str, rows: list[tuple[Any, ...]]
    ) -> None:
        state = commit.state
        run_id = state.run_id
        # The run's row, locked, with the ledger's last record (one round trip: a step
        # pays for each one it waits on).
        cur = await conn.execute(
            "SELECT r.token, tail.seq, tail.record_hash FROM spindle_runs r"
            " LEFT JOIN LATERAL (SELECT seq, record_hash FROM spindle_ledger l"
            "  WHERE l.run_id = r.run_id ORDER BY seq DESC LIMIT 1) tail ON true"
            " WHERE r.run_id = %s FOR UPDATE OF r",
            (run_id,),
        )
        row = await cur.fetchone()
        if commit.create:
            if row is not None:
                raise run_exists(run_id, self.where)
            if commit.token is not None:
                raise lease_lost(run_id, commit.token, 0, new=True)
            count, head, token = 0, "", 0
        else:
            if row is None:
                raise self._missing(run_id)
            token, last_seq, last_hash = row
            if commit.token is not None and commit.token != token:
                raise lease_lost(run_id, commit.token, token)
            if commit.lease is not None:
                raise StoreError(f"run {run_id!r}: Commit.lease is only for creating a run")
            # Checked against the ledger itself, as a store must (a hand-edited ledger
            # is refused here), not against the head on the row.
            count, head = (0, "") if last_seq is None else (last_seq + 1, last_hash)
        new_head = check_records(run_id, commit.records, count, head) if commit.records else head
        for event_id in commit.consume_events:
            await self._check_consumable(conn, event_id, run_id)
        count += len(commit.records)
        params = (
            state.workflow,
            state.status.value,
            state.parent_run_id,
            state.created_at,
            state.updated_at,
            state.wake_at,
            body,
            count,
            state.event_seq,
            count,
            new_head,
            commit.state_digest,
            commit.ledger_key_id,
        )
        # The writes go out together (pipeline mode): the transaction waits for the
        # server once for all of them, not once for each.
        async with conn.pipeline():
            if commit.create:
                lease = commit.lease
                lease_row: tuple[Any, ...] = (None, None, None, None, 0)
                if lease is not None:
                    lease_row = (lease.owner, lease.host, lease.pid, lease.expires_at, 1)
                await conn.execute(
                    "INSERT INTO spindle_runs (workflow, status, parent_run_id, created_at,"
                    " updated_at, wake_at, body, step_count, event_seq, head_count, head_hash,"
                    f" state_digest, ledger_key_id, run_id, {LEASE_COLUMNS}) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (*params, run_id, *lease_row),
                )
                spot = commit.state.queue
                if spot is not None:  # a queued run: claims read these columns
                    await conn.execute(
                        "UPDATE spindle_runs SET queue_name = %s, queue_priority = %s,"
                        " queue_partition = %s WHERE run_id = %s",
                        (spot.name, spot.priority, spot.partition, run_id),
                    )
            else:
                release = ""
                if commit.release_lease:
                    release = (
                        ", lease_owner = CASE WHEN token = %s THEN NULL ELSE lease_owner END"
                        ", lease_host = CASE WHEN token = %s THEN NULL ELSE lease_host END"
                        ", lease_pid = CASE WHEN token = %s THEN NULL ELSE lease_pid END"
                        ", lease_expires_at = CASE WHEN token = %s THEN NULL"
                        " ELSE lease_expires_at END"
                    )
                extra = (commit.token,) * 4 if commit.release_lease else ()
                if commit.state_changed:
                    await conn.execute(
                        "UPDATE spindle_runs SET workflow = %s, status = %s, parent_run_id = %s,"
                        " created_at = %s, updated_at = %s, wake_at = %s, body = %s,"
                        " step_count = %s, event_seq = %s, head_count = %s, head_hash = %s,"
                        f" state_digest = %s, ledger_key_id = %s{release} WHERE run_id = %s",
                        (*params, *extra, run_id),
                    )
                else:
                    await conn.execute(
                        "UPDATE spindle_runs SET updated_at = %s, step_count = %s, event_seq = %s,"
                        " head_count = %s, head_hash = %s, state_digest = %s, ledger_key_id = %s"
                        f"{release} WHERE run_id = %s",
                        (
                            state.updated_at,
                            count,
                            state.event_seq,
                            count,
                            new_head,
                            commit.state_digest,
                            commit.ledger_key_id,
                            *extra,
                            run_id,
                        ),
                    )
            if rows:
                async with conn.cursor() as c:
                    await c.executemany(
                        "INSERT INTO spindle_ledger (run_id, seq, idempotency_key, prev_hash,"
                        " record_hash, body) VALUES (%s, %s, %s, %s, %s, %s)",
                        rows,
                    )
            if commit.create or commit.state_changed:
                await self._set_waits(conn, run_id, event_waits(state), fresh=commit.create)
            for event_id in commit.consume_events:
                await conn.execute(
                    "UPDATE spindle_events SET consumed_by = %s WHERE event_id = %s",
                    (run_id, event_id),
                )
            if state.status == RunStatus.PENDING and (commit.create or commit.state_changed):
                # Delivered when the transaction commits: idle workers look at once.
                await conn.execute("SELECT pg_notify(%s, %s)", (WORK_CHANNEL, run_id))

    async def _check_consumable(self, conn: Conn, event_id: str, run_id: str) -> None:
        cur = await conn.execute(
            "SELECT consumed_by, run_id FROM spindle_events WHERE event_id = %s FOR UPDATE",
            (event_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise unconsumable(event_id, run_id, None, self.where)
        consumed_by, queued_for = row
        if consumed_by not in (None, run_id):
            raise unconsumable(event_id, run_id, consumed_by, self.where)
        if queued_for not in (None, run_id):
            raise queued_elsewhere(event_id, run_id, queued_for)

    async def _set_waits(
        self, conn: Conn, run_id: str, waits: dict[str, datetime], *, fresh: bool
    ) -> None:
        if not fresh:
            cur = await conn.execute(
                "SELECT key, since FROM spindle_waits WHERE run_id = %s", (run_id,)
            )
            kept = dict(await cur.fetchall())
            if kept == waits:
                return
            await conn.execute("DELETE FROM spindle_waits WHERE run_id = %s", (run_id,))
            # Events queued for this run under keys it no longer waits on go to any run.
            await conn.execute(
                "UPDATE spindle_events SET run_id = NULL WHERE run_id = %s AND consumed_by IS"
                " NULL AND NOT (key = ANY(%s))",
                (run_id, list(waits)),
            )
        if waits:
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO spindle_waits VALUES (%s, %s, %s)",
                    [(run_id, key, since) for key, since in waits.items()],
                )
