"""A run's ledger head: what its row records about its ledger (see ``_chain``)."""

from __future__ import annotations

from attrs import frozen

__all__ = ["MISSING_HEAD", "LedgerHead"]


@frozen
class LedgerHead:
    """What the store keeps beside a run's row about its ledger, written with every commit.

    Attributes:
        count: the number of records the ledger holds.
        record_hash: the ``record_hash`` of the last record ("" for none).
        state_digest: the hash of the run's stored state (:func:`state_text`)
            chained onto ``record_hash`` ("" when the commit carried none).
        key_id: the fingerprint of the key the chain is keyed with, or None for a
            plain SHA-256 chain.

    A store that knows it wrote a head for a run but can no longer find it
    (deleted behind its back) returns :data:`MISSING_HEAD` (``count`` -1).
    """

    count: int
    record_hash: str
    state_digest: str = ""
    key_id: str | None = None


#: What a store returns for a run whose head it wrote but cannot find any more.
MISSING_HEAD = LedgerHead(-1, "")
