"""The model layer: plain attrs data and the one cattrs converter.

Run state and waits, effects and outcomes, ledger records and their hash
chain, lifecycle events, audit entries and handoffs, idempotency key
formats, secrets. Imports only :mod:`spindle.core.errors`, attrs and cattrs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindle.core._lazy import lazy_facade

if TYPE_CHECKING:
    from spindle.core.model._cache import CacheEntry as CacheEntry
    from spindle.core.model._cache import cache_hit_key as cache_hit_key
    from spindle.core.model._chain import KEY_ENV as KEY_ENV
    from spindle.core.model._chain import PLAIN_CHAIN as PLAIN_CHAIN
    from spindle.core.model._chain import LedgerChain as LedgerChain
    from spindle.core.model._chain import check_head as check_head
    from spindle.core.model._chain import key_problem as key_problem
    from spindle.core.model._chain import short_hash as short_hash
    from spindle.core.model._chain import state_problem as state_problem
    from spindle.core.model._chain import verify_run as verify_run
    from spindle.core.model._converter import converter as converter
    from spindle.core.model._converter import structure as structure
    from spindle.core.model._converter import structure_errors as structure_errors
    from spindle.core.model._converter import unstructure as unstructure
    from spindle.core.model._cron import Cron as Cron
    from spindle.core.model._cron import parse_cron as parse_cron
    from spindle.core.model._cron import time_zone as time_zone
    from spindle.core.model._duration import format_duration as format_duration
    from spindle.core.model._duration import parse_duration as parse_duration
    from spindle.core.model._effects import Effect as Effect
    from spindle.core.model._effects import EffectAnswer as EffectAnswer
    from spindle.core.model._effects import EffectOutcome as EffectOutcome
    from spindle.core.model._effects import EffectStatus as EffectStatus
    from spindle.core.model._events import LifecycleEventType as LifecycleEventType
    from spindle.core.model._events import RunLifecycleEvent as RunLifecycleEvent
    from spindle.core.model._head import MISSING_HEAD as MISSING_HEAD
    from spindle.core.model._head import LedgerHead as LedgerHead
    from spindle.core.model._keys import RESERVED_EVENT_PREFIX as RESERVED_EVENT_PREFIX
    from spindle.core.model._keys import attempt_key as attempt_key
    from spindle.core.model._keys import call_failure_key as call_failure_key
    from spindle.core.model._keys import call_key as call_key
    from spindle.core.model._keys import call_wait_key as call_wait_key
    from spindle.core.model._keys import cancel_request_key as cancel_request_key
    from spindle.core.model._keys import child_run_id as child_run_id
    from spindle.core.model._keys import failed_call as failed_call
    from spindle.core.model._keys import follow_on_run_id as follow_on_run_id
    from spindle.core.model._keys import handoff_envelope_id as handoff_envelope_id
    from spindle.core.model._keys import new_id as new_id
    from spindle.core.model._keys import node_key as node_key
    from spindle.core.model._keys import resume_key as resume_key
    from spindle.core.model._keys import retry_wait_key as retry_wait_key
    from spindle.core.model._keys import run_key as run_key
    from spindle.core.model._keys import step_backoff_key as step_backoff_key
    from spindle.core.model._ledger import LedgerVerification as LedgerVerification
    from spindle.core.model._ledger import StepKind as StepKind
    from spindle.core.model._ledger import StepRecord as StepRecord
    from spindle.core.model._ledger import StepStatus as StepStatus
    from spindle.core.model._ledger import chain as chain
    from spindle.core.model._ledger import normalize_result as normalize_result
    from spindle.core.model._ledger import normalized as normalized
    from spindle.core.model._ledger import record_hash as record_hash
    from spindle.core.model._ledger import verify as verify
    from spindle.core.model._records import ArtifactRef as ArtifactRef
    from spindle.core.model._records import AuditEntry as AuditEntry
    from spindle.core.model._records import HandoffEnvelope as HandoffEnvelope
    from spindle.core.model._records import UnsettledWork as UnsettledWork
    from spindle.core.model._retry import RetryPolicy as RetryPolicy
    from spindle.core.model._run import TERMINAL_STATUSES as TERMINAL_STATUSES
    from spindle.core.model._run import Lease as Lease
    from spindle.core.model._run import RunState as RunState
    from spindle.core.model._run import RunStatus as RunStatus
    from spindle.core.model._run import WaitReason as WaitReason
    from spindle.core.model._run import WaitState as WaitState
    from spindle.core.model._schedule import CATCH_UP_ALL as CATCH_UP_ALL
    from spindle.core.model._schedule import CATCH_UP_RULES as CATCH_UP_RULES
    from spindle.core.model._schedule import ON_TIME as ON_TIME
    from spindle.core.model._schedule import Schedule as Schedule
    from spindle.core.model._schedule import catch_up_count as catch_up_count
    from spindle.core.model._schedule import check_catch_up as check_catch_up
    from spindle.core.model._schedule import check_schedule_id as check_schedule_id
    from spindle.core.model._schedule import schedule_run_id as schedule_run_id
    from spindle.core.model._secrets import NO_SECRETS as NO_SECRETS
    from spindle.core.model._secrets import REDACTED as REDACTED
    from spindle.core.model._secrets import Secrets as Secrets
    from spindle.core.model._state_text import is_plain_json as is_plain_json
    from spindle.core.model._state_text import state_hash as state_hash
    from spindle.core.model._state_text import state_text as state_text
    from spindle.core.model._state_text import state_text_and_hash as state_text_and_hash
    from spindle.core.model._templates import Placeholder as Placeholder
    from spindle.core.model._templates import TemplateError as TemplateError
    from spindle.core.model._templates import parse_template as parse_template
    from spindle.core.model._templates import value_text as value_text
    from spindle.core.model._time import utcnow as utcnow
    from spindle.core.model._work import Claim as Claim
    from spindle.core.model._work import QueueLimits as QueueLimits
    from spindle.core.model._work import QueueSpot as QueueSpot
    from spindle.core.model._work import WorkerInfo as WorkerInfo
    from spindle.core.model._work import check_queue_name as check_queue_name
    from spindle.core.model._work import check_worker_id as check_worker_id

_LAZY: dict[str, str] = {
    "Cron": "spindle.core.model._cron",
    "parse_cron": "spindle.core.model._cron",
    "time_zone": "spindle.core.model._cron",
    "CATCH_UP_ALL": "spindle.core.model._schedule",
    "CATCH_UP_RULES": "spindle.core.model._schedule",
    "ON_TIME": "spindle.core.model._schedule",
    "Schedule": "spindle.core.model._schedule",
    "CacheEntry": "spindle.core.model._cache",
    "cache_hit_key": "spindle.core.model._cache",
    "catch_up_count": "spindle.core.model._schedule",
    "check_catch_up": "spindle.core.model._schedule",
    "check_schedule_id": "spindle.core.model._schedule",
    "schedule_run_id": "spindle.core.model._schedule",
    "Claim": "spindle.core.model._work",
    "QueueLimits": "spindle.core.model._work",
    "QueueSpot": "spindle.core.model._work",
    "WorkerInfo": "spindle.core.model._work",
    "check_queue_name": "spindle.core.model._work",
    "check_worker_id": "spindle.core.model._work",
    "ArtifactRef": "spindle.core.model._records",
    "AuditEntry": "spindle.core.model._records",
    "Effect": "spindle.core.model._effects",
    "EffectAnswer": "spindle.core.model._effects",
    "EffectOutcome": "spindle.core.model._effects",
    "EffectStatus": "spindle.core.model._effects",
    "HandoffEnvelope": "spindle.core.model._records",
    "KEY_ENV": "spindle.core.model._chain",
    "Lease": "spindle.core.model._run",
    "LedgerChain": "spindle.core.model._chain",
    "LedgerHead": "spindle.core.model._head",
    "LedgerVerification": "spindle.core.model._ledger",
    "LifecycleEventType": "spindle.core.model._events",
    "MISSING_HEAD": "spindle.core.model._head",
    "NO_SECRETS": "spindle.core.model._secrets",
    "PLAIN_CHAIN": "spindle.core.model._chain",
    "Placeholder": "spindle.core.model._templates",
    "REDACTED": "spindle.core.model._secrets",
    "RESERVED_EVENT_PREFIX": "spindle.core.model._keys",
    "RetryPolicy": "spindle.core.model._retry",
    "RunLifecycleEvent": "spindle.core.model._events",
    "RunState": "spindle.core.model._run",
    "RunStatus": "spindle.core.model._run",
    "Secrets": "spindle.core.model._secrets",
    "StepKind": "spindle.core.model._ledger",
    "StepRecord": "spindle.core.model._ledger",
    "StepStatus": "spindle.core.model._ledger",
    "TERMINAL_STATUSES": "spindle.core.model._run",
    "TemplateError": "spindle.core.model._templates",
    "UnsettledWork": "spindle.core.model._records",
    "WaitReason": "spindle.core.model._run",
    "WaitState": "spindle.core.model._run",
    "attempt_key": "spindle.core.model._keys",
    "call_failure_key": "spindle.core.model._keys",
    "call_key": "spindle.core.model._keys",
    "call_wait_key": "spindle.core.model._keys",
    "cancel_request_key": "spindle.core.model._keys",
    "chain": "spindle.core.model._ledger",
    "check_head": "spindle.core.model._chain",
    "child_run_id": "spindle.core.model._keys",
    "converter": "spindle.core.model._converter",
    "failed_call": "spindle.core.model._keys",
    "follow_on_run_id": "spindle.core.model._keys",
    "format_duration": "spindle.core.model._duration",
    "handoff_envelope_id": "spindle.core.model._keys",
    "new_id": "spindle.core.model._keys",
    "node_key": "spindle.core.model._keys",
    "key_problem": "spindle.core.model._chain",
    "normalize_result": "spindle.core.model._ledger",
    "normalized": "spindle.core.model._ledger",
    "parse_duration": "spindle.core.model._duration",
    "parse_template": "spindle.core.model._templates",
    "record_hash": "spindle.core.model._ledger",
    "resume_key": "spindle.core.model._keys",
    "retry_wait_key": "spindle.core.model._keys",
    "run_key": "spindle.core.model._keys",
    "short_hash": "spindle.core.model._chain",
    "is_plain_json": "spindle.core.model._state_text",
    "state_hash": "spindle.core.model._state_text",
    "state_text": "spindle.core.model._state_text",
    "state_text_and_hash": "spindle.core.model._state_text",
    "state_problem": "spindle.core.model._chain",
    "step_backoff_key": "spindle.core.model._keys",
    "structure": "spindle.core.model._converter",
    "structure_errors": "spindle.core.model._converter",
    "unstructure": "spindle.core.model._converter",
    "utcnow": "spindle.core.model._time",
    "value_text": "spindle.core.model._templates",
    "verify": "spindle.core.model._ledger",
    "verify_run": "spindle.core.model._chain",
}

__getattr__, __dir__ = lazy_facade(__name__, _LAZY)
__all__ = sorted(_LAZY)
