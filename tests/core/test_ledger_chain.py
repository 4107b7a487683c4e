"""Keyed ledger chains, ledger heads and state digests (``spindle.core.model._chain``)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindle.core.model import (
    PLAIN_CHAIN,
    LedgerChain,
    LedgerHead,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    record_hash,
    state_hash,
    state_text,
    verify,
    verify_run,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)


def make(seq: int) -> StepRecord:
    return StepRecord(
        "run", seq, f"n{seq}", StepKind.NODE, StepStatus.COMPLETED, f"run:n{seq}", 1, {"i": seq}
    )


def written(
    n: int, chain: LedgerChain = PLAIN_CHAIN, **state: object
) -> tuple[RunState, list[StepRecord]]:
    """A run of ``n`` records as a commit leaves it: its state with its head, and its records."""
    run = RunState("run", "wf", created_at=AT, updated_at=AT, **state)  # type: ignore[arg-type]
    prev = ""
    records = []
    for i in range(n):
        records.append(chain.chain(make(i), prev))
        prev = records[-1].record_hash
    run.head = chain.head(n, prev, state_hash(run))
    return run, records


# --- the keyed chain --------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"y" * 65, b"z" * 200, "s\u00e9same"])
def test_a_keyed_hash_is_hmac_sha256_over_what_the_plain_hash_covers(key: bytes | str) -> None:
    """A keyed record hash is HMAC-SHA256 under the key of ``prev + "\\n" + body``, for
    keys shorter and longer than SHA-256's block."""
    rec = make(0)
    keyed = LedgerChain(key).record_hash(rec, "p")
    data = ("p\n" + rec.canonical_body()).encode()
    raw = key.encode() if isinstance(key, str) else key
    assert keyed == hmac.new(raw, data, hashlib.sha256).hexdigest()
    assert PLAIN_CHAIN.record_hash(rec, "p") == record_hash(rec, "p")
    assert PLAIN_CHAIN.record_hash(rec, "p") == hashlib.sha256(data).hexdigest()


def test_different_keys_give_different_hashes_and_key_ids() -> None:
    """Two keys hash the same record differently and have different key ids; no key has none."""
    one, two = LedgerChain("one"), LedgerChain(b"two")
    rec = make(0)
    assert one.record_hash(rec, "") != two.record_hash(rec, "") != PLAIN_CHAIN.record_hash(rec, "")
    assert one.key_id != two.key_id
    assert one.key_id == LedgerChain("one").key_id  # stable: the same key, the same id
    assert (PLAIN_CHAIN.key_id, LedgerChain("").key_id, LedgerChain(None).keyed) == (
        None,
        None,
        False,
    )


def test_the_key_id_does_not_reveal_the_key() -> None:
    """The key id is 16 hex digits derived with the key, not the key or its plain hash."""
    key = "s3cret"
    key_id = LedgerChain(key).key_id
    assert key_id is not None and len(key_id) == 16
    assert key not in key_id and key_id not in hashlib.sha256(key.encode()).hexdigest()


@given(st.integers(1, 8), st.text(min_size=1, max_size=20))
def test_a_keyed_chain_verifies_only_under_its_key(n: int, key: str) -> None:
    """Records chained under a key verify with that key, not as a plain chain."""
    chain = LedgerChain(key)
    run, records = written(n, chain)
    assert verify(records, chain.record_hash).ok
    assert verify_run(run, records, chain).ok
    plain = verify(records)
    assert (plain.ok, plain.first_bad_index) == (False, 0)


def test_a_recomputed_plain_chain_fails_under_the_key() -> None:
    """An edited record whose plain hashes were recomputed is caught by the keyed chain."""
    chain = LedgerChain("k")
    run, records = written(3, chain)
    records[1].result = {"i": "forged"}
    prev = ""
    for rec in records:
        PLAIN_CHAIN.chain(rec, prev)
        prev = rec.record_hash
    forged = attrs.evolve(run.head, record_hash=prev)
    run.head = forged
    found = verify_run(run, records, chain)
    assert (found.ok, found.problem, found.first_bad_index) == (False, "chain", 0)


# --- the head ---------------------------------------------------------------------------


