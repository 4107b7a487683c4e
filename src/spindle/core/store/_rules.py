"""Rules every store applies the same way, written once.

Stores keep their data differently, but they must refuse the same commits
with the same errors and agree on what a lease allows, what an artifact
digest is and which event keys a run waits on. Those rules live here, in
the kernel, so the memory, SQLite and PostgreSQL stores (and third-party
ones) only translate them into their own storage.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from spindle.core.errors import ConfigError, LeaseLost, LedgerError, StoreError
from spindle.core.model import Lease, RunState, StepRecord
from spindle.core.store._contract import InboxEvent

__all__ = [
    "DURABILITIES",
    "artifact_digest",
    "check_ack",
    "check_aware",
    "check_durability",
    "check_records",
    "digest_hex",
    "event_waits",
    "from_epoch",
    "lease_expiry",
    "lease_lost",
    "may_acquire",
    "new_event",
    "run_exists",
    "unconsumable",
]

#: The durability levels every store accepts (see ``Store.durability``).
DURABILITIES = ("normal", "full")


_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def check_durability(durability: str, where: str) -> None:
    """Refuse a durability level no store knows.

    Raises:
        ConfigError: ``durability`` is not one of :data:`DURABILITIES`.
    """
    if durability not in DURABILITIES:
        raise ConfigError(
            f"store {where}: unknown durability {durability!r}; use 'normal' (survives a "
            "killed process) or 'full' (fsync every commit, survives power loss)"
        )


def check_records(run_id: str, records: Sequence[StepRecord], count: int, head: str) -> str:
    """Check that ``records`` continue a ledger of ``count`` records ending in ``head``.

    Returns:
        The ``record_hash`` of the last record: the ledger's new head.

    Raises:
        LedgerError: a record belongs to another run, skips or repeats a
            ``seq``, or does not chain to the previous record's hash.
    """
    for record in records:
        if record.run_id != run_id:
            raise LedgerError(
                f"run {run_id!r}: ledger record seq {record.seq} belongs to run "
                f"{record.run_id!r}; commit each run's records with its own state"
            )
        if record.seq != count:
            raise LedgerError(
                f"run {run_id!r}: ledger record has seq {record.seq} but the ledger expects "
                f"seq {count}; number new records from ledger_head() so they continue it"
            )
        if record.prev_hash != head:
            raise LedgerError(
                f"run {run_id!r}: ledger record seq {record.seq} has prev_hash "
                f"{record.prev_hash!r} but the previous record's hash is {head!r}; "
                "chain new records from ledger_head()"
            )
        count += 1
        head = record.record_hash
    return head


def run_exists(run_id: str, where: str) -> StoreError:
    """The error for creating a run whose id is taken."""
    return StoreError(
        f"run {run_id!r} already exists in {where}; commit with create=False to update it, "
        "or pick a new run id"
    )


def lease_lost(run_id: str, token: int, current: int, *, new: bool = False) -> LeaseLost:
    """The error for a commit whose fencing token is not the run's current one."""
    if new:
        return LeaseLost(
            f"run {run_id!r} is being created, so it cannot hold lease token {token}; "
            "create it with token=None and acquire a lease afterwards"
        )
    return LeaseLost(
        f"run {run_id!r}: fencing token {token} is stale (the current lease token is "
        f"{current}); another process took the run over, so this one must stop driving it"
    )


def unconsumable(event_id: str, run_id: str, consumed_by: str | None, where: str) -> StoreError:
    """The error for consuming an unknown event, or one another run consumed."""
    if consumed_by is None:
        return StoreError(
            f"run {run_id!r} consumes inbox event {event_id!r}, which does not exist in "
            f"{where}; consume only ids returned by pending_events()"
        )
    return StoreError(
        f"inbox event {event_id!r} was already consumed by run {consumed_by!r}; "
        f"run {run_id!r} cannot consume it too"
    )


