"""The store contract: every store kind must pass every test here.

The ``store`` fixture is parametrised over every kind in ``conftest.STORES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle.core.errors import ConfigError, LeaseLost, LedgerError, RunNotFound, StoreError
from spindle.core.model import (
    AuditEntry,
    HandoffEnvelope,
    LedgerHead,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
)
from spindle.core.store import Commit, Store

T0 = datetime(2030, 1, 1, tzinfo=UTC)
Chain = Callable[..., list[StepRecord]]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state(run_id: str = "r1", **changes: Any) -> RunState:
    changes.setdefault("workflow", "wf")
    changes.setdefault("created_at", T0)
    changes.setdefault("updated_at", T0)
    return RunState(run_id=run_id, **changes)


def event_wait(key: str, event_key: str, since: float = 0) -> WaitState:
    return WaitState(
        key=key, reason=WaitReason.EVENT, node_id="n", event_key=event_key, created_at=at(since)
    )


def timer_wait(due: float) -> WaitState:
    return WaitState(key="t", reason=WaitReason.TIMER, node_id="n", due_at=at(due))


async def lease(store: Store, run_id: str = "r1", owner: str = "w1", **kw: Any) -> Any:
    kw.setdefault("ttl", 30.0)
    kw.setdefault("now", T0)
    return await store.acquire_lease(run_id, owner=owner, host="h", pid=1, **kw)


# --- runs and commits -------------------------------------------------------------


async def test_created_run_loads_equal(store: Store) -> None:
    """A created run loads back equal to the committed state, with aware datetimes."""
    s = state(inputs={"who": "Ada"}, labels={"team": "x"}, waits=[timer_wait(5)])
    await store.commit(Commit(s, create=True))
    loaded = await store.load_run("r1")
    assert loaded == s
    assert loaded.created_at.tzinfo is not None
    assert loaded.waits[0].due_at == at(5)


async def test_loaded_enums_are_enum_members(store: Store, chain: Chain) -> None:
    """Loaded states and records carry enum members, not bare strings."""
    s = state(status=RunStatus.WAITING, waits=[timer_wait(1)])
    await store.commit(Commit(s, chain("r1", 1), create=True))
    loaded = await store.load_run("r1")
    (record,) = await store.ledger("r1")
    assert isinstance(loaded.status, RunStatus)
    assert isinstance(loaded.waits[0].reason, WaitReason)
    assert isinstance(record.kind, StepKind)
    assert isinstance(record.status, StepStatus)


async def test_load_unknown_run_raises(store: Store) -> None:
    """Loading an unknown run raises RunNotFound naming the run."""
    with pytest.raises(RunNotFound, match="'nope'"):
        await store.load_run("nope")


async def test_commit_unknown_run_raises(store: Store) -> None:
    """A commit without create for an unknown run raises RunNotFound."""
    with pytest.raises(RunNotFound, match="'r1'"):
        await store.commit(Commit(state()))


async def test_create_existing_run_raises(store: Store) -> None:
    """Creating a run whose id exists raises StoreError and keeps the stored state."""
    await store.commit(Commit(state(), create=True))
    with pytest.raises(StoreError, match="already exists"):
        await store.commit(Commit(state(workflow="other"), create=True))
    assert (await store.load_run("r1")).workflow == "wf"


async def test_commit_updates_state(store: Store) -> None:
    """A later commit replaces the run's state."""
    await store.commit(Commit(state(), create=True))
    await store.commit(Commit(state(status=RunStatus.COMPLETED, output=[1, "two"])))
    loaded = await store.load_run("r1")
    assert (loaded.status, loaded.output) == (RunStatus.COMPLETED, [1, "two"])


async def test_caller_mutations_do_not_reach_the_store(store: Store) -> None:
    """Mutating a committed or a loaded state never changes what the store holds."""
    s = state(inputs={"a": [1]}, waits=[timer_wait(1)])
    await store.commit(Commit(s, create=True))
    s.inputs["a"].append(2)
    s.waits.clear()
    loaded = await store.load_run("r1")
    loaded.labels["x"] = "y"
    again = await store.load_run("r1")
    assert again.inputs == {"a": [1]}
    assert len(again.waits) == 1
    assert again.labels == {}


async def test_committed_records_are_copied(store: Store, chain: Chain) -> None:
    """Mutating a committed or a returned record never changes the stored ledger."""
    records = chain("r1", 1)
    await store.commit(Commit(state(), records, create=True))
    records[0].result["seq"] = 99
    (loaded,) = await store.ledger("r1")
    loaded.result["seq"] = 98
    assert (await store.find_step("r1", records[0].idempotency_key)).result == {"seq": 0}


