"""The ledger hash chain: canonical bodies, chaining, and verification."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from spindle.core.model import StepKind, StepRecord, StepStatus, chain, verify
from spindle.core.model._ledger import body_from_converter

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
stamps = st.none() | st.datetimes(timezones=st.just(UTC))


def make(seq: int, result: object = None, error: str | None = None) -> StepRecord:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return StepRecord(
        "run",
        seq,
        f"n{seq}",
        StepKind.NODE,
        StepStatus.COMPLETED,
        f"run:n{seq}",
        1,
        result,
        error,
        at,
        at,
    )


def chained(n: int) -> list[StepRecord]:
    records, prev = [], ""
    for i in range(n):
        rec = chain(make(i, {"i": i}), prev)
        records.append(rec)
        prev = rec.record_hash
    return records


@given(
    result=json_data,
    error=st.none() | st.text(),
    text=st.text(),
    seq=st.integers(0, 2**31),
    attempt=st.integers(1, 100),
    started=stamps,
    finished=stamps,
    at_once=st.booleans(),
    kind=st.sampled_from(StepKind),
    status=st.sampled_from(StepStatus),
)
def test_the_canonical_body_is_sorted_compact_json(
    result, error, text, seq, attempt, started, finished, at_once, kind, status
):
    """The hand-written canonical body equals json.dumps with sorted keys of the record
    (``at_once``: one datetime object for both times, as the engine records sub-steps)."""
    if at_once:
        finished = started
    rec = StepRecord(
        text,
        seq,
        text,
        kind,
        status,
        text,
        attempt,
        result,
        error,
        started,
        finished,
    )
    assert rec.canonical_body() == body_from_converter(rec)


@given(result=json_data, name=st.none() | st.text())
def test_a_named_record_body_is_canonical_and_unnamed_ones_leave_the_name_out(result, name):
    """A sub-step's name is part of the canonical body; a record without one has no key."""
    rec = make(3, result)
    rec.name = name
    body = rec.canonical_body()
    assert body == body_from_converter(rec)
    assert ('"name":' in body) == (name is not None)
    assert ("name" in rec.to_dict()) == (name is not None)


def test_records_written_before_names_existed_keep_their_hashes():
    """The body of a record without a name is byte for byte what it always was."""
    rec = make(0, {"i": 0})
    assert rec.canonical_body() == (
        '{"attempt":1,"error":null,"finished_at":"2026-01-01T00:00:00+00:00",'
        '"idempotency_key":"run:n0","kind":"node","node_id":"n0","result":{"i":0},'
        '"run_id":"run","seq":0,"started_at":"2026-01-01T00:00:00+00:00","status":"completed"}'
    )


@given(st.integers(1, 12))
def test_a_chained_ledger_verifies(n):
    """Records chained one after another verify with their count."""
    result = verify(chained(n))
    assert (result.ok, result.count, result.first_bad_index) == (True, n, None)


def test_a_changed_first_record_is_reported_at_index_0():
    """Tampering with record 0 is reported at index 0, not at a later link."""
    records = chained(5)
    records[0].result = {"i": 99}
    records[0]._canonical = None
    result = verify(records)
    assert (result.ok, result.first_bad_index) == (False, 0)
    assert "record 0 was changed" in result.reason


def test_a_changed_middle_record_is_reported_at_its_index():
    """Tampering with record 2 of 5 is reported at index 2."""
    records = chained(5)
    records[2].error = "edited"
    records[2]._canonical = None
    assert verify(records).first_bad_index == 2


def test_a_removed_record_is_reported_where_the_gap_starts():
    """Dropping a record breaks seq continuity at the index where it was."""
    records = chained(5)
    del records[1]
    result = verify(records)
    assert result.first_bad_index == 1
    assert "seq 2, expected 1" in result.reason


def test_a_first_record_with_a_previous_hash_is_reported_at_index_0():
    """Record 0 must not claim a predecessor."""
    records = chained(3)
    records[0].prev_hash = "f" * 64
    assert verify(records).first_bad_index == 0
