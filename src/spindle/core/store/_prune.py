"""Retention: the store's part of ``spindle prune`` and of a worker's retention policy.

:meth:`PruneStore.prune` deletes **one bounded batch** of finished runs
older than a cutoff, with everything that is theirs alone, and says how much
went; callers (``spindle prune``, :func:`~spindle.core.engine.apply_retention`)
call it again until a batch deletes no run. A batch is one short transaction,
so runs being driven meanwhile wait for it no longer than for any commit.

What a batch takes, the same in every store:

* **Runs**: finished (``completed``, ``failed``, ``cancelled``, narrowed by
  ``statuses``), last updated before ``before``, and without a live lease
  (one expiring after ``now``). Pending, running and waiting runs are never
  touched, whatever their age.
* **Families**: a sub-workflow's child goes with its parent, never alone, so
  a kept parent never points at a missing child. The cutoff and ``statuses``
  apply to the top run (one without a parent, or whose parent is gone); its
  descendants go with it whatever their own finished status, and if any
  descendant is not finished (or is leased), the whole family is kept.
  ``batch`` bounds the top runs a batch looks at (a top run with an
  unfinished child is not one of them), and a batch stops adding families
  once it holds ``batch`` runs. (A family kept for a live member deeper down,
  a grandchild, still takes its top's place in a batch: were the ``batch``
  oldest top runs all such families, a batch would delete nothing while
  younger runs could go. A finished child's own children normally finished
  before it, so this is rare.)
* **What is theirs**: each run's ledger records, audit entries, waits,
  handoff envelopes it sent, the inbox events it consumed, and requests to
  cancel it that it never saw (:func:`~spindle.core.model.cancel_request_key`).
  Other events no run consumed are never deleted: they are kept until a run
  takes them (one queued for a pruned run is left for any run).
* **Artifacts**: a run's references go with it, and content that no remaining
  run references is deleted (content is shared between runs by digest, so
  content a kept run references stays).

A second call with the same arguments, once a batch deleted nothing more,
deletes nothing: pruning is idempotent.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import datetime

from attrs import define, field

from spindle.core.errors import ConfigError
from spindle.core.model import TERMINAL_STATUSES, RunStatus, cancel_request_key

__all__ = ["FINISHED", "PruneResult", "PruneStore", "cancel_keys", "check_prune"]

#: The statuses a run may be pruned in: those it can never leave.
FINISHED: frozenset[RunStatus] = TERMINAL_STATUSES


@define(frozen=True)
class PruneResult:
    """What one prune batch (or, added up, a whole prune) deleted, or would delete.

    Attributes:
        runs: runs deleted (sub-workflow children included).
        records: ledger records deleted with them.
        events: inbox events they had consumed (and requests to cancel them),
            deleted with them.
        artifacts: artifact contents deleted because no remaining run referenced them.
        run_ids: the ids of the runs deleted (not compared: results are equal when
            their counts are), so a caller can remove what it keeps per run
            outside the store, such as run directories.
    """

    runs: int = 0
    records: int = 0
    events: int = 0
    artifacts: int = 0
    run_ids: tuple[str, ...] = field(default=(), eq=False, repr=False)

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(
            self.runs + other.runs,
            self.records + other.records,
            self.events + other.events,
            self.artifacts + other.artifacts,
            self.run_ids + other.run_ids,
        )

    def to_dict(self) -> dict[str, int]:
        """The counts as a JSON-ready mapping."""
        return {
            "runs": self.runs,
            "records": self.records,
            "events": self.events,
            "artifacts": self.artifacts,
        }


def cancel_keys(run_ids: Iterable[str]) -> list[str]:
    """The inbox keys of requests to cancel ``run_ids``, deleted with those runs."""
    return [cancel_request_key(run_id) for run_id in run_ids]


def check_prune(
    before: datetime, statuses: Iterable[RunStatus | str], batch: int | None
) -> frozenset[RunStatus]:
    """Check a prune's arguments the same way in every store; return the statuses.

    Raises:
        ValueError: ``before`` is naive.
        ConfigError: a status is not a finished one, or ``batch`` is below 1.
    """
    if before.tzinfo is None:
        raise ValueError(
            f"prune cutoff {before!r} is naive; pass an aware UTC datetime (spindle.utcnow())"
        )
    wanted: set[RunStatus] = set()
    for status in statuses:
        try:
            wanted.add(RunStatus(status))
        except ValueError:
            wanted.add(status)  # type: ignore[arg-type]  # reported just below
    refused = sorted(str(s) for s in wanted - FINISHED)
    if refused:
        raise ConfigError(
            f"cannot prune runs in status {', '.join(refused)}: only finished runs are "
            f"pruned; use {', '.join(sorted(FINISHED))}"
        )
    if batch is not None and batch < 1:
        raise ConfigError(f"prune batch must be at least 1, got {batch}")
    return frozenset(wanted)


class PruneStore(abc.ABC):
    """Deleting finished runs and what is theirs alone, one bounded batch a call."""

    @abc.abstractmethod
    async def prune(
        self,
        *,
        before: datetime,
        statuses: Iterable[RunStatus] = FINISHED,
        batch: int = 500,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete one batch of finished runs last updated before ``before``.

        See the module docs for what a batch takes. Call again until the
        result's ``runs`` is 0.

        Args:
            before: the cutoff (aware); runs updated at or after it are kept.
            statuses: which finished statuses to prune (default: all three).
            batch: the most top-level runs one call looks at (and, families
                apart, deletes).
            now: what "a live lease" is measured against (default: the clock).
            dry_run: delete nothing; count everything that pruning until
                nothing is left would delete (``batch`` does not apply).

        Raises:
            ConfigError: a status is not a finished one, or ``batch`` < 1.
            ValueError: ``before`` or ``now`` is naive.
        """