async def test_datetimes_round_trip_aware(store: Store, chain: Chain) -> None:
    """Datetimes of states, waits, records and leases come back equal and timezone-aware."""
    (record,) = chain("r1", 1)
    record.started_at, record.finished_at = at(1.5), at(2.000001)
    s = state(created_at=at(0.25), updated_at=at(3), waits=[timer_wait(7.125)])
    await store.commit(Commit(s, [record], create=True))
    held = await lease(store, now=at(0.000001), ttl=0.5)
    loaded = await store.load_run("r1")
    (stored,) = await store.ledger("r1")
    stamps = [
        loaded.created_at,
        loaded.updated_at,
        loaded.waits[0].due_at,
        stored.started_at,
        stored.finished_at,
        (await store.get_lease("r1")).expires_at,
    ]
    assert stamps == [at(0.25), at(3), at(7.125), at(1.5), at(2.000001), held.expires_at]
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in stamps)


async def test_records_append_in_seq_order(store: Store, chain: Chain) -> None:
    """Records committed over several commits come back in seq order with the ledger head."""
    first, second = chain("r1", 3), None
    await store.commit(Commit(state(), first[:1], create=True))
    await store.commit(Commit(state(), first[1:]))
    second = chain("r1", 2, start=3, head=first[-1].record_hash)
    await store.commit(Commit(state(), second))
    assert await store.ledger("r1") == first + second
    assert await store.ledger_head("r1") == (5, second[-1].record_hash)


async def test_new_run_has_empty_ledger(store: Store) -> None:
    """A run without records has an empty ledger and head (0, "")."""
    await store.commit(Commit(state(), create=True))
    assert await store.ledger("r1") == []
    assert await store.ledger_head("r1") == (0, "")


async def test_ledger_of_unknown_run_raises(store: Store) -> None:
    """Reading the ledger or its head of an unknown run raises RunNotFound."""
    with pytest.raises(RunNotFound):
        await store.ledger("nope")
    with pytest.raises(RunNotFound):
        await store.ledger_head("nope")


async def test_record_with_wrong_seq_raises(store: Store, chain: Chain) -> None:
    """A record that skips a seq raises LedgerError naming the run, expected and given seq."""
    records = chain("r1", 2)
    await store.commit(Commit(state(), records[:1], create=True))
    gap = chain("r1", 1, start=2, head=records[0].record_hash)
    with pytest.raises(LedgerError, match=r"'r1'.*seq 2.*expects seq 1"):
        await store.commit(Commit(state(step_count=9), gap))
    assert await store.ledger("r1") == records[:1]
    assert (await store.load_run("r1")).step_count == 1  # the store counts the ledger


async def test_repeated_seq_raises(store: Store, chain: Chain) -> None:
    """Appending a seq that already exists raises LedgerError."""
    records = chain("r1", 1)
    await store.commit(Commit(state(), records, create=True))
    with pytest.raises(LedgerError, match="expects seq 1"):
        await store.commit(Commit(state(), records))


async def test_record_with_wrong_prev_hash_raises(store: Store, chain: Chain) -> None:
    """A record that does not chain to the previous record's hash raises LedgerError."""
    await store.commit(Commit(state(), chain("r1", 1), create=True))
    broken = chain("r1", 1, start=1, head="not-the-head")
    with pytest.raises(LedgerError, match="prev_hash"):
        await store.commit(Commit(state(), broken))
    assert (await store.ledger_head("r1"))[0] == 1


async def test_first_record_must_start_the_chain(store: Store, chain: Chain) -> None:
    """A new run's first record must have seq 0 and an empty prev_hash."""
    with pytest.raises(LedgerError, match="expects seq 0"):
        await store.commit(Commit(state(), chain("r1", 1, start=1), create=True))
    with pytest.raises(LedgerError, match="prev_hash"):
        await store.commit(Commit(state(), chain("r1", 1, head="x"), create=True))
    with pytest.raises(RunNotFound):
        await store.load_run("r1")


async def test_counters_only_commits_check_the_ledger_too(store: Store, chain: Chain) -> None:
    """``state_changed=False`` commits (a store's hot path) append in order and refuse a
    gap, a repeat, a broken chain and a first record that does not start it."""
    await store.commit(Commit(state(), create=True))
    hot = {"state_changed": False}
    with pytest.raises(LedgerError, match="prev_hash"):
        await store.commit(Commit(state(), chain("r1", 1, head="x"), **hot))
    records = chain("r1", 3)
    for record in records:
        await store.commit(Commit(state(), [record], **hot))
    head = records[-1].record_hash
    with pytest.raises(LedgerError, match="expects seq 3"):
        await store.commit(Commit(state(), chain("r1", 1, start=4, head=head), **hot))
    with pytest.raises(LedgerError, match="expects seq 3"):
        await store.commit(Commit(state(), records[-1:], **hot))
    with pytest.raises(LedgerError, match="prev_hash"):
        await store.commit(Commit(state(), chain("r1", 1, start=3, head="x"), **hot))
    assert await store.ledger("r1") == records
    assert await store.ledger_head("r1") == (3, head)


