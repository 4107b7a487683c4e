"""A run's ledger head, the seal of its state, and keyed (HMAC) chains.

The hash chain of :mod:`~spindle.core.model._ledger` catches a record that
was edited, removed or reordered *inside* the ledger, but not records
removed from its end, nor an edit of the run's row (its status, output,
error). So every commit also writes, in the same transaction, the run's
:class:`LedgerHead`: how many records the ledger holds, the hash of the
last one, and the *state digest* -- a hash of the run's stored state chained
onto that last hash. ``spindle ledger verify`` compares the ledger with the
head and the stored state with the digest; a drive refuses a run whose
ledger does not match its head, so completed nodes are never run again.

A plain chain (SHA-256) catches accidents and naive edits; someone who can
write the file can also recompute every hash. With a key
(``SPINDLE_LEDGER_KEY``) every hash is an HMAC-SHA256 under that key, so an
edit cannot be hidden without it. The key is never stored: a run records
only its :attr:`LedgerChain.key_id`, a fingerprint that tells verify which
key the ledger needs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from spindle.core.model._head import LedgerHead
from spindle.core.model._ledger import LedgerVerification, StepRecord, verify
from spindle.core.model._run import RunState
from spindle.core.model._state_text import state_hash, state_text

__all__ = [
    "KEY_ENV",
    "PLAIN_CHAIN",
    "LedgerChain",
    "check_head",
    "key_problem",
    "short_hash",
    "state_hash",
    "state_problem",
    "state_text",
    "verify_run",
]

_sha256 = hashlib.sha256

#: The environment variable (and ``ledger_key`` setting) that keys new ledgers.
KEY_ENV = "SPINDLE_LEDGER_KEY"

# What a key id is the MAC of: fixed, so one key always has one id.
_KEY_ID_LABEL = b"spindle ledger key id v1"


def short_hash(value: str) -> str:
    """The first 12 hex digits of a hash, for messages ("" shows as "none")."""
    return f"{value[:12]}…" if value else "none"


class LedgerChain:
    """How a run's records and state are hashed: plain SHA-256, or HMAC-SHA256 under a key.

    Build one per key and keep it: the HMAC is keyed once here and copied for
    each hash, so a keyed step costs about what a plain one does.

    Args:
        key: the secret key (text is UTF-8 encoded), or None/"" for a plain chain.

    Example::

        chain = LedgerChain(os.environ.get("SPINDLE_LEDGER_KEY"))
        chain.chain(record, prev_hash)
    """

    __slots__ = ("_inner", "_outer", "key_id")

    def __init__(self, key: str | bytes | None = None) -> None:
        if isinstance(key, str):
            key = key.encode()
        self._inner: Any = None
        self._outer: Any = None
        #: The key's fingerprint (16 hex digits), or None for a plain chain.
        self.key_id: str | None = None
        if key:
            # HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once
            # here: each hash then copies two SHA-256 states, about half the cost of
            # copying an ``hmac`` object (a test checks it against ``hmac.new``).
            block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
            self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
            self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
            self.key_id = hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    @property
    def keyed(self) -> bool:
        """Whether hashes are HMACs under a key."""
        return self._inner is not None

    def _digest(self, text: str) -> str:
        inner = self._inner
        if inner is None:
            return hashlib.sha256(text.encode()).hexdigest()
        keyed = inner.copy()
        keyed.update(text.encode())
        outer = self._outer.copy()
        outer.update(keyed.digest())
        return outer.hexdigest()  # type: ignore[no-any-return]

    def record_hash(self, record: StepRecord, prev_hash: str) -> str:
        """The hash ``record`` must carry when it follows a record hashed ``prev_hash``."""
        return self._digest(prev_hash + "\n" + record.canonical_body())

    def chain(self, record: StepRecord, prev_hash: str) -> StepRecord:
        """Set ``record``'s ``prev_hash`` and ``record_hash`` in place and return it."""
        record._canonical = None  # computed afresh from the record as it is now
        record.prev_hash = prev_hash
        text = prev_hash + "\n" + record.canonical_body()
        # A plain chain's hash is spelled out: this runs on every durable step.
        record.record_hash = (
            _sha256(text.encode()).hexdigest() if self._inner is None else self._digest(text)
        )
        return record

    def state_digest(self, count: int, record_hash: str, state_hash: str) -> str:
        """The digest of a state (its :func:`state_hash`) committed after ``count`` records
        ending in ``record_hash``: it binds the state to that exact ledger position."""
        text = f"state\n{count}\n{record_hash}\n{state_hash}"
        if self._inner is None:
            return _sha256(text.encode()).hexdigest()
        return self._digest(text)

    def head(self, count: int, record_hash: str, state_hash: str) -> LedgerHead:
        """The head a commit leaving the ledger at ``count``/``record_hash`` writes."""
        return LedgerHead(
            count, record_hash, self.state_digest(count, record_hash, state_hash), self.key_id
        )


