"""The SQLite store's tables beside runs and ledgers: definitions, artifacts, the inbox,
audit entries and handoffs.

Each write is one transaction, made through ``_transact``: in the caller, or
with group commit in the writer thread's next batch (see ``_sqlite_group``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from attrs import define

from spindle.core.errors import StoreError
from spindle.core.model import ArtifactRef, AuditEntry, HandoffEnvelope, converter, utcnow
from spindle.core.store import (
    InboxEvent,
    artifact_digest,
    check_ack,
    digest_hex,
    from_epoch,
    new_event,
    no_event,
)
from spindle.plugins.stores._common import dumps, to_json, write_atomically
from spindle.plugins.stores._sqlite_base import SQLiteBase
from spindle.plugins.stores._sqlite_errors import file_failure

__all__ = ["SQLiteTables"]


@define
class SQLiteTables(SQLiteBase):
    """The side tables of a SQLite store (``SQLiteCommitter`` adds the commit)."""

    # --- definitions ---------------------------------------------------------------------------

    async def put_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Keep a definition under its content id; the first one stored wins."""
        text = to_json(definition, f"definition {definition_id!r}")
        sql = "INSERT OR IGNORE INTO definitions VALUES (?, ?)"
        await self._execute(sql, (definition_id, text))

    async def get_definition(self, definition_id: str) -> dict[str, Any]:
        """Return a stored definition. Raises ``KeyError``."""
        rows = self._read("SELECT body FROM definitions WHERE definition_id = ?", (definition_id,))
        if not rows:
            raise KeyError(f"no workflow definition {definition_id!r} in SQLite store {self.path}")
        return json.loads(rows[0][0])  # type: ignore[no-any-return]

    # --- artifacts -----------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        hexdigest = digest_hex(digest)
        return self.artifacts_dir / "sha256" / hexdigest[:2] / hexdigest

    async def put_artifact(
        self,
        run_id: str,
        data: bytes,
        *,
        name: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        """Write ``data`` once per digest and reference it from ``run_id``.

        The file is written before the reference, so a reference never points
        at missing content (a crash in between leaves an unreferenced file,
        which the next put of that content uses); the reference's transaction
        writes the file again if pruning removed it since (see ``_sqlite_prune``).
        """
        digest = artifact_digest(data)
        target = self._blob_path(digest)
        if not target.exists():
            try:
                write_atomically(target, data, fsync=self.durability == "full")
            except OSError as exc:
                raise file_failure(exc, self.path, f"artifact {target}", run_id=run_id) from exc

        def reference(conn: sqlite3.Connection) -> None:
            # Under the write lock, which pruning holds while it sets unreferenced
            # content aside: content pruned since it was looked at is written again.
            if not target.exists():
                try:
                    write_atomically(target, data, fsync=self.durability == "full")
                except OSError as exc:
                    raise file_failure(exc, self.path, f"artifact {target}", run_id=run_id) from exc
            conn.execute(
                "INSERT INTO artifacts (run_id, digest, name, size, media_type)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, digest, ifnull(name, x''))"
                " DO UPDATE SET media_type = excluded.media_type",
                (run_id, digest, name, len(data), media_type),
            )

        await self._transact(reference, run_id)
        return ArtifactRef(digest=digest, size=len(data), media_type=media_type, name=name)

    async def get_artifact(self, digest: str) -> bytes:
        """The content with this digest. Raises ``KeyError``."""
        path = self._blob_path(digest)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no artifact {digest} in {self.artifacts_dir}") from None
        except OSError as exc:
            raise file_failure(exc, self.path, f"artifact {path}", reading=True) from exc

    async def run_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The artifacts ``run_id`` references, in the order they were first put."""
        rows = self._read(
            "SELECT digest, size, media_type, name FROM artifacts WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        return [ArtifactRef(digest=d, size=s, media_type=m, name=n) for d, s, m, n in rows]

    # --- inbox ---------------------------------------------------------------------------------

    async def deliver_event(
        self, key: str, payload: Any, *, run_id: str | None = None
    ) -> InboxEvent:
        """Keep an event under ``key`` (for ``run_id``, if given) until a run consumes it."""
        text = to_json(payload, f"event {key!r} payload")
        event = new_event(key, json.loads(text), utcnow(), run_id)
        await self._execute(
            "INSERT INTO inbox (event_id, key, payload, created_at, run_id) VALUES (?, ?, ?, ?, ?)",
            (event.event_id, key, text, event.created_at.timestamp(), run_id),
        )
        return event

    async def pending_events(
        self, key: str | None = None, *, for_run: str | None = None
    ) -> list[InboxEvent]:
        """Unconsumed events (of ``key``, or all; those ``for_run`` may take), oldest first."""
        sql = (
            "SELECT event_id, key, payload, created_at, run_id FROM inbox WHERE consumed_by IS NULL"
        )
        args: list[Any] = []
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        if for_run is not None:
            sql += " AND (run_id IS NULL OR run_id = ?)"
            args.append(for_run)
        return [
            InboxEvent(event_id=e, key=k, payload=json.loads(p), created_at=from_epoch(t), run_id=r)
            for e, k, p, t, r in self._read(sql + " ORDER BY id", tuple(args))
        ]

    async def queue_event(self, event_id: str, run_id: str | None) -> bool:
        """Queue a pending event for ``run_id`` (None: any run); False if consumed."""

        def queue(conn: sqlite3.Connection) -> bool:
            found = conn.execute(
                "SELECT consumed_by FROM inbox WHERE event_id = ?", (event_id,)
            ).fetchone()
            if found is None:
                raise no_event(event_id, f"SQLite store {self.path}")
            if found[0] is not None:
                return False
            conn.execute("UPDATE inbox SET run_id = ? WHERE event_id = ?", (run_id, event_id))
            return True

        return await self._transact(queue, run_id)

    async def waiting_on(self, event_key: str) -> list[str]:
        """Runs with an open wait on ``event_key``, the longest-waiting first."""
        rows = self._read(
            "SELECT run_id FROM waits WHERE event_key = ? ORDER BY since, run_id", (event_key,)
        )
        return [run_id for (run_id,) in rows]

    # --- audit and handoffs --------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        """Persist an audit entry.

        Raises:
            RunNotFound: no such run.
            StoreError: the run already has an entry with this ``seq``.
        """
        body = dumps(converter.unstructure(entry, AuditEntry))

        def append(conn: sqlite3.Connection) -> None:
            self._must_exist(conn, entry.run_id)
            try:
                conn.execute("INSERT INTO audit VALUES (?, ?, ?)", (entry.run_id, entry.seq, body))
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"run {entry.run_id!r} already has audit entry seq {entry.seq}; number "
                    "audit entries from the run's audit_seq"
                ) from None

        await self._transact(append, entry.run_id)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries in ``seq`` order. Raises ``RunNotFound``."""
        rows = self._read("SELECT seq, body FROM audit WHERE run_id = ? ORDER BY seq", (run_id,))
        if not rows:
            self._check_run(run_id)
        what = f"audit entry of run {run_id!r} seq"
        return [self._structure(body, AuditEntry, f"{what} {seq}") for seq, body in rows]

    async def put_handoff(self, envelope: HandoffEnvelope) -> None:
        """Persist an envelope; storing the same envelope id again keeps the first."""
        body = to_json(envelope, f"handoff {envelope.envelope_id!r}")
        await self._execute(
            "INSERT OR IGNORE INTO handoffs (envelope_id, source_run_id, created_at,"
            " acknowledged_run_id, body) VALUES (?, ?, ?, ?, ?)",
            (
                envelope.envelope_id,
                envelope.source_run_id,
                envelope.created_at.timestamp(),
                envelope.acknowledged_run_id,
                body,
            ),
        )

    async def ack_handoff(self, envelope_id: str, run_id: str) -> None:
        """Record that run ``run_id`` took the envelope up (idempotent for that run).

        Raises:
            StoreError: no such envelope, or another run already acknowledged it.
        """

        def ack(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT acknowledged_run_id FROM handoffs WHERE envelope_id = ?", (envelope_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no handoff envelope {envelope_id!r} in SQLite store {self.path}")
            check_ack(envelope_id, row[0], run_id)
            conn.execute(
                "UPDATE handoffs SET acknowledged_run_id = ? WHERE envelope_id = ?",
                (run_id, envelope_id),
            )

        await self._transact(ack)

    async def handoffs(
        self, source_run_id: str | None = None, *, open_only: bool = False
    ) -> list[HandoffEnvelope]:
        """Envelopes (of one source run, or all), oldest first."""
        where = ["source_run_id = :source"] if source_run_id is not None else []
        if open_only:
            where.append("acknowledged_run_id IS NULL")
        sql = (
            "SELECT envelope_id, acknowledged_run_id, body FROM handoffs"
            f" {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY created_at, id"
        )
        found = []
        for envelope_id, acknowledged, body in self._read(sql, {"source": source_run_id}):
            envelope = self._structure(body, HandoffEnvelope, f"handoff {envelope_id!r}")
            envelope.acknowledged_run_id = acknowledged
            found.append(envelope)
        return found