async def test_counters_only_commit_with_stale_token_raises(store: Store, chain: Chain) -> None:
    """A ``state_changed=False`` commit under a lease taken over raises LeaseLost."""
    records = chain("r1", 2)
    await store.commit(Commit(state(), records[:1], create=True))
    old = await lease(store, owner="w1", ttl=1)
    await store.commit(Commit(state(), records[1:], token=old.token, state_changed=False))
    new = await lease(store, owner="w2", now=at(5))
    more = chain("r1", 1, start=2, head=records[-1].record_hash)
    with pytest.raises(LeaseLost, match=rf"token {old.token}.*current.*{new.token}"):
        await store.commit(Commit(state(), more, token=old.token, state_changed=False))
    assert await store.ledger("r1") == records


async def test_record_of_another_run_raises(store: Store, chain: Chain) -> None:
    """A record belonging to another run raises LedgerError."""
    with pytest.raises(LedgerError, match="belongs to run 'r2'"):
        await store.commit(Commit(state("r1"), chain("r2", 1), create=True))


async def test_failed_commit_writes_nothing(store: Store, chain: Chain) -> None:
    """A commit refused on its last record leaves neither the state nor earlier records."""
    await store.commit(Commit(state(), create=True))
    records = chain("r1", 3)
    records[2].prev_hash = "broken"
    with pytest.raises(LedgerError):
        await store.commit(Commit(state(status=RunStatus.RUNNING), records))
    assert (await store.load_run("r1")).status == RunStatus.PENDING
    assert await store.ledger("r1") == []
    assert await store.find_step("r1", records[0].idempotency_key) is None


async def test_find_step_returns_latest_record(store: Store, chain: Chain) -> None:
    """find_step returns the latest record with the key, and None for an unknown key."""
    records = chain("r1", 3)
    records[0].idempotency_key = records[2].idempotency_key = "same"
    await store.commit(Commit(state(), records, create=True))
    assert await store.find_step("r1", "same") == records[2]
    assert await store.find_step("r1", records[1].idempotency_key) == records[1]
    assert await store.find_step("r1", "other") is None
    assert await store.find_step("nope", "same") is None


async def test_list_runs_filters_newest_first(store: Store) -> None:
    """list_runs applies every filter and returns the newest run first."""
    runs = [
        state("a", created_at=at(1)),
        state("b", created_at=at(2), status=RunStatus.COMPLETED),
        state("c", created_at=at(3), workflow="other", parent_run_id="a"),
        state("d", created_at=at(4), parent_run_id="a"),
    ]
    for s in runs:
        await store.commit(Commit(s, create=True))

    async def ids(**filters: Any) -> list[str]:
        return [s.run_id for s in await store.list_runs(**filters)]

    assert await ids() == ["d", "c", "b", "a"]
    assert await ids(status=RunStatus.PENDING) == ["d", "c", "a"]
    assert await ids(workflow="wf") == ["d", "b", "a"]
    assert await ids(parent_run_id="a") == ["d", "c"]
    assert await ids(parent_run_id="a", workflow="wf") == ["d"]
    assert await ids(limit=2) == ["d", "c"]
    assert await store.list_runs(status=RunStatus.FAILED) == []


async def test_list_runs_reflects_status_changes(store: Store) -> None:
    """list_runs filters on the status of the latest commit."""
    await store.commit(Commit(state(), create=True))
    await store.commit(Commit(state(status=RunStatus.RUNNING)))
    assert [s.run_id for s in await store.list_runs(status=RunStatus.RUNNING)] == ["r1"]
    assert await store.list_runs(status=RunStatus.PENDING) == []


async def test_due_runs_selects_runnable_runs(store: Store) -> None:
    """due_runs lists pending runs, due timers and expired leases, the longest-due first."""
    await store.commit(Commit(state("pending", created_at=at(30)), create=True))
    await store.commit(
        Commit(state("due", status=RunStatus.WAITING, waits=[timer_wait(10)]), create=True)
    )
    await store.commit(
        Commit(state("later", status=RunStatus.WAITING, waits=[timer_wait(500)]), create=True)
    )
    await store.commit(Commit(state("event", status=RunStatus.WAITING), create=True))
    await store.commit(Commit(state("done", status=RunStatus.COMPLETED), create=True))
    for run_id, ttl in (("crashed", 20), ("alive", 1000), ("unleased", 0)):
        await store.commit(Commit(state(run_id, status=RunStatus.RUNNING), create=True))
        if ttl:
            await lease(store, run_id, ttl=ttl)
    await store.commit(Commit(state("claimed", created_at=at(1)), create=True))
    await lease(store, "claimed", ttl=1000)

    assert await store.due_runs(at(100)) == ["due", "crashed", "pending"]
    assert await store.due_runs(at(100), limit=2) == ["due", "crashed"]
    assert await store.due_runs(at(0)) == ["pending"]


