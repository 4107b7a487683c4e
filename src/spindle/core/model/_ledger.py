"""The ledger: its records and their hash chain.

A ledger is the append-only list of :class:`StepRecord` of one run.
``record_hash = sha256(prev_hash + canonical_body)`` where the body is the
record without its two hash fields, serialized with sorted keys. Editing,
removing or reordering any record breaks every later link, and
:func:`verify` reports the *first* bad index — including index 0, whose
``prev_hash`` must be empty.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import define, field

from spindle.core.model._converter import converter
from spindle.core.model._time import _CANONICAL, _ENCODE_STR, _iso, _iso_json

__all__ = [
    "LedgerVerification",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "chain",
    "normalize_result",
    "normalized",
    "record_hash",
    "verify",
]


class StepKind(enum.StrEnum):
    """What a ledger record is about."""

    NODE = "node"  # a node's final outcome
    CALL = "call"  # an effect or memoized sub-step inside a node (ctx.step, ctx.ask_user)
    RETRY = "retry"  # a failed attempt that will be retried after a durable backoff
    CALL_FAILURE = "call_failure"  # a sub-step attempt that raised (ctx.step with retry=)
    WAIT = "wait"  # a node suspended on an effect
    RESUME = "resume"  # an answer delivered to a wait
    RUN = "run"  # run-level transitions (cancelled, finished, failed)
    CACHE = "cache"  # a node's result reused from the cache (its source run and node)


class StepStatus(enum.StrEnum):
    """The outcome a ledger record states."""

    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    RETRIED = "retried"  # a run record: the ended run was opened again (spindle retry)


@define
class StepRecord:
    """One append-only ledger entry.

    ``seq`` is gap-free from 0 per run; ``record_hash`` is the SHA-256 of
    ``prev_hash`` and the record's canonical body, so any edit breaks the chain.
    ``name`` names a sub-step (``ctx.step(fn, name=...)``, else the function's
    name); records without one leave it out of their body entirely, so ledgers
    written before it existed verify unchanged. ``worker`` is the id of the
    worker whose drive wrote the record (None outside workers, left out alike).
    """

    run_id: str
    seq: int
    node_id: str
    kind: StepKind
    status: StepStatus
    idempotency_key: str
    attempt: int = 1
    result: Any = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    prev_hash: str = ""
    record_hash: str = ""
    name: str | None = None
    worker: str | None = None
    _canonical: str | None = field(default=None, init=False, eq=False, repr=False)

    def canonical_body(self) -> str:
        """The record without its hashes as canonical JSON: what ``record_hash`` covers.

        Canonical means ``json.dumps(..., sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)`` of :meth:`to_dict` minus the hashes. Stores may keep
        this text (plus the two hashes) instead of serializing the record again.
        It is computed once per record and written out field by field, because it
        runs on every durable step (a test checks it against ``json.dumps``).
        """
        body = self._canonical
        if body is None:
            enc = _ENCODE_STR
            result = self.result
            if result is None:
                result_text = "null"
            elif isinstance(result, str):
                result_text = enc(result)
            else:
                result_text = _CANONICAL(result)
            name_text = "" if self.name is None else f'"name":{enc(self.name)},'
            worker_text = "" if self.worker is None else f',"worker":{enc(self.worker)}'
            # spindle's own times are UTC datetimes: written here without a call each.
            at = self.finished_at
            finished = (
                f'"{at.isoformat()}"' if at is not None and at.tzinfo is UTC else _iso_json(at)
            )
            # A record made in one go starts and ends at one instant (the same object).
            at_start = self.started_at
            if at_start is at:
                started = finished
            elif at_start is not None and at_start.tzinfo is UTC:
                started = f'"{at_start.isoformat()}"'
            else:
                started = _iso_json(at_start)
            body = self._canonical = (
                f'{{"attempt":{self.attempt:d},'
                f'"error":{"null" if self.error is None else enc(self.error)},'
                f'"finished_at":{finished},'
                f'"idempotency_key":{enc(self.idempotency_key)},'
                f'"kind":{enc(self.kind)},'  # a StrEnum member is its value
                f"{name_text}"
                f'"node_id":{enc(self.node_id)},'
                f'"result":{result_text},'
                f'"run_id":{enc(self.run_id)},'
                f'"seq":{self.seq:d},'
                f'"started_at":{started},'
                f'"status":{enc(self.status)}'
                f"{worker_text}}}"
            )
        return body

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (what the converter gives, written out for speed:
        stores and the hash chain call this once per durable step)."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "node_id": self.node_id,
            "kind": self.kind.value,
            "status": self.status.value,
            "idempotency_key": self.idempotency_key,
            "attempt": self.attempt,
            "result": self.result,
            "error": self.error,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "prev_hash": self.prev_hash,
            "record_hash": self.record_hash,
            **({} if self.name is None else {"name": self.name}),
            **({} if self.worker is None else {"worker": self.worker}),
        }


def _unstructure_step(record: StepRecord) -> dict[str, Any]:
    return record.to_dict()


# Ledger records are written out by hand (StepRecord.to_dict): faster, and it
# leaves out the cached canonical body.
converter.register_unstructure_hook(StepRecord, _unstructure_step)


def _body(record: StepRecord) -> str:
    return record.canonical_body()


def body_from_converter(record: StepRecord) -> str:
    """The canonical body via the generic converter (the reference for :func:`_body`)."""
    data = converter.unstructure(record)
    data.pop("prev_hash", None)
    data.pop("record_hash", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: StepRecord, prev_hash: str) -> str:
    """The hash ``record`` must carry when it follows a record hashed ``prev_hash``."""
    return hashlib.sha256((prev_hash + "\n" + _body(record)).encode()).hexdigest()


def chain(record: StepRecord, prev_hash: str) -> StepRecord:
    """Set ``record``'s ``prev_hash`` and ``record_hash`` in place and return it."""
    record._canonical = None  # computed afresh from the record as it is now
    record.prev_hash = prev_hash
    record.record_hash = record_hash(record, prev_hash)
    return record


