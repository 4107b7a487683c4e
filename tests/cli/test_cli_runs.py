"""The run commands in-process: argument handling, the JSON document, waiting
instructions, progress lines and the ``show`` view (``tests/e2e`` drives the
same commands in a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta

import pytest
from click.testing import CliRunner

from spindle._cli import _render, runs
from spindle.cli import BUILTIN_COMMANDS, make_cli
from spindle.core.model import (
    Lease,
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
    utcnow,
)

HELLO = """\
name: hello
inputs: {who: world}
nodes:
  say:
    runtime: {kind: python_code, code: "result = 'hello ' + inputs['who']"}
output: say
"""


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(make_cli(), list(args), catch_exceptions=False)


def event(type_, node=None, run_id="r1", **payload):
    return RunLifecycleEvent("e", run_id, LifecycleEventType(type_), 0, utcnow(), node, payload)


# --- wiring and arguments ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["run", "resume", "emit", "cancel", "runs", "show", "ledger"])
def test_builtin_table_points_at_the_runs_module(name):
    """Each run command is registered lazily as spindle._cli.runs:<name>."""
    assert BUILTIN_COMMANDS[name][0] == f"spindle._cli.runs:{name}"
    assert getattr(runs, name).name == name


def test_the_worker_command_lives_in_its_own_module():
    """`spindle worker` is registered lazily as spindle._cli.worker:worker."""
    from spindle._cli import worker

    assert BUILTIN_COMMANDS["worker"][0] == "spindle._cli.worker:worker"
    assert worker.worker.name == "worker"


def test_input_values_are_json_when_they_parse_and_text_otherwise():
    """--input values are JSON when valid (numbers, lists) and plain text otherwise."""
    assert runs._parse_inputs(("n=3", "xs=[1, 2]", "who=Ada", "s=x; rm -rf ~", "e=")) == {
        "n": 3,
        "xs": [1, 2],
        "who": "Ada",
        "s": "x; rm -rf ~",
        "e": "",
    }


def test_run_prints_output_and_exits_0(runner, tmp_path, monkeypatch):
    """`spindle run FILE` prints the run's status and output and exits 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(HELLO)
    result = invoke(runner, "run", "hello.yaml", "--store", "memory://", "-i", "who=Ada")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("completed\noutput: hello Ada\n")
    assert "  say completed in " in result.stderr


