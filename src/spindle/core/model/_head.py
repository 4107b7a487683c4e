"""A run's ledger head: what its row records about its ledger (see ``_chain``)."""

from __future__ import annotations

from attrs import frozen

__all__ = ["LedgerHead"]


@frozen
class LedgerHead:
    """What the run's row records about its ledger, written with every commit.

    Attributes:
        count: the number of records the ledger holds.
        record_hash: the ``record_hash`` of the last record ("" for none).
        state_digest: the hash of the run's stored state (:func:`state_text`)
            chained onto ``record_hash`` ("" when the commit carried none).
        key_id: the fingerprint of the key the chain is keyed with, or None for a
            plain SHA-256 chain.
    """

    count: int
    record_hash: str
    state_digest: str = ""
    key_id: str | None = None
