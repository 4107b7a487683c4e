"""Retention over a store: apply_retention's batches and a worker's Retention policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spindle.core.engine import Retention, apply_retention
from spindle.core.engine._retention import remove_run_dirs
from spindle.core.errors import ConfigError
from spindle.core.model import RunState, RunStatus
from spindle.core.store import Commit, PruneResult, Store
from spindle.plugins.stores.memory import MemoryStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def _store(finished: int, *, live: int = 0) -> Store:
    store = MemoryStore.from_url("memory://")
    for n in range(finished + live):
        status = RunStatus.COMPLETED if n < finished else RunStatus.WAITING
        state = RunState(run_id=f"r{n}", workflow="wf", status=status, created_at=T0, updated_at=T0)
        await store.commit(Commit(state, create=True))
    return store


def test_apply_retention_prunes_batch_after_batch_until_done() -> None:
    """Batches run until one deletes nothing; live runs stay; each batch is reported."""

    async def main() -> tuple[PruneResult, list[int], int]:
        store = await _store(7, live=2)
        seen: list[int] = []
        total = await apply_retention(
            store,
            timedelta(days=1),
            now=T0 + timedelta(days=2),
            batch=3,
            on_batch=lambda r: seen.append(r.runs),
        )
        return total, seen, len(await store.list_runs())

    total, seen, left = asyncio.run(main())
    assert total.runs == 7
    assert seen == [3, 3, 1, 0]
    assert left == 2


def test_apply_retention_stops_after_max_batches() -> None:
    """max_batches bounds a pass; the rest is left for the next one."""

    async def main() -> tuple[PruneResult, int]:
        store = await _store(7)
        total = await apply_retention(
            store, timedelta(0), now=T0 + timedelta(seconds=1), batch=2, max_batches=2
        )
        return total, len(await store.list_runs())

    assert asyncio.run(main()) == (PruneResult(runs=4), 3)


def test_apply_retention_keeps_runs_younger_than_the_age() -> None:
    """Runs updated less than ``older_than`` before ``now`` are kept."""

    async def main() -> PruneResult:
        store = await _store(3)
        return await apply_retention(store, timedelta(days=3), now=T0 + timedelta(days=2))

    assert asyncio.run(main()) == PruneResult()


def test_apply_retention_refuses_unfinished_statuses() -> None:
    """Asking to prune waiting runs raises ConfigError before anything is deleted."""

    async def main() -> None:
        store = await _store(1)
        await apply_retention(store, timedelta(0), statuses={RunStatus.WAITING})

    with pytest.raises(ConfigError, match="only finished runs"):
        asyncio.run(main())


def test_an_age_beyond_the_calendar_prunes_nothing() -> None:
    """An age longer than time itself keeps every run instead of overflowing."""

    async def main() -> PruneResult:
        store = await _store(2)
        return await apply_retention(store, timedelta(days=999_999_999), now=T0)

    assert asyncio.run(main()) == PruneResult()


def test_retention_runs_a_pass_at_most_every_interval() -> None:
    """Retention.tick prunes at once, then not again until ``every`` seconds went by."""
    clock = [100.0]

    async def main() -> list[int | None]:
        store = await _store(5)
        policy = Retention(timedelta(0), every=60.0, max_batches=1, batch=2, clock=lambda: clock[0])
        now = T0 + timedelta(seconds=1)
        done: list[int | None] = []
        for advance in (0.0, 30.0, 31.0, 1.0, 60.0):
            clock[0] += advance
            result = await policy.tick(store, now)
            done.append(None if result is None else result.runs)
        return done

    assert asyncio.run(main()) == [2, None, 2, None, 1]


def test_run_directories_of_pruned_runs_are_removed(tmp_path: Path) -> None:
    """Given run_dir, the working directories of pruned runs go; a live run's stays."""
    root = tmp_path / "runs"
    for n in range(3):
        (root / f"r{n}" / "logs").mkdir(parents=True)

    async def main() -> PruneResult:
        store = await _store(2, live=1)
        return await apply_retention(
            store, timedelta(0), now=T0 + timedelta(seconds=1), run_dir=lambda r: root / r
        )

    assert asyncio.run(main()).runs == 2
    assert sorted(p.name for p in root.iterdir()) == ["r2"]


def test_remove_run_dirs_leaves_anything_but_a_run_directory(tmp_path: Path) -> None:
    """A symlink, a file, or a path that is not the run's own directory is left alone."""
    root = tmp_path / "runs"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir()
    (root / "link").symlink_to(elsewhere)
    (root / "file").write_text("x")
    (root / "own").mkdir()
    removed = remove_run_dirs(lambda r: root / r, ["link", "file", "../elsewhere", "own", "gone"])
    assert removed == 1
    assert elsewhere.is_dir() and (root / "link").is_symlink() and (root / "file").is_file()
    assert not (root / "own").exists()