def test_run_json_prints_one_document(runner, tmp_path, monkeypatch):
    """`run --json` prints exactly one JSON document and no progress."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(HELLO)
    result = invoke(runner, "run", "hello.yaml", "--store", "memory://", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["status"] == "completed"
    assert doc["output"] == "hello world"
    assert result.stderr == ""


def test_a_json_command_that_fails_to_parse_leaves_stdout_as_it_was(runner, tmp_path, monkeypatch):
    """`--json` followed by a bad option value is a usage error; the next command in the same
    process still prints its document to its own stdout."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(HELLO)
    bad = invoke(runner, "runs", "--json", "--status", "no-such-status")
    assert bad.exit_code == 2
    result = invoke(runner, "run", "hello.yaml", "--store", "memory://", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "completed"


def test_ledger_verify_without_a_run_id_is_a_usage_error(runner):
    """`spindle ledger verify` with no run id exits 2 with the usage line."""
    result = invoke(runner, "ledger", "verify")
    assert result.exit_code == 2
    assert result.stderr == "error: usage: spindle ledger verify RUN_ID\n"


def test_runs_refuses_an_unknown_status(runner):
    """`spindle runs --status` accepts only run statuses."""
    result = invoke(runner, "runs", "--status", "sleeping")
    assert result.exit_code == 2
    assert "'sleeping' is not one of 'pending', 'running', 'waiting'" in result.stderr


# --- the JSON document and waiting instructions ----------------------------------------


def waiting_state():
    state = RunState("r1", "wf", RunStatus.WAITING)
    state.waits = [
        WaitState("approve", WaitReason.USER, "approve", prompt="Ship?", choices=["yes", "no"]),
        WaitState("paid", WaitReason.EVENT, "paid", event_key="payment"),
        WaitState("child", WaitReason.SUBWORKFLOW, "child", child_run_id="c1"),
        WaitState("nap", WaitReason.TIMER, "nap", due_at=utcnow() + timedelta(hours=1)),
    ]
    return state


def test_document_has_the_scripting_fields():
    """The JSON document holds run_id, status, output, waiting (key, prompt, ...) and error."""
    doc = _render.document(waiting_state())
    assert {"run_id", "status", "output", "waiting", "error"} <= set(doc)
    assert {k: doc["waiting"][k] for k in ("key", "reason", "prompt", "choices")} == {
        "key": "approve",
        "reason": "user",
        "prompt": "Ship?",
        "choices": ["yes", "no"],
    }
    assert [w["key"] for w in doc["waits"]] == ["approve", "paid", "child", "nap"]
    json.dumps(doc)  # serializable as it is


def test_how_to_continue_names_the_command_for_each_wait():
    """Each kind of wait gets the command that satisfies it."""
    text = "\n".join(_render.how_to_continue(waiting_state()))
    assert "  approve: Ship? [yes / no]" in text
    assert "answer: spindle resume r1 --key approve --payload '\"yes\"'" in text
    assert "deliver: spindle emit payment --payload" in text
    assert "see what it needs: spindle show c1" in text
    assert "nap: timer due at " in text and "spindle worker" in text


# --- progress ------------------------------------------------------------------------


def test_progress_prints_plain_lines_with_durations(capsys):
    """Without a terminal, each node event is one plain stderr line."""
    progress = _render.Progress(color=False)

    async def feed():
        await progress.on_event(event("node_started", "a", attempt=1))
        await progress.on_event(event("node_completed", "a"))
        await progress.on_event(event("node_started", "b", attempt=2))
        await progress.on_event(event("node_retrying", "b", delay=0.5, error="boom"))
        await progress.on_event(event("node_started", "c", run_id="child123456"))
        await progress.on_event(event("run_waiting", "d", waits=["d"]))

    asyncio.run(feed())
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "  a running"
    assert lines[1].startswith("  a completed in ") and lines[1].endswith("s")
    assert lines[2] == "  b running (attempt 2)"
    assert lines[3].startswith("  b failed in ") and lines[3].endswith("; retrying in 0.5s: boom")
    assert lines[4] == "  c (sub-run child123) running"
    assert lines[5] == "  d waiting"


def test_progress_on_a_terminal_uses_colour(capsys, monkeypatch):
    """With colour on, status words are styled with terminal escape codes."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    progress = _render.Progress(color=True)

    async def feed():
        await progress.on_event(event("node_started", "a"))
        await progress.on_event(event("node_failed", "a", error="bad"))

    asyncio.run(feed())
    progress.close()
    err = capsys.readouterr().err
    assert "\x1b[" in err
    assert "failed" in err and "bad" in err


# --- show ----------------------------------------------------------------------------


def record(seq, node, kind, status, attempt=1, seconds=1.0, error=None):
    start = utcnow()
    return StepRecord(
        "r1",
        seq,
        node,
        StepKind(kind),
        StepStatus(status),
        f"k{seq}",
        attempt,
        error=error,
        started_at=start,
        finished_at=start + timedelta(seconds=seconds),
    )


def test_node_rows_summarize_status_attempts_and_errors():
    """Nodes get their last status, attempt count and error; unrecorded nodes are pending."""
    ledger = [
        record(0, "a", "retry", "failed", 1, error="boom"),
        record(1, "a", "node", "completed", 2),
        record(2, "b", "node", "failed", 1, error="bad"),
        record(3, "", "run", "failed"),
    ]
    rows = _render.node_rows(["a", "b", "c"], ledger)
    assert rows["a"]["status"] == "completed"
    assert rows["a"]["attempts"] == 2
    assert rows["a"]["error"] is None
    assert rows["a"]["seconds"] is not None
    assert rows["b"] == {"status": "failed", "attempts": 1, "seconds": 1.0, "error": "bad"}
    assert rows["c"]["status"] == "pending"
    assert list(rows) == ["a", "b", "c"]


def test_running_run_without_a_live_driver_is_interrupted():
    """A running run is interrupted when its lease is gone, expired or held by a dead pid."""
    state = RunState("r1", "wf", RunStatus.RUNNING)
    later = utcnow() + timedelta(minutes=1)
    alive = Lease("o", "here", os.getpid(), later, 1)
    assert _render.interrupted(state, None, "here")
    assert not _render.interrupted(state, alive, "here")
    assert _render.interrupted(state, Lease("o", "here", os.getpid(), utcnow(), 1), "here")
    assert _render.interrupted(state, Lease("o", "here", 2**22 + 12345, later, 1), "here")
    assert not _render.interrupted(RunState("r1", "wf", RunStatus.WAITING), None, "here")


def test_show_view_lists_nodes_waits_and_how_to_answer(capsys):
    """The show view has status, node rows with durations and attempts, and the waits."""
    state = waiting_state()
    rows = _render.node_rows(
        ["approve", "a"],
        [record(0, "a", "retry", "failed", 1), record(1, "a", "node", "completed", 3)],
    )
    _render.print_show(state, rows, [], False)
    out = capsys.readouterr().out
    assert "status    waiting\n" in out
    assert "  approve  pending\n" in out
    assert "(3 attempts)" in out
    assert "answer: spindle resume r1 --key approve" in out


def test_table_cells_keep_one_line_and_a_bounded_width():
    """A table cell shows the first line of a long or multi-line text, marked as cut."""
    assert _render.cell("short") == "short"
    assert _render.cell("x" * 80, width=10) == "xxxxxxx..."
    assert _render.cell("first line\nsecond line") == "first line ..."
    assert _render.cell("") == ""


@pytest.mark.parametrize(
    ("status", "code"),
    [("completed", 0), ("failed", 1), ("cancelled", 1), ("waiting", 3), ("running", 3)],
)
def test_exit_code_follows_the_run_status(status, code):
    """Exit codes: 0 completed, 1 failed or cancelled, 3 not finished."""
    assert runs._status_code(RunState("r1", "wf", RunStatus(status))) == code