async def test_due_runs_refuses_naive_time(store: Store) -> None:
    """due_runs with a naive datetime raises ValueError instead of guessing the zone."""
    with pytest.raises(ValueError, match="naive"):
        await store.due_runs(datetime(2030, 1, 1))


async def test_definitions_round_trip(store: Store) -> None:
    """A stored definition comes back equal; storing its id again keeps the first."""
    definition = {"name": "greet", "nodes": {"a": {"runtime": {"kind": "python"}}}}
    await store.put_definition("d1", definition)
    await store.put_definition("d1", {"name": "changed"})
    assert await store.get_definition("d1") == definition


async def test_unknown_definition_raises_key_error(store: Store) -> None:
    """Getting an unknown definition raises KeyError naming it."""
    with pytest.raises(KeyError, match="d9"):
        await store.get_definition("d9")


# --- fencing and leases ---------------------------------------------------------------


async def test_commit_with_current_token_succeeds(store: Store, chain: Chain) -> None:
    """A commit carrying the current lease token is written."""
    await store.commit(Commit(state(), create=True))
    held = await lease(store)
    await store.commit(Commit(state(status=RunStatus.RUNNING), chain("r1", 1), token=held.token))
    assert (await store.load_run("r1")).status == RunStatus.RUNNING


async def test_commit_with_stale_token_raises_and_writes_nothing(
    store: Store, chain: Chain
) -> None:
    """A commit with a stale fencing token raises LeaseLost and writes nothing."""
    await store.commit(Commit(state(), create=True))
    old = await lease(store, owner="w1", ttl=1)
    new = await lease(store, owner="w2", now=at(5))
    assert new.token > old.token
    with pytest.raises(LeaseLost, match=rf"'r1'.*token {old.token}.*current.*{new.token}"):
        await store.commit(Commit(state(status=RunStatus.FAILED), chain("r1", 1), token=old.token))
    assert (await store.load_run("r1")).status == RunStatus.PENDING
    assert await store.ledger("r1") == []


async def test_creating_commit_with_token_raises(store: Store) -> None:
    """Creating a run with a fencing token raises LeaseLost: a new run has no lease."""
    with pytest.raises(LeaseLost, match="token=None"):
        await store.commit(Commit(state(), create=True, token=1))


async def test_first_lease_has_token_one(store: Store) -> None:
    """The first lease of a run has token 1, its owner and expiry; get_lease returns it."""
    await store.commit(Commit(state(), create=True))
    assert await store.get_lease("r1") is None
    held = await lease(store, ttl=30)
    assert (held.owner, held.host, held.pid, held.token) == ("w1", "h", 1, 1)
    assert held.expires_at == at(30)
    assert await store.get_lease("r1") == held


async def test_live_lease_refuses_other_owner(store: Store) -> None:
    """A live lease is not given to another owner."""
    await store.commit(Commit(state(), create=True))
    await lease(store, owner="w1", ttl=30)
    assert await lease(store, owner="w2", now=at(29)) is None
    assert (await store.get_lease("r1")).owner == "w1"


async def test_expired_lease_is_taken_over(store: Store) -> None:
    """An expired lease (expires_at <= now) goes to a new owner with the next token."""
    await store.commit(Commit(state(), create=True))
    await lease(store, owner="w1", ttl=30)
    taken = await lease(store, owner="w2", now=at(30))
    assert (taken.owner, taken.token) == ("w2", 2)


async def test_same_owner_reacquires_with_new_token(store: Store) -> None:
    """The holder acquiring again gets the lease with a higher token."""
    await store.commit(Commit(state(), create=True))
    first = await lease(store)
    again = await lease(store, now=at(1))
    assert again.token == first.token + 1


async def test_steal_token_takes_a_live_lease(store: Store) -> None:
    """Naming the current token in steal_token takes a live lease; a wrong token does not."""
    await store.commit(Commit(state(), create=True))
    held = await lease(store, owner="w1", ttl=1000)
    assert await lease(store, owner="w2", steal_token=held.token + 5) is None
    stolen = await lease(store, owner="w2", steal_token=held.token)
    assert (stolen.owner, stolen.token) == ("w2", held.token + 1)


async def test_tokens_are_never_reused_after_release(store: Store) -> None:
    """Releasing a lease keeps the token counter, so the next lease gets a higher token."""
    await store.commit(Commit(state(), create=True))
    first = await lease(store)
    await store.release_lease("r1", owner="w1", token=first.token)
    assert await store.get_lease("r1") is None
    second = await lease(store, owner="w2")
    assert second.token == first.token + 1


