"""Lease tokens, leases, the event inbox, artifacts, audit entries and handoffs.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

# The tests read fields of values they just wrote (``(await store.get_lease(r)).owner``):
# a None there fails the test with an AttributeError, which is what it should do.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

import pytest

from spindle._testing._store_helpers import (
    Chain,
    at,
    event_wait,
    lease,
    state,
    timer_wait,
)
from spindle.core.errors import LeaseLost, RunNotFound, StoreError
from spindle.core.model import (
    AuditEntry,
    HandoffEnvelope,
    RunStatus,
)
from spindle.core.store import Commit, Store


class LeasesContract:
    """A store fences commits by lease token and keeps inbox, artifacts, audit and handoffs."""

    # --- fencing and leases ---------------------------------------------------------------

    async def test_commit_with_current_token_succeeds(self, store: Store, chain: Chain) -> None:
        """A commit carrying the current lease token is written."""
        await store.commit(Commit(state(), create=True))
        held = await lease(store)
        await store.commit(
            Commit(state(status=RunStatus.RUNNING), chain("r1", 1), token=held.token)
        )
        assert (await store.load_run("r1")).status == RunStatus.RUNNING

    async def test_commit_with_stale_token_raises_and_writes_nothing(
        self, store: Store, chain: Chain
    ) -> None:
        """A commit with a stale fencing token raises LeaseLost and writes nothing."""
        await store.commit(Commit(state(), create=True))
        old = await lease(store, owner="w1", ttl=1)
        new = await lease(store, owner="w2", now=at(5))
        assert new.token > old.token
        with pytest.raises(LeaseLost, match=rf"'r1'.*token {old.token}.*current.*{new.token}"):
            await store.commit(
                Commit(state(status=RunStatus.FAILED), chain("r1", 1), token=old.token)
            )
        assert (await store.load_run("r1")).status == RunStatus.PENDING
        assert await store.ledger("r1") == []

    async def test_creating_commit_with_token_raises(self, store: Store) -> None:
        """Creating a run with a fencing token raises LeaseLost: a new run has no lease."""
        with pytest.raises(LeaseLost, match="token=None"):
            await store.commit(Commit(state(), create=True, token=1))

    async def test_creating_an_existing_run_with_a_token_says_it_exists(self, store: Store) -> None:
        """A creating commit with a token, of a run that exists, is refused as a run that
        exists (the error every store gives a second creation), and changes nothing."""
        await store.commit(Commit(state(), create=True))
        with pytest.raises(StoreError, match="already exists") as raised:
            await store.commit(Commit(state(status=RunStatus.FAILED), create=True, token=1))
        assert not isinstance(raised.value, LeaseLost)
        assert (await store.load_run("r1")).status == RunStatus.PENDING

    async def test_first_lease_has_token_one(self, store: Store) -> None:
        """The first lease of a run has token 1, its owner and expiry; get_lease returns it."""
        await store.commit(Commit(state(), create=True))
        assert await store.get_lease("r1") is None
        held = await lease(store, ttl=30)
        assert (held.owner, held.host, held.pid, held.token) == ("w1", "h", 1, 1)
        assert held.expires_at == at(30)
        assert await store.get_lease("r1") == held

    async def test_live_lease_refuses_other_owner(self, store: Store) -> None:
        """A live lease is not given to another owner."""
        await store.commit(Commit(state(), create=True))
        await lease(store, owner="w1", ttl=30)
        assert await lease(store, owner="w2", now=at(29)) is None
        assert (await store.get_lease("r1")).owner == "w1"

    async def test_expired_lease_is_taken_over(self, store: Store) -> None:
        """An expired lease (expires_at <= now) goes to a new owner with the next token."""
        await store.commit(Commit(state(), create=True))
        await lease(store, owner="w1", ttl=30)
        taken = await lease(store, owner="w2", now=at(30))
        assert (taken.owner, taken.token) == ("w2", 2)

    async def test_same_owner_reacquires_with_new_token(self, store: Store) -> None:
        """The holder acquiring again gets the lease with a higher token."""
        await store.commit(Commit(state(), create=True))
        first = await lease(store)
        again = await lease(store, now=at(1))
        assert again.token == first.token + 1

    async def test_steal_token_takes_a_live_lease(self, store: Store) -> None:
        """Naming the current token in steal_token takes a live lease; a wrong token does not."""
        await store.commit(Commit(state(), create=True))
        held = await lease(store, owner="w1", ttl=1000)
        assert await lease(store, owner="w2", steal_token=held.token + 5) is None
        stolen = await lease(store, owner="w2", steal_token=held.token)
        assert (stolen.owner, stolen.token) == ("w2", held.token + 1)

    async def test_tokens_are_never_reused_after_release(self, store: Store) -> None:
        """Releasing a lease keeps the token counter, so the next lease gets a higher token."""
        await store.commit(Commit(state(), create=True))
        first = await lease(store)
        await store.release_lease("r1", owner="w1", token=first.token)
        assert await store.get_lease("r1") is None
        second = await lease(store, owner="w2")
        assert second.token == first.token + 1

    async def test_release_by_other_owner_is_ignored(self, store: Store) -> None:
        """Releasing with another owner or a stale token leaves the lease in place."""
        await store.commit(Commit(state(), create=True))
        held = await lease(store)
        await store.release_lease("r1", owner="w2", token=held.token)
        await store.release_lease("r1", owner="w1", token=held.token - 1)
        assert await store.get_lease("r1") == held

    async def test_renew_extends_only_our_lease(self, store: Store) -> None:
        """renew_lease extends the holder's lease and returns False once it was taken over."""
        await store.commit(Commit(state(), create=True))
        held = await lease(store, ttl=10)
        assert await store.renew_lease("r1", owner="w1", token=held.token, ttl=10, now=at(5))
        assert (await store.get_lease("r1")).expires_at == at(15)
        await lease(store, owner="w2", now=at(15))
        assert not await store.renew_lease("r1", owner="w1", token=held.token, ttl=10, now=at(16))
        assert not await store.renew_lease("nope", owner="w1", token=1, ttl=10, now=at(16))

    async def test_lease_on_unknown_run_raises(self, store: Store) -> None:
        """Acquiring or reading a lease on an unknown run raises RunNotFound."""
        with pytest.raises(RunNotFound):
            await lease(store, "nope")
        with pytest.raises(RunNotFound):
            await store.get_lease("nope")

    # --- inbox ---------------------------------------------------------------------------

    async def test_events_are_kept_until_consumed(self, store: Store) -> None:
        """A delivered event stays pending, with its payload, until a commit consumes it."""
        event = await store.deliver_event("approved", {"by": "ada", "n": [1, 2]})
        assert event.created_at.tzinfo is not None
        assert len(event.event_id) == 32
        assert await store.pending_events("approved") == [event]
        await store.commit(Commit(state(), create=True, consume_events=[event.event_id]))
        assert await store.pending_events("approved") == []
        assert await store.pending_events() == []

    async def test_pending_events_filter_by_key_oldest_first(self, store: Store) -> None:
        """pending_events lists unconsumed events of one key, or all, oldest first."""
        a1 = await store.deliver_event("a", 1)
        b1 = await store.deliver_event("b", 2)
        a2 = await store.deliver_event("a", 3)
        assert [e.event_id for e in await store.pending_events("a")] == [a1.event_id, a2.event_id]
        assert [e.payload for e in await store.pending_events()] == [1, 2, 3]
        assert b1 in await store.pending_events("b")

    async def test_event_is_consumed_once(self, store: Store) -> None:
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

    async def test_event_queued_for_a_run_is_offered_to_it_alone(self, store: Store) -> None:
        """An event queued for a run is pending for that run and hidden from every other."""
        loose = await store.deliver_event("k", 1)
        mine = await store.deliver_event("k", 2, run_id="r1")
        assert mine.run_id == "r1"
        assert await store.pending_events("k") == [loose, mine]
        assert await store.pending_events("k", for_run="r1") == [loose, mine]
        assert await store.pending_events("k", for_run="r2") == [loose]
        assert await store.pending_events(for_run="r2") == [loose]

    async def test_event_queued_for_another_run_cannot_be_consumed(self, store: Store) -> None:
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

    async def test_queued_event_is_released_when_its_run_stops_waiting(self, store: Store) -> None:
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

    async def test_queue_event_moves_a_pending_event(self, store: Store) -> None:
        """queue_event re-addresses a pending event, releases it with None, and leaves a
        consumed one as it is."""
        event = await store.deliver_event("k", None)
        assert await store.queue_event(event.event_id, "r1") is True
        assert await store.pending_events("k", for_run="r2") == []
        assert await store.queue_event(event.event_id, None) is True
        assert [e.event_id for e in await store.pending_events("k", for_run="r2")] == [
            event.event_id
        ]
        await store.commit(Commit(state("r2"), create=True, consume_events=[event.event_id]))
        assert await store.queue_event(event.event_id, "r1") is False
        with pytest.raises(StoreError, match="'nope'"):
            await store.queue_event("nope", "r1")

    async def test_consuming_unknown_event_raises(self, store: Store, chain: Chain) -> None:
        """Consuming an unknown event raises StoreError and the commit writes nothing."""
        await store.commit(Commit(state(), create=True))
        with pytest.raises(StoreError, match=r"'missing'.*does not exist"):
            await store.commit(Commit(state(), chain("r1", 1), consume_events=["missing"]))
        assert await store.ledger("r1") == []

    async def test_unserializable_payload_raises(self, store: Store) -> None:
        """Delivering a payload that is not JSON data raises StoreError naming the event key."""
        with pytest.raises(StoreError, match="'k' payload"):
            await store.deliver_event("k", object())

    async def test_waiting_on_follows_state_waits(self, store: Store) -> None:
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

    async def test_waiting_on_lists_a_run_once(self, store: Store) -> None:
        """A run with two waits on one event key is listed once."""
        waits = [event_wait("a", "go", since=3), event_wait("b", "go", since=1)]
        await store.commit(Commit(state(waits=waits), create=True))
        assert await store.waiting_on("go") == ["r1"]

    # --- artifacts ---------------------------------------------------------------------------

    async def test_artifact_round_trips(self, store: Store) -> None:
        """A put artifact comes back by digest, with its size, name and media type."""
        ref = await store.put_artifact("r1", b"hello", name="greeting.txt", media_type="text/plain")
        assert (
            ref.digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        )
        assert (ref.size, ref.name, ref.media_type) == (5, "greeting.txt", "text/plain")
        assert await store.get_artifact(ref.digest) == b"hello"
        assert await store.run_artifacts("r1") == [ref]

    async def test_artifacts_dedupe_with_per_run_references(self, store: Store) -> None:
        """The same content put by two runs has one digest, and each run lists only its own refs."""
        a = await store.put_artifact("r1", b"data")
        a_again = await store.put_artifact("r1", b"data")
        b = await store.put_artifact("r2", b"data", name="copy")
        other = await store.put_artifact("r2", b"other")
        assert a.digest == a_again.digest == b.digest != other.digest
        assert await store.run_artifacts("r1") == [a]
        assert await store.run_artifacts("r2") == [b, other]
        assert await store.run_artifacts("r3") == []

    async def test_unknown_artifact_raises_key_error(self, store: Store) -> None:
        """Getting unknown content, or a malformed digest, raises KeyError."""
        with pytest.raises(KeyError):
            await store.get_artifact("sha256:" + "0" * 64)
        with pytest.raises(KeyError, match="not an artifact digest"):
            await store.get_artifact("sha256:../../etc/passwd")

    # --- audit and handoffs -----------------------------------------------------------------

    async def test_audit_entries_in_seq_order(self, store: Store) -> None:
        """Audit entries come back in seq order with their data."""
        await store.commit(Commit(state(), create=True))
        second = AuditEntry(run_id="r1", seq=1, message="b", data={"k": 1}, created_at=at(2))
        first = AuditEntry(run_id="r1", seq=0, message="a", source="hook", created_at=at(1))
        await store.append_audit(second)
        await store.append_audit(first)
        assert await store.audit("r1") == [first, second]

    async def test_duplicate_audit_seq_raises(self, store: Store) -> None:
        """An audit entry repeating a seq raises StoreError naming the run and seq."""
        await store.commit(Commit(state(), create=True))
        await store.append_audit(AuditEntry(run_id="r1", seq=0, message="a"))
        with pytest.raises(StoreError, match=r"'r1'.*seq 0"):
            await store.append_audit(AuditEntry(run_id="r1", seq=0, message="again"))

    async def test_audit_of_unknown_run_raises(self, store: Store) -> None:
        """Auditing an unknown run raises RunNotFound."""
        with pytest.raises(RunNotFound):
            await store.append_audit(AuditEntry(run_id="nope", seq=0, message="a"))
        with pytest.raises(RunNotFound):
            await store.audit("nope")

    async def test_handoffs_filter_and_acknowledge(self, store: Store) -> None:
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

    async def test_handoff_is_taken_up_once(self, store: Store) -> None:
        """A second run acknowledging an envelope, or an unknown envelope, raises StoreError."""
        await store.put_handoff(HandoffEnvelope("e1", "r1", "next"))
        await store.ack_handoff("e1", "a")
        with pytest.raises(StoreError, match=r"'e1'.*taken up by run 'a'"):
            await store.ack_handoff("e1", "b")
        with pytest.raises(StoreError, match="'e9'"):
            await store.ack_handoff("e9", "a")
