"""The store layer: the contract every store implements, and the rules every
store applies the same way (ledger continuity, fencing, lease eligibility).
Imports the plugin layer and below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindle.core._lazy import lazy_facade

if TYPE_CHECKING:
    from spindle.core.store._cache import CacheStore as CacheStore
    from spindle.core.store._contract import ArtifactStore as ArtifactStore
    from spindle.core.store._contract import AuditStore as AuditStore
    from spindle.core.store._contract import Commit as Commit
    from spindle.core.store._contract import InboxEvent as InboxEvent
    from spindle.core.store._contract import InboxStore as InboxStore
    from spindle.core.store._contract import LeaseStore as LeaseStore
    from spindle.core.store._contract import LedgerStore as LedgerStore
    from spindle.core.store._contract import RunStore as RunStore
    from spindle.core.store._contract import Store as Store
    from spindle.core.store._prune import FINISHED as FINISHED
    from spindle.core.store._prune import PruneResult as PruneResult
    from spindle.core.store._prune import PruneStore as PruneStore
    from spindle.core.store._prune import cancel_keys as cancel_keys
    from spindle.core.store._prune import check_prune as check_prune
    from spindle.core.store._rules import DURABILITIES as DURABILITIES
    from spindle.core.store._rules import artifact_digest as artifact_digest
    from spindle.core.store._rules import check_ack as check_ack
    from spindle.core.store._rules import check_aware as check_aware
    from spindle.core.store._rules import check_durability as check_durability
    from spindle.core.store._rules import check_records as check_records
    from spindle.core.store._rules import digest_hex as digest_hex
    from spindle.core.store._rules import event_waits as event_waits
    from spindle.core.store._rules import from_epoch as from_epoch
    from spindle.core.store._rules import lease_expiry as lease_expiry
    from spindle.core.store._rules import lease_lost as lease_lost
    from spindle.core.store._rules import may_acquire as may_acquire
    from spindle.core.store._rules import may_take as may_take
    from spindle.core.store._rules import new_event as new_event
    from spindle.core.store._rules import no_event as no_event
    from spindle.core.store._rules import queued_elsewhere as queued_elsewhere
    from spindle.core.store._rules import run_exists as run_exists
    from spindle.core.store._rules import unconsumable as unconsumable
    from spindle.core.store._schedules import ScheduleStore as ScheduleStore
    from spindle.core.store._work import Candidate as Candidate
    from spindle.core.store._work import QueueLoad as QueueLoad
    from spindle.core.store._work import WorkStore as WorkStore
    from spindle.core.store._work import blocked_queues as blocked_queues
    from spindle.core.store._work import leased as leased
    from spindle.core.store._work import limited_queues as limited_queues
    from spindle.core.store._work import plan_claims as plan_claims
    from spindle.core.store._work import queue_body as queue_body
    from spindle.core.store._work import roster as roster
    from spindle.core.store._work import worker_body as worker_body

_LAZY: dict[str, str] = {
    "Candidate": "spindle.core.store._work",
    "QueueLoad": "spindle.core.store._work",
    "WorkStore": "spindle.core.store._work",
    "blocked_queues": "spindle.core.store._work",
    "plan_claims": "spindle.core.store._work",
    "worker_body": "spindle.core.store._work",
    "roster": "spindle.core.store._work",
    "queue_body": "spindle.core.store._work",
    "limited_queues": "spindle.core.store._work",
    "leased": "spindle.core.store._work",
    "ArtifactStore": "spindle.core.store._contract",
    "AuditStore": "spindle.core.store._contract",
    "Commit": "spindle.core.store._contract",
    "DURABILITIES": "spindle.core.store._rules",
    "FINISHED": "spindle.core.store._prune",
    "InboxEvent": "spindle.core.store._contract",
    "InboxStore": "spindle.core.store._contract",
    "LeaseStore": "spindle.core.store._contract",
    "LedgerStore": "spindle.core.store._contract",
    "PruneResult": "spindle.core.store._prune",
    "PruneStore": "spindle.core.store._prune",
    "RunStore": "spindle.core.store._contract",
    "ScheduleStore": "spindle.core.store._schedules",
    "CacheStore": "spindle.core.store._cache",
    "Store": "spindle.core.store._contract",
    "artifact_digest": "spindle.core.store._rules",
    "cancel_keys": "spindle.core.store._prune",
    "check_ack": "spindle.core.store._rules",
    "check_prune": "spindle.core.store._prune",
    "check_aware": "spindle.core.store._rules",
    "check_durability": "spindle.core.store._rules",
    "check_records": "spindle.core.store._rules",
    "digest_hex": "spindle.core.store._rules",
    "event_waits": "spindle.core.store._rules",
    "from_epoch": "spindle.core.store._rules",
    "lease_expiry": "spindle.core.store._rules",
    "lease_lost": "spindle.core.store._rules",
    "may_acquire": "spindle.core.store._rules",
    "may_take": "spindle.core.store._rules",
    "new_event": "spindle.core.store._rules",
    "no_event": "spindle.core.store._rules",
    "queued_elsewhere": "spindle.core.store._rules",
    "run_exists": "spindle.core.store._rules",
    "unconsumable": "spindle.core.store._rules",
}

__getattr__, __dir__ = lazy_facade(__name__, _LAZY)
__all__ = sorted(_LAZY)