async def test_release_by_other_owner_is_ignored(store: Store) -> None:
    """Releasing with another owner or a stale token leaves the lease in place."""
    await store.commit(Commit(state(), create=True))
    held = await lease(store)
    await store.release_lease("r1", owner="w2", token=held.token)
    await store.release_lease("r1", owner="w1", token=held.token - 1)
    assert await store.get_lease("r1") == held


async def test_renew_extends_only_our_lease(store: Store) -> None:
    """renew_lease extends the holder's lease and returns False once it was taken over."""
    await store.commit(Commit(state(), create=True))
    held = await lease(store, ttl=10)
    assert await store.renew_lease("r1", owner="w1", token=held.token, ttl=10, now=at(5))
    assert (await store.get_lease("r1")).expires_at == at(15)
    await lease(store, owner="w2", now=at(15))
    assert not await store.renew_lease("r1", owner="w1", token=held.token, ttl=10, now=at(16))
    assert not await store.renew_lease("nope", owner="w1", token=1, ttl=10, now=at(16))


async def test_lease_on_unknown_run_raises(store: Store) -> None:
    """Acquiring or reading a lease on an unknown run raises RunNotFound."""
    with pytest.raises(RunNotFound):
        await lease(store, "nope")
    with pytest.raises(RunNotFound):
        await store.get_lease("nope")


# --- inbox ---------------------------------------------------------------------------


async def test_events_are_kept_until_consumed(store: Store) -> None:
    """A delivered event stays pending, with its payload, until a commit consumes it."""
    event = await store.deliver_event("approved", {"by": "ada", "n": [1, 2]})
    assert event.created_at.tzinfo is not None
    assert len(event.event_id) == 32
    assert await store.pending_events("approved") == [event]
    await store.commit(Commit(state(), create=True, consume_events=[event.event_id]))
    assert await store.pending_events("approved") == []
    assert await store.pending_events() == []


async def test_pending_events_filter_by_key_oldest_first(store: Store) -> None:
    """pending_events lists unconsumed events of one key, or all, oldest first."""
    a1 = await store.deliver_event("a", 1)
    b1 = await store.deliver_event("b", 2)
    a2 = await store.deliver_event("a", 3)
    assert [e.event_id for e in await store.pending_events("a")] == [a1.event_id, a2.event_id]
    assert [e.payload for e in await store.pending_events()] == [1, 2, 3]
    assert b1 in await store.pending_events("b")


async def test_event_is_consumed_once(store: Store) -> None:
    """An event consumed by one run cannot be consumed by another; the same run may repeat."""
    event = await store.deliver_event("k", None)
    await store.commit(Commit(state("r1"), create=True, consume_events=[event.event_id]))
    await store.commit(Commit(state("r1"), consume_events=[event.event_id]))
    await store.commit(Commit(state("r2"), create=True))
    with pytest.raises(StoreError, match=rf"{event.event_id}.*consumed by run 'r1'"):
        await store.commit(
            Commit(state("r2", status=RunStatus.RUNNING), consume_events=[event.event_id])
        )
    assert (await store.load_run("r2")).status == RunStatus.PENDING


async def test_event_queued_for_a_run_is_offered_to_it_alone(store: Store) -> None:
    """An event queued for a run is pending for that run and hidden from every other."""
    loose = await store.deliver_event("k", 1)
    mine = await store.deliver_event("k", 2, run_id="r1")
    assert mine.run_id == "r1"
    assert await store.pending_events("k") == [loose, mine]
    assert await store.pending_events("k", for_run="r1") == [loose, mine]
    assert await store.pending_events("k", for_run="r2") == [loose]
    assert await store.pending_events(for_run="r2") == [loose]


async def test_event_queued_for_another_run_cannot_be_consumed(store: Store) -> None:
    """A run consuming an event queued for another raises StoreError and writes nothing."""
    event = await store.deliver_event("k", None, run_id="r1")
    await store.commit(Commit(state("r2"), create=True))
    with pytest.raises(StoreError, match=rf"{event.event_id}.*queued for run 'r1'.*'r2'"):
        await store.commit(
            Commit(state("r2", status=RunStatus.RUNNING), consume_events=[event.event_id])
        )
    assert (await store.load_run("r2")).status == RunStatus.PENDING
    await store.commit(Commit(state("r1"), create=True, consume_events=[event.event_id]))
    assert await store.pending_events() == []


