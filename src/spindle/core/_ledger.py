"""The ledger's hash chain: building records and verifying a run's chain.

``record_hash = sha256(prev_hash + canonical_body)`` where the body is the
record without its two hash fields, serialized with sorted keys. Editing,
removing or reordering any record breaks every later link, and
:func:`verify` reports the *first* bad index — including index 0, whose
``prev_hash`` must be empty.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from attrs import define

from spindle.core._converter import converter
from spindle.core._models import StepRecord

__all__ = ["LedgerVerification", "chain", "normalize_result", "record_hash", "verify"]


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
    if value is None or isinstance(value, str | bool | int | float):
        return value
    unstructured = converter.unstructure(value)
    return json.loads(json.dumps(unstructured, ensure_ascii=False))


@define
class LedgerVerification:
    """The result of :func:`verify`: ``ok``, the record ``count``, the first bad index."""

    ok: bool
    count: int
    first_bad_index: int | None = None
    reason: str | None = None


def verify(records: Sequence[StepRecord]) -> LedgerVerification:
    """Check ``seq`` continuity and every hash link; report the first bad index."""
    prev = ""
    for i, rec in enumerate(records):
        if rec.seq != i:
            return LedgerVerification(
                False, len(records), i, f"record {i} has seq {rec.seq}, expected {i}"
            )
        if rec.prev_hash != prev:
            return LedgerVerification(
                False, len(records), i, f"record {i} does not link to the record before it"
            )
        if record_hash(rec, prev) != rec.record_hash:
            return LedgerVerification(
                False, len(records), i, f"record {i} was changed after it was written"
            )
        prev = rec.record_hash
    return LedgerVerification(True, len(records))
