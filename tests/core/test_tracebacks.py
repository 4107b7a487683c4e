"""The traceback a failed task keeps: from the task's own code on, capped, scrubbed later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import spindle
from spindle import Workflow
from spindle.core.engine._results import TRACEBACK_LIMIT, traceback_of
from spindle.core.errors import TaskError
from spindle.core.model import StepKind
from spindle.core.workflow import InputSpec

from .conftest import run


def divide(n: int) -> float:
    return 1 / n


# A stand-in for the engine: code whose file is inside the spindle package
# awaits the task in a worker thread and catches what it raises, as an attempt does.
CATCHER = """\
import asyncio


def catch(fn, *args):
    async def attempt():
        try:
            await asyncio.to_thread(fn, *args)
        except Exception as exc:
            return exc
        raise AssertionError("the task did not raise")

    return asyncio.run(attempt())
"""


def _in_spindle(source: str, name: str, filename: str) -> Any:
    where = Path(spindle.__file__).parent / filename
    namespace: dict[str, Any] = {}
    exec(compile(source, str(where), "exec"), namespace)
    return namespace[name]


def _raised_in_a_thread() -> BaseException:
    error: BaseException = _in_spindle(CATCHER, "catch", "_attempt_stand_in.py")(divide, 0)
    return error


def _frames(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]


def test_the_frames_before_the_tasks_code_are_left_out():
    """asyncio's and the thread pool's frames above the task's function are not kept."""
    kept = traceback_of(_raised_in_a_thread())
    assert kept is not None
    frames = _frames(kept["traceback"])
    assert len(frames) == 1, frames
    assert frames[0].endswith("in divide")
    assert kept["traceback"].startswith("Traceback (most recent call last):\n")
    assert kept["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")


def test_a_chained_error_is_trimmed_in_each_part():
    """``raise ... from`` keeps both tracebacks, each from the first frame of task code."""
    cause = _raised_in_a_thread()
    try:
        raise ValueError("could not divide") from cause
    except ValueError as exc:
        kept = traceback_of(exc)
    assert kept is not None
    text = kept["traceback"]
    assert "The above exception was the direct cause" in text
    assert "asyncio" not in text and "concurrent" not in text
    assert text.rstrip().endswith("ValueError: could not divide")


def test_a_traceback_that_never_leaves_spindle_is_kept_whole():
    """When every frame is spindle's (a bug of ours), nothing is left out."""
    source = (
        "def catch():\n"
        "    try:\n"
        "        raise ValueError('ours')\n"
        "    except ValueError as e:\n"
        "        return e\n"
    )
    kept = traceback_of(_in_spindle(source, "catch", "_a_bug_of_ours.py")())
    assert kept is not None
    frames = _frames(kept["traceback"])
    assert len(frames) == 1 and frames[0].endswith('_a_bug_of_ours.py", line 3, in catch'), kept


def test_a_spindle_error_keeps_no_traceback():
    """Its message says it all (a command's exit code, a timeout)."""
    try:
        raise TaskError("command exited with 3", node_id="n")
    except TaskError as exc:
        assert traceback_of(exc) is None


def test_a_huge_traceback_keeps_its_end():
    """A traceback longer than the cap keeps its last part, where the error is."""
    try:
        raise RuntimeError("x" * (TRACEBACK_LIMIT * 2))
    except RuntimeError as exc:
        kept = traceback_of(exc)
    assert kept is not None
    assert kept["traceback"].startswith("...\n")
    assert len(kept["traceback"]) == TRACEBACK_LIMIT + len("...\n")


def test_a_failed_node_records_where_its_code_raised(store_url, make_engine):
    """Through the engine and the inline executor, the record starts at the task."""
    wf = Workflow("fails")
    wf.task("d", {"kind": "python", "function": divide}, inputs={"n": {"value": 0}})

    async def main() -> Any:
        async with make_engine(store_url) as engine:
            state = await engine.run(wf)
            return await engine.ledger(state.run_id)

    records = run(main())
    failed = [r for r in records if r.kind == StepKind.NODE and r.node_id == "d"]
    text = failed[-1].result["traceback"]
    frames = _frames(text)
    assert len(frames) == 1 and frames[0].endswith("in divide"), text


def reject(token: str) -> None:
    try:
        raise LookupError(f"no account for token {token}")
    except LookupError as exc:
        raise PermissionError(f"login refused: {token!r} ({len(token)} chars)") from exc


def test_a_secret_in_a_traceback_is_scrubbed_wherever_it_appears(sqlite_url, make_engine):
    """The secret in the error, its repr and a chained cause is ``***`` in the record."""
    secret = "tok-8c1f0e2d"
    wf = Workflow("login", inputs={"token": InputSpec(secret=True)})
    wf.task("login", {"kind": "python", "function": reject}, inputs={"token": "inputs.token"})

    async def main() -> Any:
        async with make_engine(sqlite_url) as engine:
            state = await engine.run(wf, {"token": secret})
            return state, await engine.ledger(state.run_id)

    state, records = run(main())
    failed = [r for r in records if r.kind == StepKind.NODE and r.node_id == "login"][-1]
    text = failed.result["traceback"]
    assert secret not in text and secret not in (failed.error or "")
    assert secret not in (state.error or "")
    assert "login refused: '***'" in text
    assert "no account for token ***" in text  # the chained cause too
    assert "The above exception was the direct cause" in text


def test_a_failed_sub_step_keeps_a_scrubbed_traceback(sqlite_url, make_engine):
    """A ``ctx.step`` attempt that raised keeps where, with the secret scrubbed."""
    secret = "tok-77aa"
    wf = Workflow("charge", inputs={"token": InputSpec(secret=True)})

    @wf.node
    def pay(ctx: Any) -> str:
        token = ctx.workflow_inputs["token"]
        return ctx.step(
            _flaky_charge, token, name="charge", retry={"max_attempts": 2, "backoff": 0}
        )

    async def main() -> Any:
        async with make_engine(sqlite_url) as engine:
            state = await engine.run(wf, {"token": secret})
            return state, await engine.ledger(state.run_id)

    _FLAKY.clear()
    state, records = run(main())
    assert state.output == {"pay": "paid"}
    [failure] = [r for r in records if r.kind == StepKind.CALL_FAILURE]
    text = failure.result["traceback"]
    assert failure.result["delay"] == 0
    assert "card declined for ***" in text and secret not in text
    frames = _frames(text)
    assert frames[-1].endswith("in _flaky_charge"), frames


_FLAKY: list[str] = []


def _flaky_charge(token: str) -> str:
    _FLAKY.append(token)
    if len(_FLAKY) == 1:
        raise RuntimeError(f"card declined for {token}")
    return "paid"