async def test_queued_event_is_released_when_its_run_stops_waiting(store: Store) -> None:
    """An event queued for a run goes back to any run once a commit drops the run's wait
    on its key; one under a key the run still waits on stays its own."""
    waiting = [event_wait("a", "ka"), event_wait("b", "kb")]
    await store.commit(Commit(state("r1", waits=waiting), create=True))
    ka = await store.deliver_event("ka", 1, run_id="r1")
    kb = await store.deliver_event("kb", 2, run_id="r1")
    await store.commit(Commit(state("r1", waits=[event_wait("b", "kb")])))
    assert [e.event_id for e in await store.pending_events(for_run="r2")] == [ka.event_id]
    [left] = await store.pending_events("kb")
    assert (left.event_id, left.run_id) == (kb.event_id, "r1")
    await store.commit(Commit(state("r1", status=RunStatus.CANCELLED)))
    assert [e.run_id for e in await store.pending_events()] == [None, None]


async def test_queue_event_moves_a_pending_event(store: Store) -> None:
    """queue_event re-addresses a pending event, releases it with None, and leaves a
    consumed one as it is."""
    event = await store.deliver_event("k", None)
    assert await store.queue_event(event.event_id, "r1") is True
    assert await store.pending_events("k", for_run="r2") == []
    assert await store.queue_event(event.event_id, None) is True
    assert [e.event_id for e in await store.pending_events("k", for_run="r2")] == [event.event_id]
    await store.commit(Commit(state("r2"), create=True, consume_events=[event.event_id]))
    assert await store.queue_event(event.event_id, "r1") is False
    with pytest.raises(StoreError, match="'nope'"):
        await store.queue_event("nope", "r1")


async def test_consuming_unknown_event_raises(store: Store, chain: Chain) -> None:
    """Consuming an unknown event raises StoreError and the commit writes nothing."""
    await store.commit(Commit(state(), create=True))
    with pytest.raises(StoreError, match=r"'missing'.*does not exist"):
        await store.commit(Commit(state(), chain("r1", 1), consume_events=["missing"]))
    assert await store.ledger("r1") == []


async def test_unserializable_payload_raises(store: Store) -> None:
    """Delivering a payload that is not JSON data raises StoreError naming the event key."""
    with pytest.raises(StoreError, match="'k' payload"):
        await store.deliver_event("k", object())


async def test_waiting_on_follows_state_waits(store: Store) -> None:
    """waiting_on lists runs whose current state waits on the key, longest-waiting first."""
    await store.commit(Commit(state("r1", waits=[event_wait("w", "go", since=5)]), create=True))
    await store.commit(Commit(state("r2", waits=[event_wait("w", "go", since=1)]), create=True))
    await store.commit(Commit(state("r3", waits=[timer_wait(1)]), create=True))
    assert await store.waiting_on("go") == ["r2", "r1"]
    await store.commit(Commit(state("r2", waits=[event_wait("w", "stop", since=2)])))
    assert await store.waiting_on("go") == ["r1"]
    assert await store.waiting_on("stop") == ["r2"]
    await store.commit(Commit(state("r1")))
    assert await store.waiting_on("go") == []
    assert await store.waiting_on("never") == []


async def test_waiting_on_lists_a_run_once(store: Store) -> None:
    """A run with two waits on one event key is listed once."""
    waits = [event_wait("a", "go", since=3), event_wait("b", "go", since=1)]
    await store.commit(Commit(state(waits=waits), create=True))
    assert await store.waiting_on("go") == ["r1"]


# --- artifacts ---------------------------------------------------------------------------


async def test_artifact_round_trips(store: Store) -> None:
    """A put artifact comes back by digest, with its size, name and media type."""
    ref = await store.put_artifact("r1", b"hello", name="greeting.txt", media_type="text/plain")
    assert ref.digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert (ref.size, ref.name, ref.media_type) == (5, "greeting.txt", "text/plain")
    assert await store.get_artifact(ref.digest) == b"hello"
    assert await store.run_artifacts("r1") == [ref]


async def test_artifacts_dedupe_with_per_run_references(store: Store) -> None:
    """The same content put by two runs has one digest, and each run lists only its own refs."""
    a = await store.put_artifact("r1", b"data")
    a_again = await store.put_artifact("r1", b"data")
    b = await store.put_artifact("r2", b"data", name="copy")
    other = await store.put_artifact("r2", b"other")
    assert a.digest == a_again.digest == b.digest != other.digest
    assert await store.run_artifacts("r1") == [a]
    assert await store.run_artifacts("r2") == [b, other]
    assert await store.run_artifacts("r3") == []


async def test_unknown_artifact_raises_key_error(store: Store) -> None:
    """Getting unknown content, or a malformed digest, raises KeyError."""
    with pytest.raises(KeyError):
        await store.get_artifact("sha256:" + "0" * 64)
    with pytest.raises(KeyError, match="not an artifact digest"):
        await store.get_artifact("sha256:../../etc/passwd")


# --- audit and handoffs -----------------------------------------------------------------


