"""Before a run is continued: its ledger ends where its head says, under a key we hold.

A drive (and a cancel) reads the run's state and its ledger (or the ledger's
count and last hash) anyway; comparing them with the
:class:`~spindle.core.model.LedgerHead` the store keeps for it costs nothing
more. A ledger whose last records were removed would make the drive run
completed nodes again, and a keyed ledger extended with another key (or
none) would be broken from there on, so both are refused with
:class:`~spindle.core.errors.LedgerIntegrityError`.
"""

from __future__ import annotations

from spindle.core.errors import LedgerIntegrityError
from spindle.core.model import (
    PLAIN_CHAIN,
    LedgerChain,
    RunState,
    check_head,
    key_problem,
    state_problem,
)

__all__ = ["continue_chain"]


def continue_chain(
    chain: LedgerChain,
    state: RunState,
    count: int,
    last_hash: str,
    *,
    action: str = "continued",
    verb: str = "continue",
) -> LedgerChain:
    """The chain to extend ``state``'s ledger with, once it is safe to.

    Args:
        chain: the engine's chain (keyed when ``SPINDLE_LEDGER_KEY`` is set).
        state: the run as loaded (with its ``head``).
        count: the number of records its ledger holds.
        last_hash: the ``record_hash`` of the last of them ("" for none).
        action: what is refused, for the message ("continued", "cancelled").
        verb: the same as a verb ("continue", "cancel").

    Returns:
        The run's own chain: plain for a run written without a key (or before
        ledger heads), ``chain`` for a run keyed with its key.

    Raises:
        LedgerIntegrityError: the ledger does not end where the head says, the
            stored state does not match its digest, or the run is keyed with a
            key ``chain`` does not have.
    """
    head = state.head
    if head is None:
        return PLAIN_CHAIN  # written before heads (and keys) existed
    run_id = state.run_id
    problem = check_head(run_id, head, count, last_hash)
    if problem is not None:
        raise LedgerIntegrityError(
            f"run {run_id} cannot be {action}: {problem}; continuing would run its "
            f"completed nodes again. Check it with 'spindle ledger verify {run_id}' and "
            "restore the store from a backup"
        )
    if head.key_id is None:
        used = PLAIN_CHAIN
    elif head.key_id == chain.key_id:
        used = chain
    else:
        raise LedgerIntegrityError(key_problem(run_id, head.key_id, chain, f"{verb} it"))
    problem = state_problem(run_id, state, used)
    if problem is not None:
        raise LedgerIntegrityError(
            f"run {run_id} cannot be {action}: {problem}. Check it with 'spindle ledger "
            f"verify {run_id}' and restore the store from a backup"
        )
    return used
