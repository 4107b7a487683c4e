"""Properties of the store contract, checked with hypothesis.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle._testing._store_helpers import (
    at,
    lease,
)
from spindle._testing._store_prune import CUTOFF, NOW, finished, prune_all
from spindle._testing._store_work import claim, queued
from spindle.core.model import (
    QueueLimits,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
)
from spindle.core.store import FINISHED, Commit, Store

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


# --- any forest of runs -----------------------------------------------------------------

#: One run: (status, updated at, index of its parent among the runs before it or
#: None, -1 for a parent that is not in the store, whether its lease is live).

run_specs = st.lists(
    st.tuples(
        st.sampled_from(RunStatus),
        st.integers(0, 200),
        st.none() | st.integers(-1, 8),
        st.booleans(),
    ),
    min_size=1,
    max_size=9,
)


def parent_of(index: int, parent: int | None) -> str | None:
    """The parent id a spec names: an earlier run, one not in the store, or none."""
    if parent is None:
        return None
    return f"r{parent}" if 0 <= parent < index else "missing"


def expected_kept(specs: list[Any], wanted: frozenset[RunStatus]) -> set[str]:
    """The runs pruning until done keeps, by the rules of ``spindle.core.store._prune``."""
    parents = {f"r{i}": parent_of(i, p) for i, (_, _, p, _) in enumerate(specs)}
    by_id = {f"r{i}": spec for i, spec in enumerate(specs)}
    children: dict[str, list[str]] = {}
    for run_id, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(run_id)

    def ok(run_id: str) -> bool:
        status, _, _, leased = by_id[run_id]
        return status in FINISHED and not leased

    def family(run_id: str) -> list[str]:
        return [run_id, *(m for c in children.get(run_id, ()) for m in family(c))]

    gone: set[str] = set()
    for run_id, (status, updated, _, _) in by_id.items():
        parent = parents[run_id]
        top = parent is None or parent not in by_id
        if top and status in wanted and updated < 100 and all(ok(m) for m in family(run_id)):
            gone.update(family(run_id))
    return set(by_id) - gone


_EXAMPLES = itertools.count()


class PropertiesContract:
    """Any commits, any forest of runs, any claims: the rules hold."""

    @settings(
        max_examples=40,
        deadline=None,
        # The factory fixture is function-scoped on purpose: each example builds
        # its own fresh store from it, so no state leaks between examples.
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(commits=commits)
    def test_any_commit_sequence_round_trips(
        self, make_store: Callable[[], Store], commits: Any
    ) -> None:
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

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(specs=run_specs, wanted=st.sets(st.sampled_from(sorted(FINISHED)), min_size=1))
    def test_any_forest_of_runs_is_pruned_by_the_rules(
        self, make_store: Callable[[], Store], specs: list[Any], wanted: set[RunStatus]
    ) -> None:
        """Whatever the runs, their parents and leases, pruning until done keeps exactly what
        the rules keep, a dry run counts what goes, and small batches never delete more."""
        statuses = frozenset(wanted)

        async def fill(store: Store) -> None:
            for i, (status, updated, parent, leased) in enumerate(specs):
                parent_id = (
                    None
                    if parent is None
                    else "missing"
                    if parent < 0 or parent >= i
                    else f"r{parent}"
                )
                await finished(store, f"r{i}", status=status, updated=updated, parent=parent_id)
                if leased:
                    await lease(store, f"r{i}", now=at(190), ttl=30.0)

        async def scenario() -> None:
            kept = expected_kept(specs, statuses)
            async with make_store() as store:
                await fill(store)
                counted = await store.prune(before=CUTOFF, now=NOW, statuses=statuses, dry_run=True)
                total = await prune_all(store, statuses=statuses, batch=50)
                assert {s.run_id for s in await store.list_runs()} == kept
                assert total == counted
                assert total.runs == len(specs) - len(kept)
            async with make_store() as store:
                await fill(store)
                await prune_all(store, statuses=statuses, batch=1)
                assert {s.run_id for s in await store.list_runs()} >= kept

        asyncio.run(scenario())

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        runs=st.lists(
            st.tuples(st.sampled_from(["q", "r", None]), st.integers(0, 3), st.sampled_from("ab")),
            min_size=1,
            max_size=12,
        ),
        rounds=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=1, max_size=6),
    )
    def test_limits_hold_whatever_the_claims(
        self,
        store: Store,
        event_loop: asyncio.AbstractEventLoop,
        runs: list[Any],
        rounds: list[Any],
    ) -> None:
        """Any mix of queued runs and claims by several owners: no run twice, and no queue
        ever over its concurrency, per-worker or partition limit."""
        tag = f"h{next(_EXAMPLES)}"  # each example's own runs, queues and owners

        async def scenario() -> None:
            # Leave earlier examples' runs (the store is shared) claimed, out of the way.
            # (A new owner each time: a per-worker limit stops any one owner.)
            for n in itertools.count():
                if not await claim(store, f"{tag}drain{n}", ttl=10_000, limit=1000):
                    break
            await store.set_queue(QueueLimits(f"{tag}q", concurrency=2, partition_concurrency=1))
            await store.set_queue(QueueLimits(f"{tag}r", per_worker=1))
            for i, (queue, priority, part) in enumerate(runs):
                name = f"{tag}{queue}" if queue else None
                await queued(
                    store, f"{tag}-{i}", name, created=i, priority=priority, partition=part
                )
            holder: dict[str, str] = {}
            for owner, limit in rounds:
                for run_id in await claim(store, f"{tag}w{owner}", limit=limit):
                    assert run_id not in holder
                    holder[run_id] = f"{tag}w{owner}"
            spots = {f"{tag}-{i}": r for i, r in enumerate(runs)}
            q_runs = [r for r in holder if spots[r][0] == "q"]
            assert len(q_runs) <= 2
            assert len({spots[r][2] for r in q_runs}) == len(q_runs)  # one per partition
            for owner in set(holder.values()):
                assert sum(1 for r, o in holder.items() if o == owner and spots[r][0] == "r") <= 1

        event_loop.run_until_complete(scenario())