def check_ack(envelope_id: str, acknowledged: str | None, run_id: str) -> None:
    """Refuse a second follow-on run for a handoff envelope.

    Raises:
        StoreError: another run already acknowledged the envelope.
    """
    if acknowledged not in (None, run_id):
        raise StoreError(
            f"handoff envelope {envelope_id!r} was already taken up by run {acknowledged!r}; "
            f"run {run_id!r} cannot take it up too"
        )


def event_waits(state: RunState) -> dict[str, datetime]:
    """The event keys ``state`` waits on, each with when its earliest wait began.

    This is what :meth:`~spindle.core.store.InboxStore.waiting_on` answers
    from; stores keep it beside the run and rewrite it in the commit
    transaction, so the answer never needs a scan of run states.
    """
    keys: dict[str, datetime] = {}
    for wait in state.waits:
        key = wait.event_key
        if key is not None and (key not in keys or wait.created_at < keys[key]):
            keys[key] = wait.created_at
    return keys


def new_event(
    key: str, payload: Any, created_at: datetime, run_id: str | None = None
) -> InboxEvent:
    """An inbox event with a fresh unique id (queued for ``run_id``, if given)."""
    return InboxEvent(
        event_id=uuid.uuid4().hex, key=key, payload=payload, created_at=created_at, run_id=run_id
    )


def may_take(event: InboxEvent, run_id: str | None) -> bool:
    """Whether ``run_id`` may take ``event``: it is queued for that run, or for no run
    (None asks for every event)."""
    return run_id is None or event.run_id is None or event.run_id == run_id


def queued_elsewhere(event_id: str, run_id: str, queued_for: str) -> StoreError:
    """The error for consuming an event queued for another run."""
    return StoreError(
        f"inbox event {event_id!r} is queued for run {queued_for!r}; run {run_id!r} cannot "
        f"consume it (take only events pending_events(for_run=...) returns)"
    )


def no_event(event_id: str, where: str) -> StoreError:
    """The error for queuing an event that does not exist."""
    return StoreError(f"there is no inbox event {event_id!r} in {where}")


#
# Who may take a lease: nobody holds it, the holder's lease expired
# (``expires_at <= now``), the caller already holds it, or the caller names the
# current token in ``steal_token``. Every acquisition takes the next token of
# the run's counter, which starts at 1 and survives releases, so a token is
# never handed out twice and a commit can be fenced by comparing tokens alone.


def check_aware(now: datetime) -> datetime:
    """Return ``now`` if it is timezone-aware.

    Raises:
        ValueError: ``now`` is naive; its meaning would depend on the local zone.
    """
    if now.tzinfo is None:
        raise ValueError(f"time {now!r} is naive; pass an aware UTC datetime (spindle.utcnow())")
    return now


def lease_expiry(now: datetime, ttl: float) -> datetime:
    """When a lease taken at ``now`` for ``ttl`` seconds runs out (``now`` must be aware)."""
    return check_aware(now) + timedelta(seconds=ttl)


def may_acquire(lease: Lease | None, *, owner: str, now: datetime, steal_token: int | None) -> bool:
    """Whether ``owner`` may take a run whose current lease is ``lease`` (rule above)."""
    return (
        lease is None
        or lease.expires_at <= now
        or lease.owner == owner
        or (steal_token is not None and lease.token == steal_token)
    )


def from_epoch(seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds (how stores keep times in columns)."""
    return datetime.fromtimestamp(seconds, UTC)


def artifact_digest(data: bytes) -> str:
    """The content address of ``data``: ``"sha256:<hex>"``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of a well-formed digest.

    Raises:
        KeyError: ``digest`` is not ``"sha256:"`` and 64 lowercase hex digits
            (checked strictly, since the hex becomes part of a file path).
    """
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise KeyError(
            f"{digest!r} is not an artifact digest; expected 'sha256:' and 64 hex digits "
            "as returned by put_artifact()"
        )
    return match.group(1)
