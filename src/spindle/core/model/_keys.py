"""Idempotency keys and derived ids: every format in one place.

A ledger record's ``idempotency_key`` says what the record is about, so a
store can find it through an index (never a scan) and a re-run can tell
"already done" from "still to do". The formats are part of what stores
hold, so they never change shape:

======================  ============================  ==============================
key                     format                        recorded for
======================  ============================  ==============================
:func:`run_key`         ``RUN:run``                   the run's end (completed,
                                                      failed, cancelled)
:func:`node_key`        ``RUN:NODE``                  a node's final outcome, or its
                                                      wait as an effect node
:func:`call_key`        ``RUN:NODE:INDEX``            a sub-step or mid-function
                                                      effect (``ctx.step``, ...)
:func:`attempt_key`     ``RUN:NODE:attemptN``         failed attempt N, to be retried
:func:`resume_key`      ``RUN:resume:WAIT``           the answer to wait WAIT
:func:`call_failure_key` ``RUN:NODE:INDEX:failedN``    failed attempt N of a sub-step
:func:`step_backoff_key` ``RUN:NODE:INDEX.backoffN``   the durable wait before a
                                                      sub-step's attempt N + 1
======================  ============================  ==============================

Wait keys (what ``spindle resume --key`` names) are per run: the node id for
an effect node, ``NODE.INDEX`` for a mid-function effect, ``NODE:retryN``
for a retry backoff. Child and follow-on run ids are derived from the
request that starts them, so asking twice never starts two runs.
"""

from __future__ import annotations

import os
import uuid

__all__ = [
    "RESERVED_EVENT_PREFIX",
    "attempt_key",
    "call_failure_key",
    "call_key",
    "call_wait_key",
    "cancel_request_key",
    "child_run_id",
    "failed_call",
    "follow_on_run_id",
    "handoff_envelope_id",
    "new_id",
    "node_key",
    "resume_key",
    "retry_wait_key",
    "run_key",
    "step_backoff_key",
]

#: Inbox keys under this prefix carry engine requests, not user events.
RESERVED_EVENT_PREFIX = "spindle:"


def run_key(run_id: str) -> str:
    """The key of the record that ends a run."""
    return f"{run_id}:run"


def node_key(run_id: str, node_id: str) -> str:
    """The key of a node's outcome; also ``ctx.idempotency_key`` of its tasks."""
    return f"{run_id}:{node_id}"


def call_key(run_id: str, node_id: str, index: int) -> str:
    """The key of the ``index``-th sub-step or mid-function effect of a node (from 0)."""
    return f"{run_id}:{node_id}:{index}"


def attempt_key(run_id: str, node_id: str, attempt: int) -> str:
    """The key of failed attempt ``attempt`` (from 1) of a node that will be retried."""
    return f"{run_id}:{node_id}:attempt{attempt}"


def resume_key(run_id: str, wait_key: str) -> str:
    """The key of the record that answered wait ``wait_key``."""
    return f"{run_id}:resume:{wait_key}"


def call_failure_key(run_id: str, node_id: str, index: int, attempt: int) -> str:
    """The key of failed attempt ``attempt`` (from 1) of sub-step ``index`` of a node."""
    return f"{call_key(run_id, node_id, index)}:failed{attempt}"


def failed_call(failure_key: str) -> str:
    """The call key a :func:`call_failure_key` belongs to."""
    return failure_key.rpartition(":failed")[0]


def step_backoff_key(run_id: str, node_id: str, index: int, attempt: int) -> str:
    """The key of the durable wait after failed attempt ``attempt`` of sub-step ``index``.

    Its last segment (after the last ``:``) is ``INDEX.backoffN``, so its wait key
    (:func:`call_wait_key`) is ``NODE.INDEX.backoffN``, unique in the run.
    """
    return f"{call_key(run_id, node_id, index)}.backoff{attempt}"


def call_wait_key(node_id: str, call: str) -> str:
    """The wait key of a mid-function effect: ``NODE.INDEX`` (from its call key)."""
    return f"{node_id}.{call.rsplit(':', 1)[-1]}"


def retry_wait_key(node_id: str, attempt: int) -> str:
    """The wait key of the backoff before attempt ``attempt`` of a node."""
    return f"{node_id}:retry{attempt}"


def child_run_id(run_id: str, effect_key: str) -> str:
    """The id of the sub-workflow run that effect ``effect_key`` of run ``run_id`` starts."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"spindle:{run_id}:{effect_key}").hex


def handoff_envelope_id(effect_key: str) -> str:
    """The envelope id of the handoff that effect ``effect_key`` makes (one per request)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"spindle:handoff:{effect_key}").hex


def follow_on_run_id(envelope_id: str) -> str:
    """The id of the follow-on run that takes up handoff envelope ``envelope_id``."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"spindle:follow-on:{envelope_id}").hex


def cancel_request_key(run_id: str) -> str:
    """The inbox key under which another process asks the driver of ``run_id`` to cancel it."""
    return f"{RESERVED_EVENT_PREFIX}cancel:{run_id}"


# The bits a version-4 UUID sets (RFC 4122 variant, version 4), as uuid.UUID does.
_VARIANT_CLEAR, _VARIANT_SET = ~(0xC000 << 48), 0x8000 << 48
_VERSION_CLEAR, _VERSION_SET = ~(0xF000 << 64), 4 << 76


def new_id() -> str:
    """A new random id (a run's, an event's): the 32 hex digits of a version-4 UUID.

    ``uuid.uuid4().hex`` without building the ``UUID`` object, which every run
    start and every lifecycle event paid for.
    """
    value = int.from_bytes(os.urandom(16), "big")
    value = (value & _VARIANT_CLEAR | _VARIANT_SET) & _VERSION_CLEAR | _VERSION_SET
    return f"{value:032x}"
