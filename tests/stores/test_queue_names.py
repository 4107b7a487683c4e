"""Queue names and queue spots in run states (the claims themselves are in the store
contract, ``spindle.testing.StoreContract``)."""

from __future__ import annotations

import pytest

from spindle._testing._store_helpers import T0
from spindle.core.model import RunState


def test_a_queue_name_is_checked() -> None:
    from spindle.core.model import check_queue_name

    for bad in ("", " q", "a b", "x" * 101, "-lead"):
        with pytest.raises(ValueError, match="is not valid"):
            check_queue_name(bad)
    assert check_queue_name("emails.high:eu-1") == "emails.high:eu-1"


def test_a_run_state_without_a_queue_serializes_as_before() -> None:
    """Runs stored before queues existed keep their digest: no ``queue`` key appears."""
    from spindle.core.model import converter, state_text

    plain = RunState(run_id="r", workflow="w", created_at=T0, updated_at=T0)
    assert "queue" not in plain.to_dict()
    assert "queue" not in converter.unstructure(plain)
    assert '"queue"' not in state_text(plain)
