"""Runs, commits, the ledger, listings, due runs and definitions.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

# The tests read fields of values they just wrote (``(await store.get_lease(r)).owner``):
# a None there fails the test with an AttributeError, which is what it should do.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from spindle._testing._store_helpers import (
    Chain,
    at,
    lease,
    state,
    timer_wait,
)
from spindle.core.errors import LeaseLost, LedgerError, RunNotFound, StoreError
from spindle.core.model import (
    RunStatus,
    StepKind,
    StepStatus,
    WaitReason,
)
from spindle.core.store import Commit, Store


class RunsContract:
    """A store keeps runs and their ledgers, commits atomically and lists them."""

    # --- runs and commits -------------------------------------------------------------

    async def test_created_run_loads_equal(self, store: Store) -> None:
        """A created run loads back equal to the committed state, with aware datetimes."""
        s = state(inputs={"who": "Ada"}, labels={"team": "x"}, waits=[timer_wait(5)])
        await store.commit(Commit(s, create=True))
        loaded = await store.load_run("r1")
        assert loaded == s
        assert loaded.created_at.tzinfo is not None
        assert loaded.waits[0].due_at == at(5)

    async def test_loaded_enums_are_enum_members(self, store: Store, chain: Chain) -> None:
        """Loaded states and records carry enum members, not bare strings."""
        s = state(status=RunStatus.WAITING, waits=[timer_wait(1)])
        await store.commit(Commit(s, chain("r1", 1), create=True))
        loaded = await store.load_run("r1")
        (record,) = await store.ledger("r1")
        assert isinstance(loaded.status, RunStatus)
        assert isinstance(loaded.waits[0].reason, WaitReason)
        assert isinstance(record.kind, StepKind)
        assert isinstance(record.status, StepStatus)

    async def test_load_unknown_run_raises(self, store: Store) -> None:
        """Loading an unknown run raises RunNotFound naming the run."""
        with pytest.raises(RunNotFound, match="'nope'"):
            await store.load_run("nope")

    async def test_commit_unknown_run_raises(self, store: Store) -> None:
        """A commit without create for an unknown run raises RunNotFound."""
        with pytest.raises(RunNotFound, match="'r1'"):
            await store.commit(Commit(state()))

    async def test_create_existing_run_raises(self, store: Store) -> None:
        """Creating a run whose id exists raises StoreError and keeps the stored state."""
        await store.commit(Commit(state(), create=True))
        with pytest.raises(StoreError, match="already exists"):
            await store.commit(Commit(state(workflow="other"), create=True))
        assert (await store.load_run("r1")).workflow == "wf"

    async def test_commit_updates_state(self, store: Store) -> None:
        """A later commit replaces the run's state."""
        await store.commit(Commit(state(), create=True))
        await store.commit(Commit(state(status=RunStatus.COMPLETED, output=[1, "two"])))
        loaded = await store.load_run("r1")
        assert (loaded.status, loaded.output) == (RunStatus.COMPLETED, [1, "two"])

    async def test_caller_mutations_do_not_reach_the_store(self, store: Store) -> None:
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

    async def test_committed_records_are_copied(self, store: Store, chain: Chain) -> None:
        """Mutating a committed or a returned record never changes the stored ledger."""
        records = chain("r1", 1)
        await store.commit(Commit(state(), records, create=True))
        records[0].result["seq"] = 99
        (loaded,) = await store.ledger("r1")
        loaded.result["seq"] = 98
        assert (await store.find_step("r1", records[0].idempotency_key)).result == {"seq": 0}

    async def test_datetimes_round_trip_aware(self, store: Store, chain: Chain) -> None:
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

    async def test_records_append_in_seq_order(self, store: Store, chain: Chain) -> None:
        """Records committed over several commits come back in seq order with the ledger head."""
        first, second = chain("r1", 3), None
        await store.commit(Commit(state(), first[:1], create=True))
        await store.commit(Commit(state(), first[1:]))
        second = chain("r1", 2, start=3, head=first[-1].record_hash)
        await store.commit(Commit(state(), second))
        assert await store.ledger("r1") == first + second
        assert await store.ledger_head("r1") == (5, second[-1].record_hash)

    async def test_new_run_has_empty_ledger(self, store: Store) -> None:
        """A run without records has an empty ledger and head (0, "")."""
        await store.commit(Commit(state(), create=True))
        assert await store.ledger("r1") == []
        assert await store.ledger_head("r1") == (0, "")

    async def test_ledger_of_unknown_run_raises(self, store: Store) -> None:
        """Reading the ledger or its head of an unknown run raises RunNotFound."""
        with pytest.raises(RunNotFound):
            await store.ledger("nope")
        with pytest.raises(RunNotFound):
            await store.ledger_head("nope")

    async def test_record_with_wrong_seq_raises(self, store: Store, chain: Chain) -> None:
        """A record that skips a seq raises LedgerError naming the run, expected and given seq."""
        records = chain("r1", 2)
        await store.commit(Commit(state(), records[:1], create=True))
        gap = chain("r1", 1, start=2, head=records[0].record_hash)
        with pytest.raises(LedgerError, match=r"'r1'.*seq 2.*expects seq 1"):
            await store.commit(Commit(state(step_count=9), gap))
        assert await store.ledger("r1") == records[:1]
        assert (await store.load_run("r1")).step_count == 1  # the store counts the ledger

    async def test_repeated_seq_raises(self, store: Store, chain: Chain) -> None:
        """Appending a seq that already exists raises LedgerError."""
        records = chain("r1", 1)
        await store.commit(Commit(state(), records, create=True))
        with pytest.raises(LedgerError, match="expects seq 1"):
            await store.commit(Commit(state(), records))

    async def test_record_with_wrong_prev_hash_raises(self, store: Store, chain: Chain) -> None:
        """A record that does not chain to the previous record's hash raises LedgerError."""
        await store.commit(Commit(state(), chain("r1", 1), create=True))
        broken = chain("r1", 1, start=1, head="not-the-head")
        with pytest.raises(LedgerError, match="prev_hash"):
            await store.commit(Commit(state(), broken))
        assert (await store.ledger_head("r1"))[0] == 1

    async def test_first_record_must_start_the_chain(self, store: Store, chain: Chain) -> None:
        """A new run's first record must have seq 0 and an empty prev_hash."""
        with pytest.raises(LedgerError, match="expects seq 0"):
            await store.commit(Commit(state(), chain("r1", 1, start=1), create=True))
        with pytest.raises(LedgerError, match="prev_hash"):
            await store.commit(Commit(state(), chain("r1", 1, head="x"), create=True))
        with pytest.raises(RunNotFound):
            await store.load_run("r1")

    async def test_counters_only_commits_check_the_ledger_too(
        self, store: Store, chain: Chain
    ) -> None:
        """``state_changed=False`` commits (a store's hot path) append in order and refuse a
        gap, a repeat, a broken chain and a first record that does not start it."""
        await store.commit(Commit(state(), create=True))
        hot: dict[str, Any] = {"state_changed": False}
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

    async def test_counters_only_commit_with_stale_token_raises(
        self, store: Store, chain: Chain
    ) -> None:
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

    async def test_record_of_another_run_raises(self, store: Store, chain: Chain) -> None:
        """A record belonging to another run raises LedgerError."""
        with pytest.raises(LedgerError, match="belongs to run 'r2'"):
            await store.commit(Commit(state("r1"), chain("r2", 1), create=True))

    async def test_step_with_a_record_of_another_run_raises(
        self, store: Store, chain: Chain
    ) -> None:
        """A counters-only step of a run the store committed last, carrying another run's
        record where the ledger goes on, raises LedgerError and writes nothing."""
        records = chain("r1", 1)
        await store.commit(Commit(state(), records, create=True))
        foreign = chain("r2", 2)[1:]
        foreign[0].prev_hash = records[0].record_hash
        with pytest.raises(LedgerError, match="belongs to run 'r2'"):
            await store.commit(Commit(state(), foreign, state_changed=False))
        assert await store.ledger("r1") == records
        assert await store.ledger_head("r1") == (1, records[0].record_hash)

    async def test_failed_commit_writes_nothing(self, store: Store, chain: Chain) -> None:
        """A commit refused on its last record leaves neither the state nor earlier records."""
        await store.commit(Commit(state(), create=True))
        records = chain("r1", 3)
        records[2].prev_hash = "broken"
        with pytest.raises(LedgerError):
            await store.commit(Commit(state(status=RunStatus.RUNNING), records))
        assert (await store.load_run("r1")).status == RunStatus.PENDING
        assert await store.ledger("r1") == []
        assert await store.find_step("r1", records[0].idempotency_key) is None

    async def test_find_step_returns_latest_record(self, store: Store, chain: Chain) -> None:
        """find_step returns the latest record with the key, and None for an unknown key."""
        records = chain("r1", 3)
        records[0].idempotency_key = records[2].idempotency_key = "same"
        await store.commit(Commit(state(), records, create=True))
        assert await store.find_step("r1", "same") == records[2]
        assert await store.find_step("r1", records[1].idempotency_key) == records[1]
        assert await store.find_step("r1", "other") is None
        assert await store.find_step("nope", "same") is None

    async def test_list_runs_filters_newest_first(self, store: Store) -> None:
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

    async def test_list_runs_reflects_status_changes(self, store: Store) -> None:
        """list_runs filters on the status of the latest commit."""
        await store.commit(Commit(state(), create=True))
        await store.commit(Commit(state(status=RunStatus.RUNNING)))
        assert [s.run_id for s in await store.list_runs(status=RunStatus.RUNNING)] == ["r1"]
        assert await store.list_runs(status=RunStatus.PENDING) == []

    async def test_due_runs_selects_runnable_runs(self, store: Store) -> None:
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

    async def test_due_runs_refuses_naive_time(self, store: Store) -> None:
        """due_runs with a naive datetime raises ValueError instead of guessing the zone."""
        with pytest.raises(ValueError, match="naive"):
            await store.due_runs(datetime(2030, 1, 1))

    async def test_definitions_round_trip(self, store: Store) -> None:
        """A stored definition comes back equal; storing its id again keeps the first."""
        definition = {"name": "greet", "nodes": {"a": {"runtime": {"kind": "python"}}}}
        await store.put_definition("d1", definition)
        await store.put_definition("d1", {"name": "changed"})
        assert await store.get_definition("d1") == definition

    async def test_unknown_definition_raises_key_error(self, store: Store) -> None:
        """Getting an unknown definition raises KeyError naming it."""
        with pytest.raises(KeyError, match="d9"):
            await store.get_definition("d9")
