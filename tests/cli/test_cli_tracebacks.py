"""The tracebacks `spindle show` prints, from the ledger, in-process
(``tests/e2e/test_cli_tracebacks.py`` runs the command in a subprocess)."""

from __future__ import annotations

from spindle._cli import _render, _tracebacks
from spindle.core.model import RunState, RunStatus, StepKind, StepRecord, StepStatus

TRACEBACK = "Traceback (most recent call last):\n" + "".join(
    f'  File "m.py", line {i}, in f{i}\n' for i in range(1, 21)
)
TRACEBACK += "ValueError: boom\n"


def record(seq, node, kind, status, attempt=1, result=None, error=None):
    return StepRecord(
        "r1", seq, node, StepKind(kind), StepStatus(status), f"k{seq}", attempt, result, error
    )


def failed(seq, node, kind="node", attempt=1, text=TRACEBACK):
    return record(seq, node, kind, "failed", attempt, {"traceback": text}, "node failed: boom")


# --- tracebacks from the ledger ----------------------------------------------------------


def test_a_failed_attempt_record_gives_its_traceback():
    """Failed node and retry records give their kept traceback; other records give None."""
    assert _tracebacks.attempt_traceback(failed(0, "a")) == TRACEBACK
    assert _tracebacks.attempt_traceback(failed(0, "a", "retry")) == TRACEBACK
    assert _tracebacks.attempt_traceback(record(0, "a", "node", "failed")) is None
    assert _tracebacks.attempt_traceback(record(0, "a", "node", "completed", 1, "x")) is None
    wrong = record(0, "a", "call", "failed", 1, {"traceback": "t"})
    assert _tracebacks.attempt_traceback(wrong) is None


def test_nodes_showing_an_error_get_their_latest_traceback():
    """A failed or retrying node gets its latest kept traceback; a completed one gets None."""
    ledger = [
        failed(0, "a", "retry", 1, "first\n"),
        record(1, "a", "node", "completed", 2, "ok"),
        failed(2, "b", "retry", 1, "b1\n"),
        failed(3, "b", "node", 2, "b2\n"),
        failed(4, "c", "retry", 1, "c1\n"),
        record(5, "c", "node", "failed", 2, None, "node 'c': timed out"),
    ]
    rows = _render.node_rows(["a", "b", "c", "d"], ledger)
    _tracebacks.add_tracebacks(rows, ledger)
    assert rows["a"]["traceback"] is None
    assert (rows["b"]["traceback"], rows["b"]["traceback_attempt"]) == ("b2\n", 2)
    assert (rows["c"]["traceback"], rows["c"]["traceback_attempt"]) == ("c1\n", 1)
    assert rows["d"]["traceback"] is None


def test_show_lines_keep_the_end_of_a_long_traceback_and_say_where_the_rest_is():
    """A long traceback is cut to its last lines, headed by how to print all of it."""
    info = {"traceback": TRACEBACK, "traceback_attempt": 1, "attempts": 1}
    lines = _tracebacks.show_lines("r1", "a", info, limit=5)
    assert lines[0] == "traceback (last 5 of 22 lines; all of it: spindle logs r1 a):"
    assert lines[1:] == [f"  {x}" for x in TRACEBACK.splitlines()[-5:]]
    assert lines[-1] == "  ValueError: boom"


def test_show_lines_print_a_short_traceback_whole_and_name_an_earlier_attempt():
    """A short traceback is printed whole; one of an earlier attempt says which."""
    info = {"traceback": "T\nValueError: x\n", "traceback_attempt": 1, "attempts": 2}
    assert _tracebacks.show_lines("r1", "a", info) == [
        "traceback of attempt 1:",
        "  T",
        "  ValueError: x",
    ]
    assert _tracebacks.show_lines("r1", "a", {"traceback": None}) == []


def test_show_view_prints_the_traceback_under_the_nodes_error(capsys):
    """The show view puts a failed node's traceback right under its error."""
    ledger = [failed(0, "a")]
    rows = _render.node_rows(["a"], ledger)
    _tracebacks.add_tracebacks(rows, ledger)
    _render.print_show(RunState("r1", "wf", RunStatus.FAILED), rows, [], False)
    out = capsys.readouterr().out
    assert "  a  failed\n     node failed: boom\n     traceback (last 15 of 22 lines" in out
    assert "       ValueError: boom\n" in out
