"""Retention: ``Store.prune``.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from spindle._testing._store_helpers import (
    Chain,
    at,
    lease,
    state,
)
from spindle.core.errors import ConfigError, RunNotFound
from spindle.core.model import (
    AuditEntry,
    HandoffEnvelope,
    RunStatus,
    cancel_request_key,
)
from spindle.core.store import Commit, PruneResult, Store

CUTOFF = at(100)


NOW = at(200)


async def finished(
    store: Store,
    run_id: str,
    *,
    status: RunStatus = RunStatus.COMPLETED,
    updated: float = 10,
    parent: str | None = None,
    records: int = 0,
    chain: Chain | None = None,
) -> None:
    """Create a run in ``status`` last updated at ``at(updated)``."""
    s = state(run_id, status=status, updated_at=at(updated), parent_run_id=parent)
    ledger = chain(run_id, records) if chain is not None and records else ()
    await store.commit(Commit(s, ledger, create=True))


async def exists(store: Store, run_id: str) -> bool:
    try:
        await store.load_run(run_id)
    except RunNotFound:
        return False
    return True


async def prune_all(store: Store, **kw: object) -> PruneResult:
    """Prune batch after batch until a batch deletes no run."""
    total = PruneResult()
    while True:
        result = await store.prune(before=CUTOFF, now=NOW, **kw)  # type: ignore[arg-type]
        total += result
        if not result.runs:
            return total


class PruneContract:
    """A store prunes finished runs in bounded batches, by the rules of ``_prune``."""

    async def test_prune_deletes_finished_runs_before_the_cutoff(
        self, store: Store, chain: Chain
    ) -> None:
        """Finished runs updated before the cutoff go with their ledgers; later ones stay."""
        await finished(store, "old-done", records=3, chain=chain)
        await finished(store, "old-failed", status=RunStatus.FAILED, records=1, chain=chain)
        await finished(store, "old-cancelled", status=RunStatus.CANCELLED)
        await finished(store, "recent", updated=150, records=2, chain=chain)
        await finished(store, "at-cutoff", updated=100)
        result = await store.prune(before=CUTOFF, now=NOW)
        assert result == PruneResult(runs=3, records=4, events=0, artifacts=0)
        assert sorted(result.run_ids) == ["old-cancelled", "old-done", "old-failed"]
        assert [await exists(store, r) for r in ("old-done", "old-failed", "old-cancelled")] == [
            False,
            False,
            False,
        ]
        assert await exists(store, "recent") and await exists(store, "at-cutoff")
        assert len(await store.ledger("recent")) == 2
        with pytest.raises(RunNotFound):
            await store.ledger("old-done")

    async def test_prune_never_touches_unfinished_runs(self, store: Store) -> None:
        """Pending, running and waiting runs are kept however old they are."""
        for status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):
            await finished(store, status.value, status=status, updated=0)
        assert await prune_all(store) == PruneResult()
        for status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):
            assert (await store.load_run(status.value)).status == status

    async def test_prune_keeps_a_run_under_a_live_lease(self, store: Store) -> None:
        """A finished run whose lease is still live is kept; once it expires, it goes."""
        await finished(store, "r1")
        await lease(store, "r1", now=at(190), ttl=30.0)  # live until at(220)
        assert await store.prune(before=CUTOFF, now=NOW) == PruneResult()
        assert await exists(store, "r1")
        result = await store.prune(before=CUTOFF, now=at(221))
        assert result.runs == 1
        assert not await exists(store, "r1")

    async def test_prune_honours_the_status_filter(self, store: Store) -> None:
        """Only runs in the given finished statuses are pruned."""
        await finished(store, "done")
        await finished(store, "failed", status=RunStatus.FAILED)
        await finished(store, "cancelled", status=RunStatus.CANCELLED)
        result = await prune_all(store, statuses=frozenset({RunStatus.FAILED}))
        assert result.runs == 1
        assert not await exists(store, "failed")
        assert await exists(store, "done") and await exists(store, "cancelled")

    async def test_prune_refuses_unfinished_statuses(self, store: Store) -> None:
        """Asking to prune a status a run can leave raises ConfigError naming it."""
        with pytest.raises(ConfigError, match=r"waiting.*only finished runs"):
            await store.prune(before=CUTOFF, statuses=frozenset({RunStatus.WAITING}))

    async def test_prune_refuses_a_naive_cutoff(self, store: Store) -> None:
        """A naive cutoff raises ValueError."""
        with pytest.raises(ValueError, match="naive"):
            await store.prune(before=datetime(2030, 1, 1))

    async def test_prune_deletes_consumed_events_and_keeps_pending_ones(self, store: Store) -> None:
        """Events a pruned run consumed and requests to cancel it go; other pending events
        stay, released to any run if queued for it."""
        await finished(store, "gone", status=RunStatus.RUNNING)
        await finished(store, "kept", status=RunStatus.RUNNING, updated=150)
        used = await store.deliver_event("k", {"n": 1})
        used_by_kept = await store.deliver_event("k", {"n": 2})
        await store.commit(
            Commit(
                state("gone", status=RunStatus.COMPLETED, updated_at=at(10)),
                consume_events=[used.event_id],
            )
        )
        await store.commit(
            Commit(
                state("kept", status=RunStatus.COMPLETED, updated_at=at(150)),
                consume_events=[used_by_kept.event_id],
            )
        )
        pending = await store.deliver_event("other", {"n": 3})
        queued = await store.deliver_event("q", {"n": 4}, run_id="gone")
        await store.deliver_event(cancel_request_key("gone"), {"reason": "late"})
        await store.deliver_event(cancel_request_key("kept"), {"reason": "late"})
        result = await store.prune(before=CUTOFF, now=NOW)
        assert (result.runs, result.events) == (1, 2)
        assert await store.pending_events(cancel_request_key("gone")) == []
        left = {e.event_id for e in await store.pending_events("other")}
        left |= {e.event_id for e in await store.pending_events("q", for_run="someone")}
        assert left == {pending.event_id, queued.event_id}
        assert await store.prune(before=at(1000), now=at(1000)) == PruneResult(runs=1, events=2)

    async def test_prune_deletes_only_unreferenced_artifacts(self, store: Store) -> None:
        """Content only pruned runs referenced goes; content a kept run references stays."""
        await finished(store, "gone")
        await finished(store, "kept", updated=150)
        own = await store.put_artifact("gone", b"only mine", name="a")
        shared = await store.put_artifact("gone", b"shared", name="s")
        await store.put_artifact("kept", b"shared", name="s2")
        result = await store.prune(before=CUTOFF, now=NOW)
        assert (result.runs, result.artifacts) == (1, 1)
        with pytest.raises(KeyError):
            await store.get_artifact(own.digest)
        assert await store.get_artifact(shared.digest) == b"shared"
        assert await store.run_artifacts("gone") == []
        assert [r.digest for r in await store.run_artifacts("kept")] == [shared.digest]
        # Put again after pruning, the content is there again.
        again = await store.put_artifact("kept", b"only mine")
        assert await store.get_artifact(again.digest) == b"only mine"

    async def test_prune_deletes_audit_entries_and_handoffs(self, store: Store) -> None:
        """A pruned run's audit entries and the handoff envelopes it sent go with it."""
        await finished(store, "gone")
        await finished(store, "kept", updated=150)
        await store.append_audit(AuditEntry(run_id="gone", seq=0, message="note"))
        await store.put_handoff(
            HandoffEnvelope(envelope_id="e1", source_run_id="gone", target="wf")
        )
        await store.put_handoff(
            HandoffEnvelope(envelope_id="e2", source_run_id="kept", target="wf")
        )
        assert (await store.prune(before=CUTOFF, now=NOW)).runs == 1
        assert [h.envelope_id for h in await store.handoffs()] == ["e2"]
        with pytest.raises(RunNotFound):
            await store.audit("gone")

    async def test_prune_batches_are_bounded_and_idempotent(
        self, store: Store, chain: Chain
    ) -> None:
        """Each call deletes at most ``batch`` runs, oldest first; once done, a call deletes
        nothing."""
        for n in range(5):
            await finished(store, f"r{n}", updated=10 + n, records=1, chain=chain)
        first = await store.prune(before=CUTOFF, now=NOW, batch=2)
        assert first == PruneResult(runs=2, records=2)
        rest = await prune_all(store, batch=2)
        assert rest == PruneResult(runs=3, records=3)
        assert await store.list_runs() == []
        assert await store.prune(before=CUTOFF, now=NOW, batch=2) == PruneResult()

    async def test_prune_takes_children_with_their_parent(self, store: Store) -> None:
        """A finished parent goes with its finished children (and grandchildren)."""
        await finished(store, "parent", updated=50)
        await finished(store, "child", parent="parent", updated=40)
        await finished(store, "grandchild", status=RunStatus.FAILED, parent="child", updated=30)
        result = await store.prune(
            before=CUTOFF, now=NOW, statuses=frozenset({RunStatus.COMPLETED})
        )
        assert result.runs == 3
        assert await store.list_runs() == []

    async def test_prune_keeps_a_family_with_a_live_member(self, store: Store) -> None:
        """A parent with a live child is kept, and a child is never pruned without its parent."""
        await finished(store, "parent", updated=50)
        await finished(store, "live", status=RunStatus.RUNNING, parent="parent")
        await finished(store, "waiting-parent", status=RunStatus.WAITING)
        await finished(store, "done-child", parent="waiting-parent")
        assert await prune_all(store) == PruneResult()
        assert len(await store.list_runs()) == 4

    async def test_dry_run_counts_and_deletes_nothing(self, store: Store, chain: Chain) -> None:
        """A dry run counts everything pruning would delete, past one batch, and deletes nothing."""
        for n in range(3):
            await finished(store, f"r{n}", records=2, chain=chain)
            await store.put_artifact(f"r{n}", f"blob {n}".encode())
        counted = await store.prune(before=CUTOFF, now=NOW, batch=1, dry_run=True)
        assert counted == PruneResult(runs=3, records=6, events=0, artifacts=3)
        assert len(await store.list_runs()) == 3
        assert await prune_all(store, batch=1) == counted
