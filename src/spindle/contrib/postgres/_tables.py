"""The PostgreSQL store's tables beside runs and ledgers: definitions, artifacts, the
inbox, audit entries and handoffs. Each write is one transaction (``_run``)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from attrs import define

from spindle.contrib.postgres._base import WORK_CHANNEL, PostgresBase
from spindle.core.errors import StoreError
from spindle.core.model import ArtifactRef, AuditEntry, HandoffEnvelope, converter, utcnow
from spindle.core.store import (
    InboxEvent,
    artifact_digest,
    check_ack,
    digest_hex,
    new_event,
    no_event,
)
from spindle.plugins.stores._common import dumps, to_json

__all__ = ["PostgresTables"]

Conn = psycopg.AsyncConnection[Any]

_EVENT_COLUMNS = "event_id, key, payload, received_at, run_id, consumed_by"


def _event(row: Any) -> InboxEvent:
    event_id, key, payload, received_at, run_id, consumed_by = row
    return InboxEvent(
        event_id=event_id,
        key=key,
        payload=json.loads(payload),
        created_at=received_at,
        consumed_by=consumed_by,
        run_id=run_id,
    )


@define
class PostgresTables(PostgresBase):
    """The side tables of a PostgreSQL store (``PostgresStore`` adds runs and the commit)."""

    async def _rows(self, sql: str, params: Any = (), *, run_id: str | None = None) -> list[Any]:
        async def read(conn: Conn) -> list[Any]:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

        return await self._run(read, run_id=run_id)

    async def _exists(self, conn: Conn, run_id: str) -> None:
        cur = await conn.execute("SELECT 1 FROM spindle_runs WHERE run_id = %s", (run_id,))
        if await cur.fetchone() is None:
            raise self._missing(run_id)

    # --- definitions -----------------------------------------------------------------------

    async def put_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Keep a definition under its content id; the first one stored wins."""
        text = to_json(definition, f"definition {definition_id!r}")
        await self._rows(
            "INSERT INTO spindle_definitions VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (definition_id, text),
        )

    async def get_definition(self, definition_id: str) -> dict[str, Any]:
        """Return a stored definition. Raises ``KeyError``."""
        rows = await self._rows(
            "SELECT body FROM spindle_definitions WHERE definition_id = %s", (definition_id,)
        )
        if not rows:
            raise KeyError(f"no workflow definition {definition_id!r} in {self.where}")
        return json.loads(rows[0][0])  # type: ignore[no-any-return]

    # --- artifacts -------------------------------------------------------------------------

    async def put_artifact(
        self,
        run_id: str,
        data: bytes,
        *,
        name: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        """Keep ``data`` once per digest and reference it from ``run_id``."""
        digest = artifact_digest(data)

        async def put(conn: Conn) -> None:
            # The key-share lock holds off pruning the content until this reference is
            # committed; content pruned before it was taken is written again.
            for _ in range(2):
                await conn.execute(
                    "INSERT INTO spindle_blobs VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (digest, bytes(data)),
                )
                cur = await conn.execute(
                    "SELECT 1 FROM spindle_blobs WHERE digest = %s FOR KEY SHARE", (digest,)
                )
                if await cur.fetchone() is not None:
                    break
            await conn.execute(
                "INSERT INTO spindle_artifacts (run_id, digest, name, media_type, size)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, digest, COALESCE(name, ''))"
                " DO UPDATE SET media_type = EXCLUDED.media_type, size = EXCLUDED.size",
                (run_id, digest, name, media_type, len(data)),
            )

        await self._run(put, run_id=run_id)
        return ArtifactRef(digest=digest, size=len(data), media_type=media_type, name=name)

    async def get_artifact(self, digest: str) -> bytes:
        """The content with this digest. Raises ``KeyError``."""
        digest_hex(digest)
        rows = await self._rows("SELECT data FROM spindle_blobs WHERE digest = %s", (digest,))
        if not rows:
            raise KeyError(f"no artifact {digest} in {self.where}")
        return bytes(rows[0][0])

    async def run_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The artifacts ``run_id`` references, in the order they were first put."""
        rows = await self._rows(
            "SELECT digest, size, media_type, name FROM spindle_artifacts WHERE run_id = %s"
            " ORDER BY ref_no",
            (run_id,),
        )
        return [ArtifactRef(digest=d, size=s, media_type=m, name=n) for d, s, m, n in rows]

    # --- inbox -----------------------------------------------------------------------------

    async def deliver_event(
        self, key: str, payload: Any, *, run_id: str | None = None
    ) -> InboxEvent:
        """Keep an event under ``key`` (for ``run_id``, if given) until a run consumes it."""
        text = to_json(payload, f"event {key!r} payload")
        event = new_event(key, json.loads(text), utcnow(), run_id)

        async def deliver(conn: Conn) -> None:
            await conn.execute(
                f"INSERT INTO spindle_events ({_EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, NULL)",
                (event.event_id, key, text, event.created_at, run_id),
            )
            await conn.execute("SELECT pg_notify(%s, %s)", (WORK_CHANNEL, key))

        await self._run(deliver)
        return event

    async def pending_events(
        self, key: str | None = None, *, for_run: str | None = None
    ) -> list[InboxEvent]:
        """Unconsumed events (of ``key``, or all; those ``for_run`` may take), oldest first."""
        where = ["consumed_by IS NULL"]
        params: list[Any] = []
        if key is not None:
            where.append("key = %s")
            params.append(key)
        if for_run is not None:
            where.append("(run_id IS NULL OR run_id = %s)")
            params.append(for_run)
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM spindle_events WHERE {' AND '.join(where)}"
            " ORDER BY event_no"
        )
        return [_event(row) for row in await self._rows(sql, params)]

    async def queue_event(self, event_id: str, run_id: str | None) -> bool:
        """Queue a pending event for ``run_id`` (None: any run); False if consumed."""

        async def queue(conn: Conn) -> bool:
            cur = await conn.execute(
                "SELECT consumed_by FROM spindle_events WHERE event_id = %s FOR UPDATE",
                (event_id,),
            )
            row = await cur.fetchone()
            if row is None:
                raise no_event(event_id, self.where)
            if row[0] is not None:
                return False
            await conn.execute(
                "UPDATE spindle_events SET run_id = %s WHERE event_id = %s", (run_id, event_id)
            )
            return True

        return await self._run(queue)

    async def waiting_on(self, event_key: str) -> list[str]:
        """Runs with an open wait on ``event_key``, the longest-waiting first."""
        rows = await self._rows(
            "SELECT run_id FROM spindle_waits WHERE key = %s ORDER BY since, run_id", (event_key,)
        )
        return [r[0] for r in rows]

    # --- audit and handoffs -----------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        """Persist an audit entry.

        Raises:
            RunNotFound: no such run.
            StoreError: the run already has an entry with this ``seq``.
        """
        body = dumps(converter.unstructure(entry))

        async def append(conn: Conn) -> None:
            await self._exists(conn, entry.run_id)
            cur = await conn.execute(
                "INSERT INTO spindle_audit VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (entry.run_id, entry.seq, body),
            )
            if await cur.fetchone() is None:
                raise StoreError(
                    f"run {entry.run_id!r} already has audit entry seq {entry.seq}; number "
                    "audit entries from the run's audit_seq"
                )

        await self._run(append, run_id=entry.run_id)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries in ``seq`` order. Raises ``RunNotFound``."""

        async def read(conn: Conn) -> list[Any]:
            await self._exists(conn, run_id)
            cur = await conn.execute(
                "SELECT seq, body FROM spindle_audit WHERE run_id = %s ORDER BY seq", (run_id,)
            )
            return list(await cur.fetchall())

        rows = await self._run(read, run_id=run_id)
        return [
            self._structure(b, AuditEntry, f"audit entry {s} of run {run_id!r}") for s, b in rows
        ]

    async def put_handoff(self, envelope: HandoffEnvelope) -> None:
        """Persist an envelope; storing the same envelope id again keeps the first."""
        body = to_json(converter.unstructure(envelope), f"handoff {envelope.envelope_id!r}")
        await self._rows(
            "INSERT INTO spindle_handoffs (envelope_id, source_run_id, created_at,"
            " acknowledged_run_id, body) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
            " RETURNING 1",
            (
                envelope.envelope_id,
                envelope.source_run_id,
                envelope.created_at,
                envelope.acknowledged_run_id,
                body,
            ),
        )

    async def ack_handoff(self, envelope_id: str, run_id: str) -> None:
        """Record that run ``run_id`` took the envelope up (idempotent for that run).

        Raises:
            StoreError: no such envelope, or another run already acknowledged it.
        """

        async def ack(conn: Conn) -> None:
            cur = await conn.execute(
                "SELECT acknowledged_run_id FROM spindle_handoffs WHERE envelope_id = %s"
                " FOR UPDATE",
                (envelope_id,),
            )
            row = await cur.fetchone()
            if row is None:
                raise StoreError(f"no handoff envelope {envelope_id!r} in {self.where}")
            check_ack(envelope_id, row[0], run_id)
            await conn.execute(
                "UPDATE spindle_handoffs SET acknowledged_run_id = %s WHERE envelope_id = %s",
                (run_id, envelope_id),
            )

        await self._run(ack)

    async def handoffs(
        self, source_run_id: str | None = None, *, open_only: bool = False
    ) -> list[HandoffEnvelope]:
        """Envelopes (of one source run, or all), oldest first."""
        where, params = [], []
        if source_run_id is not None:
            where.append("source_run_id = %s")
            params.append(source_run_id)
        if open_only:
            where.append("acknowledged_run_id IS NULL")
        sql = (
            "SELECT envelope_id, acknowledged_run_id, body FROM spindle_handoffs"
            f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY created_at, handoff_no"
        )
        out = []
        for envelope_id, acked, body in await self._rows(sql, params):
            envelope = self._structure(body, HandoffEnvelope, f"handoff {envelope_id!r}")
            envelope.acknowledged_run_id = acked
            out.append(envelope)
        return out