async def test_audit_entries_in_seq_order(store: Store) -> None:
    """Audit entries come back in seq order with their data."""
    await store.commit(Commit(state(), create=True))
    second = AuditEntry(run_id="r1", seq=1, message="b", data={"k": 1}, created_at=at(2))
    first = AuditEntry(run_id="r1", seq=0, message="a", source="hook", created_at=at(1))
    await store.append_audit(second)
    await store.append_audit(first)
    assert await store.audit("r1") == [first, second]


async def test_duplicate_audit_seq_raises(store: Store) -> None:
    """An audit entry repeating a seq raises StoreError naming the run and seq."""
    await store.commit(Commit(state(), create=True))
    await store.append_audit(AuditEntry(run_id="r1", seq=0, message="a"))
    with pytest.raises(StoreError, match=r"'r1'.*seq 0"):
        await store.append_audit(AuditEntry(run_id="r1", seq=0, message="again"))


async def test_audit_of_unknown_run_raises(store: Store) -> None:
    """Auditing an unknown run raises RunNotFound."""
    with pytest.raises(RunNotFound):
        await store.append_audit(AuditEntry(run_id="nope", seq=0, message="a"))
    with pytest.raises(RunNotFound):
        await store.audit("nope")


async def test_handoffs_filter_and_acknowledge(store: Store) -> None:
    """Handoffs list oldest first, filter by source and openness, and record their taker."""
    e1 = HandoffEnvelope("e1", "r1", "next.yaml", payload={"x": 1}, created_at=at(2))
    e2 = HandoffEnvelope("e2", "r2", "next.yaml", created_at=at(1))
    e3 = HandoffEnvelope("e3", "r1", "other", created_at=at(3))
    for envelope in (e1, e2, e3):
        await store.put_handoff(envelope)
    await store.put_handoff(HandoffEnvelope("e1", "r1", "changed", created_at=at(9)))
    assert await store.handoffs() == [e2, e1, e3]
    assert await store.handoffs("r1") == [e1, e3]
    await store.ack_handoff("e1", "follow")
    await store.ack_handoff("e1", "follow")
    assert [e.envelope_id for e in await store.handoffs(open_only=True)] == ["e2", "e3"]
    assert (await store.handoffs("r1"))[0].acknowledged_run_id == "follow"
    assert [e.envelope_id for e in await store.handoffs("r1", open_only=True)] == ["e3"]


async def test_handoff_is_taken_up_once(store: Store) -> None:
    """A second run acknowledging an envelope, or an unknown envelope, raises StoreError."""
    await store.put_handoff(HandoffEnvelope("e1", "r1", "next"))
    await store.ack_handoff("e1", "a")
    with pytest.raises(StoreError, match=r"'e1'.*taken up by run 'a'"):
        await store.ack_handoff("e1", "b")
    with pytest.raises(StoreError, match="'e9'"):
        await store.ack_handoff("e9", "a")


# --- construction ---------------------------------------------------------------------------


def test_url_round_trips(make_store: Callable[[], Store]) -> None:
    """Building a store from its own URL gives an equal store."""
    built = make_store()
    assert type(built).from_url(built.url) == built


def test_url_with_another_scheme_raises(make_store: Callable[[], Store]) -> None:
    """A URL of another scheme raises ConfigError naming the expected one."""
    with pytest.raises(ConfigError, match="does not start with"):
        type(make_store()).from_url("nosuchscheme://db/x")


def with_option(url: str, option: str) -> str:
    """``url`` with one more query option (after those it has, if any)."""
    return f"{url}{'&' if '?' in url else '?'}{option}"


def test_unknown_url_option_raises(make_store: Callable[[], Store]) -> None:
    """A store URL with an unknown query option raises ConfigError naming it."""
    built = make_store()
    with pytest.raises(ConfigError, match="'colour'"):
        type(built).from_url(with_option(built.url, "colour=red"))


def test_unknown_durability_raises(make_store: Callable[[], Store]) -> None:
    """An unknown durability level raises ConfigError naming both known ones."""
    built = make_store()
    with pytest.raises(ConfigError, match=r"'sometimes'.*'normal'.*'full'"):
        type(built).from_url(with_option(built.url, "durability=sometimes"))


# --- property ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
aware = st.datetimes(timezones=st.just(UTC))
waits = st.builds(
    WaitState,
    key=st.text(max_size=5),
    reason=st.sampled_from(WaitReason),
    node_id=st.text(max_size=5),
    event_key=st.none() | st.text(max_size=5),
    due_at=st.none() | aware,
    choices=st.none() | st.lists(st.text(max_size=3), max_size=2),
    created_at=aware,
)
states = st.builds(
    RunState,
    run_id=st.just("r1"),
    workflow=st.text(max_size=8),
    status=st.sampled_from(RunStatus),
    inputs=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    output=json_values,
    error=st.none() | st.text(max_size=8),
    waits=st.lists(waits, max_size=3),
    parent_run_id=st.none() | st.text(max_size=5),
    created_at=aware,
    updated_at=aware,
    step_count=st.integers(0, 10**6),
    labels=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
record_bodies = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(StepKind),
        "status": st.sampled_from(StepStatus),
        "idempotency_key": st.text(max_size=4),
        "result": json_values,
        "started_at": st.none() | aware,
    }
)
commits = st.lists(st.tuples(states, st.lists(record_bodies, max_size=3)), min_size=1, max_size=5)