def normalize_result(value: Any) -> Any:
    """Return ``value`` as it will read back from any store (JSON round trip).

    Hashing the round-tripped form keeps verification stable when JSON changes
    a value's shape (tuples become lists, integer keys become strings).

    Raises:
        TypeError: the value cannot be represented as JSON.
    """
    return normalized(value)[0]


def normalized(value: Any) -> tuple[Any, int]:
    """:func:`normalize_result`, and the size in characters of its compact JSON text
    (-1 for a scalar, which is not encoded): the one encoding a step's result needs
    before its record is hashed, which also tells whether it is small enough to keep
    inline (see the engine's ``result_inline_limit``).

    Raises:
        TypeError: the value cannot be represented as JSON.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value, -1
    text = json.dumps(converter.unstructure(value), ensure_ascii=False, separators=(",", ":"))
    return json.loads(text), len(text)


@define
class LedgerVerification:
    """The result of verifying a ledger: ``ok``, the record ``count``, the first bad index.

    Attributes:
        ok: the ledger (and, for a whole run, its head and state) checked out.
        count: the number of records the ledger holds.
        first_bad_index: the first record that is wrong, when one is.
        reason: why it is not ok ("record 3 was changed after it was written"; for
            the other problems a whole sentence naming the run).
        problem: what is wrong: ``"chain"`` (a record or link), ``"head"`` (the
            ledger does not end where its head says), ``"state"`` (the stored
            state does not match its digest), ``"key"`` (see ``key_problem``).
        keyed: the ledger is an HMAC chain under a key.
        key_problem: the ledger could not be checked because the configured key is
            missing or another one (``reason`` says which); it is not known broken.
        head_recorded: the store keeps a ledger head for the run (stores before schema
            version 3 did not).
        notes: what was not checked, or is worth knowing, when ``ok``.
    """

    ok: bool
    count: int
    first_bad_index: int | None = None
    reason: str | None = None
    problem: str | None = None
    keyed: bool = False
    key_problem: bool = False
    head_recorded: bool = True
    notes: list[str] = field(factory=list)


def verify(
    records: Sequence[StepRecord],
    hash_record: Callable[[StepRecord, str], str] = record_hash,
) -> LedgerVerification:
    """Check ``seq`` continuity and every hash link; report the first bad index.

    ``hash_record`` computes a record's hash from the one before (a keyed
    chain's :meth:`~spindle.core.model.LedgerChain.record_hash`; plain SHA-256
    by default). This checks the chain only: :func:`~spindle.core.model.verify_run`
    also checks the run's ledger head and state.
    """
    prev = ""
    for i, rec in enumerate(records):
        if rec.seq != i:
            return LedgerVerification(
                False, len(records), i, f"record {i} has seq {rec.seq}, expected {i}", "chain"
            )
        if rec.prev_hash != prev:
            return LedgerVerification(
                False,
                len(records),
                i,
                f"record {i} does not link to the record before it",
                "chain",
            )
        if hash_record(rec, prev) != rec.record_hash:
            return LedgerVerification(
                False, len(records), i, f"record {i} was changed after it was written", "chain"
            )
        prev = rec.record_hash
    return LedgerVerification(True, len(records))