#: The chain of runs written without a key.
PLAIN_CHAIN = LedgerChain()


def check_head(run_id: str, head: LedgerHead, count: int, last_hash: str) -> str | None:
    """Why a ledger of ``count`` records ending in ``last_hash`` is not where ``head``
    says it ends, or None when it is.

    This is the cheap check (count and last hash) a drive makes before it
    continues a run; :func:`verify_run` adds the chain and the state digest.
    """
    if head.count < 0:
        return (
            f"the ledger head of run {run_id} is missing: the store wrote one for the run, "
            "and it was deleted"
        )
    recorded = (
        f"its head records {head.count} record{'s' if head.count != 1 else ''} "
        f"ending in hash {short_hash(head.record_hash)}"
    )
    if count < head.count:
        held = "none" if count == 0 else str(count)
        return f"ledger of run {run_id} is truncated: {recorded}, the ledger holds {held}"
    if count > head.count:
        return (
            f"ledger of run {run_id} has records its head does not know: {recorded}, "
            f"the ledger holds {count}"
        )
    if last_hash != head.record_hash:
        return (
            f"ledger of run {run_id} does not match its head: {recorded}, but the "
            f"ledger's last record has hash {short_hash(last_hash)}"
        )
    return None


def key_problem(run_id: str, key_id: str, chain: LedgerChain, to: str = "verify it") -> str:
    """What to do about a ledger keyed with ``key_id`` when ``chain`` has another key or none."""
    if chain.key_id is None:
        return (
            f"ledger of run {run_id} is keyed (key id {key_id}); set {KEY_ENV} to the key "
            f"it was written with to {to}"
        )
    return (
        f"ledger of run {run_id} is keyed with key id {key_id}, but {KEY_ENV} has key id "
        f"{chain.key_id}; set it to the key the run was written with to {to}"
    )


def state_problem(run_id: str, state: RunState, chain: LedgerChain) -> str | None:
    """Why ``state`` does not match the digest in its head, or None when it does
    (or no digest was recorded). ``chain`` must be the run's own chain."""
    head = state.head
    if head is None or not head.state_digest:
        return None
    if chain.state_digest(head.count, head.record_hash, state_hash(state)) == head.state_digest:
        return None
    return (
        f"the stored state of run {run_id} (status {state.status.value!r}, its output, "
        "error and waits) does not match the digest committed with its last ledger "
        "record: the run's row was changed after it was written"
    )


def verify_run(
    state: RunState, records: Sequence[StepRecord], chain: LedgerChain | None = None
) -> LedgerVerification:
    """Check a run's ledger against its head, its hash chain, and its state against the digest.

    ``chain`` is the chain of the configured key (None or :data:`PLAIN_CHAIN`:
    no key). A keyed ledger verified without its key is not reported broken:
    the result has ``key_problem`` set and says which key it needs.
    """
    chain = chain or PLAIN_CHAIN
    run_id = state.run_id
    head = state.head
    count = len(records)
    if head is None:
        found = verify(records, PLAIN_CHAIN.record_hash)
        found.head_recorded = False
        found.notes.append(
            "head not recorded (the run was last written before store schema version 3): "
            "records removed from the end of its ledger and edits of its state cannot be "
            "detected until it is committed again"
        )
        return found
    if head.key_id is not None and head.key_id != chain.key_id:
        reason = key_problem(run_id, head.key_id, chain)
        return LedgerVerification(False, count, None, reason, "key", keyed=True, key_problem=True)
    keyed = head.key_id is not None
    used = chain if keyed else PLAIN_CHAIN
    found = verify(records, used.record_hash)
    found.keyed = keyed
    if not found.ok:
        return found
    last = records[-1].record_hash if records else ""
    problem = check_head(run_id, head, count, last)
    if problem is not None:
        return LedgerVerification(
            False, count, min(count, head.count), problem, "head", keyed=keyed
        )
    problem = state_problem(run_id, state, used)
    if problem is not None:
        return LedgerVerification(False, count, None, problem, "state", keyed=keyed)
    if not head.state_digest:
        found.notes.append("its head records no state digest; its state is not checked")
    if chain.keyed and not keyed:
        found.notes.append(
            f"this ledger is not keyed (plain SHA-256): it was written without {KEY_ENV}, "
            "so the key does not vouch for it"
        )
    return found