def continue_ledger(committed: list[StepRecord], bodies: list[dict[str, Any]]) -> list[StepRecord]:
    records: list[StepRecord] = []
    head = committed[-1].record_hash if committed else ""
    for body in bodies:
        seq = len(committed) + len(records)
        records.append(
            StepRecord(
                run_id="r1",
                seq=seq,
                node_id=f"n{seq}",
                prev_hash=head,
                record_hash=f"h{seq}",
                **body,
            )
        )
        head = records[-1].record_hash
    return records


@settings(
    max_examples=40,
    deadline=None,
    # The factory fixture is function-scoped on purpose: each example builds
    # its own fresh store from it, so no state leaks between examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(commits=commits)
def test_any_commit_sequence_round_trips(make_store: Callable[[], Store], commits: Any) -> None:
    """After any sequence of commits, load_run and ledger return exactly what was committed."""

    async def scenario() -> None:
        async with make_store() as store:
            committed: list[StepRecord] = []
            for i, (s, bodies) in enumerate(commits):
                records = continue_ledger(committed, bodies)
                await store.commit(Commit(s, records, create=i == 0))
                committed += records
                # step_count is the store's: the number of ledger records.
                assert await store.load_run("r1") == attrs.evolve(s, step_count=len(committed))
                assert await store.ledger("r1") == committed
                head = committed[-1].record_hash if committed else ""
                assert await store.ledger_head("r1") == (len(committed), head)
            for record in committed:
                latest = [r for r in committed if r.idempotency_key == record.idempotency_key]
                assert await store.find_step("r1", record.idempotency_key) == latest[-1]

    asyncio.run(scenario())


# --- the ledger head ----------------------------------------------------------------------


async def test_commit_writes_the_ledger_head(store: Store, chain: Chain) -> None:
    """Every commit writes the run's head (count, last hash, state digest, key id) with its
    records, and load_run and list_runs return it."""
    records = chain("r1", 3)
    await store.commit(
        Commit(state(), records[:2], create=True, state_digest="d0", ledger_key_id="k1")
    )
    loaded = await store.load_run("r1")
    assert loaded.head == LedgerHead(2, records[1].record_hash, "d0", "k1")
    await store.commit(
        Commit(state(), records[2:], state_changed=False, state_digest="d1", ledger_key_id="k1")
    )
    assert (await store.load_run("r1")).head == LedgerHead(3, records[2].record_hash, "d1", "k1")
    await store.commit(Commit(state(status=RunStatus.COMPLETED), state_digest="d2"))
    expected = LedgerHead(3, records[2].record_hash, "d2", None)
    assert (await store.load_run("r1")).head == expected
    assert [s.head for s in await store.list_runs()] == [expected]


async def test_hot_path_commits_move_the_head_each_time(store: Store, chain: Chain) -> None:
    """Counters-only commits one record at a time leave the head at the last record."""
    await store.commit(Commit(state(), create=True, state_digest="s"))
    assert (await store.load_run("r1")).head == LedgerHead(0, "", "s", None)
    records = chain("r1", 4)
    for i, record in enumerate(records):
        await store.commit(Commit(state(), [record], state_changed=False, state_digest=f"s{i}"))
        head = (await store.load_run("r1")).head
        assert head == LedgerHead(i + 1, record.record_hash, f"s{i}", None)


async def test_refused_commit_leaves_the_head(store: Store, chain: Chain) -> None:
    """A commit refused for a broken chain or a stale token leaves the head as it was."""
    records = chain("r1", 2)
    await store.commit(Commit(state(), records[:1], create=True, state_digest="a"))
    before = (await store.load_run("r1")).head
    broken = chain("r1", 1, start=1, head="not-the-head")
    for hot in (True, False):
        with pytest.raises(LedgerError):
            await store.commit(Commit(state(), broken, state_changed=not hot, state_digest="b"))
    held = await lease(store)
    await store.commit(Commit(state(), token=held.token, state_digest="a"))
    await lease(store, owner="w2", now=at(100), ttl=5)
    with pytest.raises(LeaseLost):
        await store.commit(
            Commit(state(), records[1:], token=held.token, state_changed=False, state_digest="c")
        )
    assert (await store.load_run("r1")).head == before
