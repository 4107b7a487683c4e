"""The engine refuses to continue a run whose ledger does not match its head.

Resume, cancel and rerun read the run's state and ledger before they write;
a ledger whose last records were removed, a state edited in the store, or a
keyed ledger without its key make them raise ``LedgerIntegrityError`` and
leave the run as it was (no completed node runs again).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from spindle import RunStatus, Workflow
from spindle.core.errors import LedgerIntegrityError

from .conftest import run

RAN: list[str] = []


def approval() -> Workflow:
    wf = Workflow("approval")

    @wf.node
    def draft() -> str:
        RAN.append("draft")
        return "text"

    wf.effect("approve", {"kind": "ask_user", "prompt": "Publish?"}, after=["draft"])

    @wf.node
    def publish(approve: str) -> str:
        return f"answer={approve}"

    wf.output = "publish"
    return wf


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RAN.clear()


def _sql(url: str, statement: str) -> None:
    conn = sqlite3.connect(Path(url.removeprefix("sqlite:///")))
    with conn:
        conn.execute(statement)
    conn.close()


def test_resume_and_cancel_refuse_a_truncated_ledger(sqlite_url, make_engine):
    """A waiting run missing its last record is neither resumed nor cancelled."""
    wf = approval()

    async def main():
        async with make_engine(sqlite_url) as engine:
            waiting = await engine.run(wf)
        _sql(sqlite_url, "DELETE FROM ledger WHERE seq = (SELECT max(seq) FROM ledger)")
        async with make_engine(sqlite_url) as engine:
            rid = waiting.run_id
            with pytest.raises(LedgerIntegrityError) as resumed:
                await engine.resume(rid, "approve", "yes", workflow=wf)
            with pytest.raises(LedgerIntegrityError) as cancelled:
                await engine.cancel(rid)
            return rid, str(resumed.value), str(cancelled.value), await engine.get_run(rid)

    rid, resumed, cancelled, after = run(main())
    assert resumed.startswith(
        f"run {rid} cannot be continued: ledger of run {rid} is truncated: its head records "
        "2 records ending in hash "
    )
    assert resumed.endswith(
        "the ledger holds 1; continuing would run its completed nodes again. Check it with "
        f"'spindle ledger verify {rid}' and restore the store from a backup"
    )
    assert cancelled.startswith(f"run {rid} cannot be cancelled: ledger of run {rid} is truncated")
    assert after.status == RunStatus.WAITING
    assert RAN == ["draft"]


def test_an_edited_state_is_not_continued(sqlite_url, make_engine):
    """A waiting run whose stored state was edited (its prompt) is not resumed."""
    wf = approval()

    async def main():
        async with make_engine(sqlite_url) as engine:
            waiting = await engine.run(wf)
        _sql(sqlite_url, "UPDATE runs SET body = replace(body, 'Publish?', 'Delete all?')")
        async with make_engine(sqlite_url) as engine:
            with pytest.raises(LedgerIntegrityError, match="the stored state of run") as refused:
                await engine.resume(waiting.run_id, "approve", "yes", workflow=wf)
            return str(refused.value)

    assert "the run's row was changed after it was written" in run(main())
    assert RAN == ["draft"]


def test_rerun_refuses_a_truncated_source(sqlite_url, make_engine):
    """A rerun does not reuse results from a ledger that lost its last records."""
    wf = Workflow("two")

    @wf.node
    def a() -> int:
        return 1

    @wf.node
    def b(a: int) -> int:
        return a + 1

    async def main():
        async with make_engine(sqlite_url) as engine:
            done = await engine.run(wf)
        _sql(sqlite_url, "DELETE FROM ledger WHERE seq = (SELECT max(seq) FROM ledger)")
        async with make_engine(sqlite_url) as engine:
            with pytest.raises(LedgerIntegrityError, match="is truncated"):
                await engine.rerun(done.run_id, "b", workflow=wf)

    run(main())


def test_a_keyed_run_is_continued_only_with_its_key(sqlite_url, make_engine):
    """A run created with a ledger key is refused by an engine without it (or with another)
    and continued, keyed, by one with it."""
    wf = approval()

    async def main():
        async with make_engine(sqlite_url, ledger_key="k1") as engine:
            waiting = await engine.run(wf)
        rid = waiting.run_id
        errors = []
        for key in (None, "k2"):
            async with make_engine(sqlite_url, ledger_key=key) as engine:
                with pytest.raises(LedgerIntegrityError) as refused:
                    await engine.resume(rid, "approve", "yes", workflow=wf)
                errors.append(str(refused.value))
                with pytest.raises(LedgerIntegrityError, match="to cancel it"):
                    await engine.cancel(rid)
        async with make_engine(sqlite_url, ledger_key="k1") as engine:
            done = await engine.resume(rid, "approve", "yes", workflow=wf)
            verified = await engine.verify_ledger(rid)
        async with make_engine(sqlite_url) as engine:
            unkeyed = await engine.verify_ledger(rid)
        return rid, errors, done, verified, unkeyed

    rid, errors, done, verified, unkeyed = run(main())
    assert errors[0].startswith(f"ledger of run {rid} is keyed (key id ")
    assert errors[0].endswith(
        "); set SPINDLE_LEDGER_KEY to the key it was written with to continue it"
    )
    assert "but SPINDLE_LEDGER_KEY has key id" in errors[1]
    assert done.status == RunStatus.COMPLETED
    assert (verified.ok, verified.keyed, verified.count) == (True, True, 6)
    assert (unkeyed.ok, unkeyed.key_problem) == (False, True)


def test_a_run_created_without_a_key_stays_plain(sqlite_url, make_engine):
    """An engine with a key continues a plain run as a plain chain (verify notes it)."""
    wf = approval()

    async def main():
        async with make_engine(sqlite_url) as engine:
            waiting = await engine.run(wf)
        async with make_engine(sqlite_url, ledger_key="k") as engine:
            done = await engine.resume(waiting.run_id, "approve", "yes", workflow=wf)
            return done, await engine.verify_ledger(waiting.run_id)

    done, verified = run(main())
    assert done.status == RunStatus.COMPLETED
    assert verified.ok and not verified.keyed
    assert any("not keyed" in note for note in verified.notes)