@given(st.integers(1, 8), st.data())
def test_removing_records_from_the_end_is_truncation(n: int, data: st.DataObject) -> None:
    """Any records removed from the end of a ledger are reported against its head."""
    run, records = written(n)
    kept = data.draw(st.integers(0, n - 1))
    found = verify_run(run, records[:kept])
    assert (found.ok, found.problem, found.count) == (False, "head", kept)
    held = "none" if kept == 0 else str(kept)
    assert found.reason is not None
    assert found.reason.startswith(f"ledger of run run is truncated: its head records {n} ")
    assert found.reason.endswith(f"the ledger holds {held}")


def test_an_extra_record_is_reported() -> None:
    """A record beyond the head (chained correctly) is reported."""
    run, records = written(2)
    records.append(PLAIN_CHAIN.chain(make(2), records[-1].record_hash))
    found = verify_run(run, records)
    assert (found.ok, found.problem) == (False, "head")
    assert found.reason is not None and "has records its head does not know" in found.reason


def test_a_head_with_another_last_hash_is_reported() -> None:
    """A head whose last hash is not the ledger's is reported."""
    run, records = written(2)
    run.head = attrs.evolve(run.head, record_hash="f" * 64)
    found = verify_run(run, records)
    assert found.problem == "head"
    assert found.reason is not None and "does not match its head" in found.reason


@pytest.mark.parametrize(
    "change",
    [
        {"status": RunStatus.FAILED},
        {"output": "forged"},
        {"error": "forged"},
        {"inputs": {"who": "mallory"}},
    ],
)
def test_an_edited_state_does_not_match_its_digest(change: dict[str, object]) -> None:
    """Changing the status, output, error or inputs of a stored state is reported."""
    run, records = written(2, status=RunStatus.COMPLETED, output="ok")
    for name, value in change.items():
        setattr(run, name, value)
    found = verify_run(run, records)
    assert (found.ok, found.problem) == (False, "state")


def test_counters_are_not_part_of_the_state_digest() -> None:
    """step_count, event_seq and updated_at may move without a state digest changing."""
    run, records = written(2)
    before = state_text(run)
    run.step_count, run.event_seq, run.updated_at = 99, 7, datetime(2030, 1, 1, tzinfo=UTC)
    assert state_text(run) == before
    assert verify_run(run, records).ok


def test_a_state_digest_is_bound_to_the_ledger_position() -> None:
    """The same state digests differently after a different number of records or hash."""
    text = state_text(written(0)[0])
    assert PLAIN_CHAIN.state_digest(1, "a", text) != PLAIN_CHAIN.state_digest(2, "a", text)
    assert PLAIN_CHAIN.state_digest(1, "a", text) != PLAIN_CHAIN.state_digest(1, "b", text)


def test_a_run_without_a_head_verifies_its_chain_and_says_what_it_cannot_check() -> None:
    """A run written before heads existed verifies its chain only, with a note."""
    run, records = written(3)
    run.head = None
    found = verify_run(run, records[:2])
    assert (found.ok, found.head_recorded) == (True, False)
    assert found.notes and found.notes[0].startswith("head not recorded")


def test_a_keyed_ledger_without_the_key_is_a_key_problem_not_broken() -> None:
    """Without the key, or with another, verify says which key the ledger needs."""
    chain = LedgerChain("k")
    run, records = written(2, chain)
    missing = verify_run(run, records)
    assert (missing.ok, missing.key_problem, missing.problem) == (False, True, "key")
    assert missing.reason == (
        f"ledger of run run is keyed (key id {chain.key_id}); set SPINDLE_LEDGER_KEY to the "
        "key it was written with to verify it"
    )
    wrong = verify_run(run, records, LedgerChain("other"))
    assert wrong.key_problem and wrong.reason is not None
    assert f"keyed with key id {chain.key_id}, but SPINDLE_LEDGER_KEY has key id" in wrong.reason


def test_an_unkeyed_ledger_checked_with_a_key_notes_it() -> None:
    """A plain ledger verifies with a key set, noting that the key does not vouch for it."""
    run, records = written(2)
    found = verify_run(run, records, LedgerChain("k"))
    assert found.ok and not found.keyed
    assert any("not keyed" in note for note in found.notes)


def test_a_head_is_what_a_commit_writes() -> None:
    """LedgerChain.head carries the count, last hash, state digest and key id."""
    chain = LedgerChain("k")
    head = chain.head(3, "abc", "{}")
    assert head == LedgerHead(3, "abc", chain.state_digest(3, "abc", "{}"), chain.key_id)
