"""Store URLs and the ledger head.

Part of :class:`spindle.testing.StoreContract`; the ``store``, ``make_store``,
``chain`` and ``event_loop`` fixtures come from there.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spindle._testing._store_helpers import (
    Chain,
    at,
    lease,
    state,
)
from spindle.core.errors import ConfigError, LeaseLost, LedgerError
from spindle.core.model import (
    LedgerHead,
    RunStatus,
)
from spindle.core.store import Commit, Store


def with_option(url: str, option: str) -> str:
    """``url`` with one more query option (after those it has, if any)."""
    return f"{url}{'&' if '?' in url else '?'}{option}"


class HeadContract:
    """A store is built from its URL and writes the ledger head with every commit."""

    # --- construction ---------------------------------------------------------------------------

    def test_url_round_trips(self, make_store: Callable[[], Store]) -> None:
        """Building a store from its own URL gives an equal store."""
        built = make_store()
        assert type(built).from_url(built.url) == built

    def test_url_with_another_scheme_raises(self, make_store: Callable[[], Store]) -> None:
        """A URL of another scheme raises ConfigError naming the expected one."""
        with pytest.raises(ConfigError, match="does not start with"):
            type(make_store()).from_url("nosuchscheme://db/x")

    def test_unknown_url_option_raises(self, make_store: Callable[[], Store]) -> None:
        """A store URL with an unknown query option raises ConfigError naming it."""
        built = make_store()
        with pytest.raises(ConfigError, match="'colour'"):
            type(built).from_url(with_option(built.url, "colour=red"))

    def test_unknown_durability_raises(self, make_store: Callable[[], Store]) -> None:
        """An unknown durability level raises ConfigError naming both known ones."""
        built = make_store()
        with pytest.raises(ConfigError, match=r"'sometimes'.*'normal'.*'full'"):
            type(built).from_url(with_option(built.url, "durability=sometimes"))

    # --- the ledger head ----------------------------------------------------------------------

    async def test_commit_writes_the_ledger_head(self, store: Store, chain: Chain) -> None:
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
        assert (await store.load_run("r1")).head == LedgerHead(
            3, records[2].record_hash, "d1", "k1"
        )
        await store.commit(Commit(state(status=RunStatus.COMPLETED), state_digest="d2"))
        expected = LedgerHead(3, records[2].record_hash, "d2", None)
        assert (await store.load_run("r1")).head == expected
        assert [s.head for s in await store.list_runs()] == [expected]

    async def test_hot_path_commits_move_the_head_each_time(
        self, store: Store, chain: Chain
    ) -> None:
        """Counters-only commits one record at a time leave the head at the last record."""
        await store.commit(Commit(state(), create=True, state_digest="s"))
        assert (await store.load_run("r1")).head == LedgerHead(0, "", "s", None)
        records = chain("r1", 4)
        for i, record in enumerate(records):
            await store.commit(Commit(state(), [record], state_changed=False, state_digest=f"s{i}"))
            head = (await store.load_run("r1")).head
            assert head == LedgerHead(i + 1, record.record_hash, f"s{i}", None)

    async def test_refused_commit_leaves_the_head(self, store: Store, chain: Chain) -> None:
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
                Commit(
                    state(), records[1:], token=held.token, state_changed=False, state_digest="c"
                )
            )
        assert (await store.load_run("r1")).head == before
