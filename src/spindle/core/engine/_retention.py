"""Retention: pruning finished runs batch by batch (``spindle prune``) and a worker's
policy of doing so now and then (``spindle worker --retention``).

What a batch deletes is the store's part (:class:`~spindle.core.store.PruneStore`);
this module loops over batches, yielding to the event loop between them, so
runs driven in the same process keep going while a prune runs.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from attrs import define, field

from spindle.core.model import RunStatus, utcnow
from spindle.core.store import FINISHED, PruneResult, Store, check_prune

__all__ = ["Retention", "apply_retention", "cutoff", "remove_run_dirs"]


def cutoff(now: datetime, older_than: timedelta) -> datetime:
    """``now - older_than``, or the earliest time there is when that is earlier still."""
    try:
        return now - older_than
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def remove_run_dirs(run_dir: Callable[[str], Path], run_ids: Iterable[str]) -> int:
    """Remove the working directories of pruned runs found here; how many were removed.

    Only a directory directly inside the runs root is removed (a run id never
    names a path elsewhere); what cannot be removed is left, as a prune's
    deletions in the store stand either way.
    """
    removed = 0
    for run_id in run_ids:
        path = run_dir(run_id)
        if path.name != run_id or not path.is_dir() or path.is_symlink():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += not path.exists()
    return removed


async def apply_retention(
    store: Store,
    older_than: timedelta,
    *,
    statuses: Iterable[RunStatus] = FINISHED,
    now: datetime | None = None,
    batch: int = 500,
    max_batches: int | None = None,
    on_batch: Callable[[PruneResult], None] | None = None,
    run_dir: Callable[[str], Path] | None = None,
    pause: float = 0.1,
) -> PruneResult:
    """Prune finished runs last updated more than ``older_than`` before ``now``.

    Calls :meth:`Store.prune` until a batch deletes no run, or ``max_batches``
    batches ran, and returns what they deleted together.

    Example::

        deleted = await apply_retention(store, timedelta(days=30))

    Args:
        store: an open store.
        older_than: how long a finished run is kept.
        statuses: which finished statuses to prune (default: all three).
        now: the time the age is measured from (default: the clock).
        batch: runs per batch (one short transaction each).
        max_batches: stop after this many batches (None: until done); a worker
            bounds it, so a pass never keeps it from claiming runs for long.
        on_batch: called with each batch's result (a progress display).
        run_dir: where a run's working directory is (``Engine.run_dir``): given,
            the directories of pruned runs are removed too, on this machine.
        pause: between batches, wait as long as the last batch took, up to this
            many seconds, so that commits of live runs (in any process) get
            the store in between; 0 runs batches back to back.

    Raises:
        ConfigError: a status is not a finished one, or ``batch`` < 1.
    """
    now = now if now is not None else utcnow()
    before = cutoff(now, older_than)
    wanted = check_prune(before, statuses, batch)
    total = PruneResult()
    done = 0
    while max_batches is None or done < max_batches:
        began = time.perf_counter()
        result = await store.prune(before=before, statuses=wanted, batch=batch, now=now)
        done += 1
        total += result
        if run_dir is not None and result.run_ids:
            await asyncio.to_thread(remove_run_dirs, run_dir, result.run_ids)
        if on_batch is not None:
            on_batch(result)
        if not result.runs:
            break
        # Leave the store to other writers for about as long as the batch took. A
        # SQLite writer waiting for the lock polls with sleeps of up to 100 ms:
        # batches back to back would keep taking the lock before it looks again.
        await asyncio.sleep(min(time.perf_counter() - began, pause))
    return total


@define
class Retention:
    """A worker's retention policy: a few prune batches at most every ``every`` seconds.

    Attributes:
        older_than: how long a finished run is kept.
        statuses: which finished statuses to prune.
        every: the fewest seconds between two passes.
        max_batches: batches per pass.
        batch: runs per batch.
        run_dir: where a run's working directory is, to remove pruned runs' too.
        clock: monotonic seconds (for tests).
    """

    older_than: timedelta
    statuses: frozenset[RunStatus] = FINISHED
    every: float = 60.0
    max_batches: int = 4
    batch: int = 500
    run_dir: Callable[[str], Path] | None = field(default=None, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _last: float | None = field(default=None, init=False, repr=False)

    async def tick(self, store: Store, now: datetime | None = None) -> PruneResult | None:
        """Run a pass if ``every`` seconds went by since the last one (or none ran yet).

        Returns what the pass deleted, or None when it was not time for one.
        """
        at = self.clock()
        if self._last is not None and at - self._last < self.every:
            return None
        self._last = at
        return await apply_retention(
            store,
            self.older_than,
            statuses=self.statuses,
            now=now,
            batch=self.batch,
            max_batches=self.max_batches,
            run_dir=self.run_dir,
        )
