"""The memory store's retention: :meth:`MemoryPrune.prune` (the rules are in
``spindle.core.store._prune``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from attrs import define

from spindle.core.model import RunStatus, utcnow
from spindle.core.store import FINISHED, PruneResult, cancel_keys, check_aware, check_prune
from spindle.plugins.stores._memory_base import MemoryBase, RunEntry

__all__ = ["MemoryPrune"]


@define
class MemoryPrune(MemoryBase):
    """The memory store's dicts, and pruning them (``MemoryStore`` adds the rest)."""

    async def prune(
        self,
        *,
        before: datetime,
        statuses: Iterable[RunStatus] = FINISHED,
        batch: int = 500,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete one batch of finished runs updated before ``before`` (see ``PruneStore``)."""
        wanted = check_prune(before, statuses, batch)
        now = check_aware(now if now is not None else utcnow())
        taken = self._choose(before, wanted, now, None if dry_run else batch)
        if not taken:
            return PruneResult()
        gone = set(taken)
        records = sum(len(self._runs[run_id].records) for run_id in taken)
        cancels = set(cancel_keys(taken))
        events = [
            e.event_id
            for e in self._events.values()
            if e.consumed_by in gone or (e.consumed_by is None and e.key in cancels)
        ]
        digests = {ref.digest for run_id in taken for ref in self._refs.get(run_id, ())}
        kept = {
            ref.digest for run_id, refs in self._refs.items() if run_id not in gone for ref in refs
        }
        unreferenced = digests - kept
        result = PruneResult(len(taken), records, len(events), len(unreferenced), tuple(taken))
        if dry_run:
            return result
        for event_id in events:
            del self._events[event_id]
        for event in self._events.values():
            if event.run_id in gone:  # queued for a run that is gone: any run may take it
                event.run_id = None
        for run_id in taken:
            entry = self._runs.pop(run_id)
            self._forget_waits(run_id, entry)
            self._refs.pop(run_id, None)
            self._audit.pop(run_id, None)
        for envelope_id in [e for e, h in self._handoffs.items() if h.source_run_id in gone]:
            del self._handoffs[envelope_id]
        for digest in unreferenced:
            self._blobs.pop(digest, None)
        return result

    def _choose(
        self, before: datetime, wanted: frozenset[RunStatus], now: datetime, batch: int | None
    ) -> list[str]:
        """The runs of the families a batch takes, top runs oldest first."""
        children: dict[str, list[str]] = {}
        for run_id, entry in self._runs.items():
            parent = entry.state.parent_run_id
            if parent is not None:
                children.setdefault(parent, []).append(run_id)
        tops = [
            entry
            for entry in self._runs.values()
            if (entry.state.parent_run_id is None or entry.state.parent_run_id not in self._runs)
            and entry.state.status in wanted
            and entry.state.updated_at < before
            and self._free(entry, now)
            # As the durable stores' top query: a run with an unfinished child is
            # not a candidate at all (deeper live runs are found by _family).
            and all(
                self._runs[c].state.status in FINISHED for c in children.get(entry.state.run_id, ())
            )
        ]
        tops.sort(key=lambda e: (e.state.created_at, e.order))
        taken: list[str] = []
        for entry in tops[:batch]:
            family = self._family(entry.state.run_id, children, now)
            if family is None:
                continue  # a descendant is still live: the family waits
            taken.extend(family)
            if batch is not None and len(taken) >= batch:
                break
        return taken

    def _family(self, top: str, children: dict[str, list[str]], now: datetime) -> list[str] | None:
        """``top`` and its descendants, or None when one of them must be kept."""
        family: list[str] = []
        seen = {top}
        todo = [top]
        while todo:
            run_id = todo.pop()
            entry = self._runs[run_id]
            if entry.state.status not in FINISHED or not self._free(entry, now):
                return None
            family.append(run_id)
            for child in children.get(run_id, ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return family

    @staticmethod
    def _free(entry: RunEntry, now: datetime) -> bool:
        """Whether no process holds the run's lease (none, or expired)."""
        return entry.lease is None or entry.lease.expires_at <= now

    def _forget_waits(self, run_id: str, entry: RunEntry) -> None:
        for key in entry.waits:
            waiters = self._waiters.get(key, {})
            waiters.pop(run_id, None)
            if not waiters:
                self._waiters.pop(key, None)
