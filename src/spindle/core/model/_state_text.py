"""The text a run's state digest covers, and its hash.

A commit binds the run's stored state to its ledger position with a digest
of :func:`state_hash` (see :mod:`~spindle.core.model._chain`). The text is
the state's converter form as canonical JSON, without the counters a commit
may move in place; it is computed on each commit that changes the state, so
plain states are written field by field, without the converter's copies.
"""

from __future__ import annotations

import hashlib
from typing import Any

from spindle.core.model._run import RunState
from spindle.core.model._time import _CANONICAL, _ENCODE_STR, _iso_json

__all__ = ["is_plain_json", "state_hash", "state_text", "state_text_and_hash"]

# RunState fields a commit may change without rewriting the stored state (the hot
# path updates them in place): the digest leaves them out.
_COUNTERS = ("step_count", "event_seq", "updated_at")


def state_text(state: RunState) -> str:
    """The run's state as canonical JSON without its counters: what the state digest covers.

    That is status, output, error, waits, inputs, labels and the rest of what
    ``spindle show`` presents -- everything but ``step_count``, ``event_seq`` and
    ``updated_at``, which a commit may move without rewriting the stored state.
    """
    try:
        text = _plain_state_text(state)
    except (TypeError, AttributeError):  # a field of another type: the converter's way
        text = None  # says what is wrong with it
    if text is not None:
        return text
    data = state.to_dict()
    for name in _COUNTERS:
        del data[name]
    return _CANONICAL(data)


def _plain_state_text(state: RunState) -> str | None:
    """:func:`state_text` written field by field, or None unless the inputs, output and
    labels are plain JSON data (which the converter leaves as it is).

    The same text as encoding :meth:`RunState.to_dict` with sorted keys, at a third
    of the cost: the fields are the state's own types (strings, an int, a UTC
    datetime), written in sorted order, and only user data goes through the
    encoder. A field of another type raises ``TypeError``.
    """
    inputs, output, labels, seq = state.inputs, state.output, state.labels, state.audit_seq
    if type(seq) is not int or not (_plain(inputs) and _plain(output) and _plain(labels)):
        return None
    waits = state.waits
    return "".join(
        (
            '{"audit_seq":',
            int.__repr__(seq),
            ',"created_at":',
            _iso_json(state.created_at),
            ',"definition_id":',
            _ENCODE_STR(state.definition_id),
            ',"disposition":',
            _text(state.disposition),
            ',"error":',
            _text(state.error),
            ',"inputs":',
            _CANONICAL(inputs) if inputs else "{}",
            ',"labels":',
            _CANONICAL(labels) if labels else "{}",
            ',"output":',
            "null" if output is None else _CANONICAL(output),
            ',"parent_run_id":',
            _text(state.parent_run_id),
            ',"parent_wait_key":',
            _text(state.parent_wait_key),
            "" if state.queue is None else ',"queue":' + _CANONICAL(state.queue.to_dict()),
            ',"run_id":',
            _ENCODE_STR(state.run_id),
            ',"status":',
            _ENCODE_STR(state.status.value),
            ',"waits":',
            _CANONICAL([w.to_dict() for w in waits]) if waits else "[]",
            ',"workflow":',
            _ENCODE_STR(state.workflow),
            "}",
        )
    )


def _text(value: str | None) -> str:
    """A string field as JSON (``TypeError`` for anything but a string or None)."""
    return "null" if value is None else _ENCODE_STR(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def is_plain_json(value: Any) -> bool:
    """Whether ``value`` is JSON data of the exact built-in types: dicts keyed by strings,
    lists, strings, numbers, booleans and None.

    Such a value is what the converter, and a JSON round trip, leave as it is
    (equal, if not the same object): code that would normalize it or unstructure
    it before encoding may skip that. Anything else (tuples, enums, datetimes,
    subclasses, a structure too deep to walk) is False.
    """
    try:
        return _plain_data(value)
    except RecursionError:  # too deep (or a cycle): the converter's way says what is wrong
        return False


_plain = is_plain_json


def _plain_data(value: Any) -> bool:
    # Loops, not all() over a generator: this runs on every state hash.
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain_data(item):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not _plain_data(item):
                return False
        return True
    return False


def state_hash(state: RunState) -> str:
    """The SHA-256 of :func:`state_text`: what a state digest binds to a ledger position.

    Hashing the state once when it changes keeps a step's digest small, however
    large the state (a commit that leaves the state alone reuses the hash).
    """
    return state_text_and_hash(state)[1]


def state_text_and_hash(state: RunState) -> tuple[str, str]:
    """:func:`state_text` and :func:`state_hash` from one encoding: a commit that hashes
    the state can hand the text to the store to keep (``Commit.state_text``)."""
    text = state_text(state)
    return text, hashlib.sha256(text.encode()).hexdigest()
