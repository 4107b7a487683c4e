"""The progress displays in-process: :class:`Progress` (run, resume, retry, rerun)
and :class:`WorkerProgress` (``spindle worker``), fed lifecycle events and drawn
on a rich console that writes to a buffer as a terminal would.

``test_cli_progress_tty.py`` runs the real commands on a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from rich.console import Console

from spindle._cli import _live
from spindle._cli._progress import Progress
from spindle._cli._worker_progress import WorkerProgress
from spindle.core.model import (
    LifecycleEventType,
    RunLifecycleEvent,
    RunState,
    RunStatus,
    utcnow,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def event(type_, node=None, run_id="r1", **payload):
    return RunLifecycleEvent("e", run_id, LifecycleEventType(type_), 0, utcnow(), node, payload)


def terminal():
    """A console that draws as on a 100-column terminal, into a buffer."""
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100, highlight=False), buffer


def lines(buffer):
    """What a user sees at the end: the text without escape codes, line by line."""
    return [ANSI.sub("", x).strip() for x in buffer.getvalue().replace("\r", "\n").split("\n")]


def feed(progress, *events):
    async def go():
        for e in events:
            await progress.on_event(e)

    asyncio.run(go())


def a_run(nodes=3, fail=None):
    """The events of a run of ``nodes`` nodes, ``fail`` failing."""
    out = [event("run_started")]
    for i in range(nodes):
        out.append(event("node_started", f"n{i}", attempt=1))
        if f"n{i}" == fail:
            out.append(event("node_failed", f"n{i}", error=f"node 'n{i}': boom"))
        else:
            out.append(event("node_completed", f"n{i}"))
    out.append(event("run_failed" if fail else "run_completed"))
    return out


# --- the run display ------------------------------------------------------------------


def test_the_live_display_ends_in_a_one_line_summary():
    """On a terminal, a finished run leaves one summary line: done/total, failed, time."""
    console, buffer = terminal()
    progress = Progress(console=console, verbose=False)
    progress.begin("r1", total=3)
    feed(progress, *a_run(3))
    seen = [x for x in lines(buffer) if x]
    assert re.fullmatch(r"3/3 nodes · 0 failed · \d+\.\ds", seen[-1])
    assert progress.summary().startswith("3/3 nodes · 0 failed · ")
    progress.close()  # idempotent: no second summary
    assert [x for x in lines(buffer) if x] == seen


def test_per_node_lines_appear_on_a_terminal_only_when_verbose():
    """Without -v a terminal shows no per-node lines; with -v each completed node has one."""
    quiet_console, quiet = terminal()
    feed(Progress(console=quiet_console, verbose=False), *a_run(3))
    assert not any(x.startswith("n1 completed") for x in lines(quiet))
    loud_console, loud = terminal()
    feed(Progress(console=loud_console, verbose=True), *a_run(3))
    assert any(re.fullmatch(r"n1 completed in \d+\.\d\ds", x) for x in lines(loud))


def test_a_failure_is_printed_with_its_error_and_counted():
    """A failed node gets its line (with the error) even without -v; the summary counts
    it and the nodes the failed run never ran."""
    console, buffer = terminal()
    progress = Progress(console=console, verbose=False)
    progress.begin("r1", total=5)
    events = a_run(3, fail="n1")
    feed(progress, *events)
    seen = lines(buffer)
    assert any(x.startswith("n1 failed in ") and x.endswith(": node 'n1': boom") for x in seen)
    assert [x for x in seen if x][-1].startswith("3/5 nodes · 1 failed · 2 not run · ")


def test_a_retrying_node_is_counted_and_its_error_shown():
    """A failed attempt with a retry to come shows its error and counts as retrying."""
    console, buffer = terminal()
    progress = Progress(console=console, verbose=False)
    progress.begin("r1", total=2)
    feed(
        progress,
        event("run_started"),
        event("node_started", "a", attempt=1),
        event("node_retrying", "a", delay=0.5, error="flaky"),
    )
    assert progress.summary().startswith("0/2 nodes · 0 failed · 1 retrying · ")
    feed(progress, event("node_started", "a", attempt=2), event("node_completed", "a"))
    assert progress.summary().startswith("1/2 nodes · 0 failed · ")
    progress.close()
    assert any(x.endswith("; retrying in 0.5s: flaky") for x in lines(buffer))


def test_a_suspended_run_ends_the_display_with_its_waits():
    """A run that suspends waiting replaces the display with the summary and its waits."""
    console, buffer = terminal()
    progress = Progress(console=console, verbose=False)
    progress.begin("r1", total=2)
    feed(
        progress,
        event("run_started"),
        event("node_started", "a"),
        event("node_completed", "a"),
        event("node_started", "approve"),
        event("run_waiting", "approve", waits=["approve"]),
    )
    seen = [x for x in lines(buffer) if x]
    assert seen[-2].startswith("1/2 nodes · 0 failed · 1 waiting · ")
    assert seen[-1] == "approve waiting"
    # Answered in the same process (--interactive): the display comes back, then ends.
    feed(
        progress,
        event("run_resumed"),
        event("node_started", "approve"),
        event("node_completed", "approve"),
        event("run_completed"),
    )
    assert [x for x in lines(buffer) if x][-1].startswith("2/2 nodes · 0 failed · ")


def test_sub_run_nodes_show_as_running_but_do_not_count():
    """Nodes of a sub-workflow run are shown running (with the child's short id) and are
    not counted in the main run's done/total; their failures are printed."""
    console, buffer = terminal()
    progress = Progress(console=console, verbose=False)
    progress.begin("r1", total=1)
    feed(
        progress,
        event("run_started"),
        event("node_started", "child"),
        event("run_started", run_id="c0ffee123456"),
        event("node_started", "inner", run_id="c0ffee123456"),
    )
    drawn = ANSI.sub("", str(progress._render(100)))
    assert "running: child, inner (sub-run c0ffee12)" in drawn
    feed(
        progress,
        event("node_failed", "inner", run_id="c0ffee123456", error="inner broke"),
        event("run_failed", run_id="c0ffee123456"),
    )
    assert progress.summary().startswith("0/1 nodes · 0 failed · ")
    progress.close()
    assert any(x.startswith("inner (sub-run c0ffee12) failed") for x in lines(buffer))


def test_the_running_nodes_are_cut_to_fit_the_width():
    """Many running nodes are named as far as the line allows, then `+N more`."""
    progress = Progress(console=terminal()[0], verbose=False)
    progress.begin("r1", total=500)
    feed(progress, event("run_started"), *(event("node_started", f"s{i}") for i in range(200)))
    drawn = ANSI.sub("", str(progress._render(100)))
    progress.close()
    assert len(drawn) < 100
    assert re.search(r"running: s0, s1, .*s\d+ \+\d+ more$", drawn)
    assert "0/500 nodes · 0 failed · " in drawn


@pytest.mark.parametrize("verbose", [False, True])
def test_the_live_line_is_not_redrawn_per_event(monkeypatch, verbose):
    """Events only update counters, and -v lines are printed in batches: the live line
    is redrawn at a bounded rate, not once per event or per line."""
    console, buffer = terminal()
    progress = Progress(console=console, verbose=verbose)
    progress.begin("r1", total=2000)
    drawn = []
    original = progress._render
    monkeypatch.setattr(progress._line_out, "_render", lambda w: drawn.append(w) or original(w))

    async def go():
        await progress.on_event(event("run_started"))
        for i in range(2000):
            await progress.on_event(event("node_started", f"s{i}"))
            await progress.on_event(event("node_completed", f"s{i}"))
            if i % 100 == 0:
                await asyncio.sleep(0.01)  # the loop runs now and then, as in a real run

    asyncio.run(go())
    progress.close()
    assert progress.done == 2000
    assert 0 < len(drawn) < 400  # 4,000 node events, far fewer renders
    # Each redraw of the region (a refresh, or lines printed above it) erases it first.
    assert 0 < buffer.getvalue().count("\x1b[2K") < 400
    completed = [x for x in lines(buffer) if x.startswith("s") and " completed in " in x]
    assert len(completed) == (2000 if verbose else 0)


def test_piped_progress_has_no_summary_and_prints_every_line(capsys):
    """Piped (no terminal), -v or not, every node event is one plain line, as before."""
    progress = Progress(color=False, verbose=False)
    progress.begin("r1", total=3)
    feed(progress, *a_run(3))
    progress.close()
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert err.splitlines()[:2] == ["  n0 running", err.splitlines()[1]]
    assert err.splitlines()[1].startswith("  n0 completed in ")
    assert len(err.splitlines()) == 6
    assert "nodes" not in err


def test_fit_names_keeps_room_for_the_rest():
    """fit_names says how many it left out, or only the count when none fits."""
    names = [f"s{i}" for i in range(12, 19)]
    assert _live.fit_names(names, 7, 20) == "s12, s13 +5 more"
    assert _live.fit_names(names, 7, 21) == "s12, s13, s14 +4 more"
    assert _live.fit_names(names[:2], 2, 20) == "s12, s13"
    assert _live.fit_names(names, 7, 3) == "7"


@pytest.mark.parametrize(("seconds", "text"), [(3.24, "3.2s"), (65, "1m05s"), (7380, "2h03m")])
def test_elapsed_reads_short(seconds, text):
    """Durations print as seconds, minutes or hours."""
    assert _live.elapsed(seconds) == text


# --- the worker display -----------------------------------------------------------------


def state(run_id, status, error=None):
    return RunState(run_id, "wf", RunStatus(status), error=error)


def test_worker_piped_prints_a_line_per_claimed_and_per_finished_run(capsys):
    """Piped, the worker says when it holds a run and how each drive ended; a run
    another worker holds is not mentioned."""
    progress = WorkerProgress(color=False)
    for rid in ("r1", "r2", "r3"):
        progress.offered(rid)
    feed(progress, event("run_started", run_id="r1"), event("node_started", "a", run_id="r1"))
    progress.dropped("r3")
    progress.ended("r1", state("r1", "completed"))
    progress.ended("r2", state("r2", "failed", error="node 'a': boom"))
    progress.close()
    assert capsys.readouterr().err.splitlines() == [
        "run r1 claimed",
        "run r1 completed",
        "run r2 claimed",
        "run r2 failed: node 'a': boom",
    ]


def test_worker_live_line_counts_runs_and_ends_in_a_summary():
    """On a terminal the worker shows counts and running runs, prints failures, and
    ends in a summary line; completed runs get a line only with -v."""
    console, buffer = terminal()
    progress = WorkerProgress(console=console, verbose=False)
    progress.show()
    for rid in ("aaaaaaaa11", "bbbbbbbb22"):
        progress.offered(rid)
    feed(progress, event("run_started", run_id="aaaaaaaa11"))
    feed(progress, event("run_resumed", run_id="bbbbbbbb22"))
    drawn = ANSI.sub("", str(progress._render(100)))
    assert "worker: 2 claimed · 2 running · 0 finished · 0 failed" in drawn
    assert drawn.endswith("running: aaaaaaaa, bbbbbbbb")
    progress.ended("aaaaaaaa11", state("aaaaaaaa11", "completed"))
    progress.ended("bbbbbbbb22", state("bbbbbbbb22", "failed", error="boom"))
    progress.note("cccccccc33", "run cccccccc33 cannot be driven here: gone")
    progress.close()
    seen = [x for x in lines(buffer) if x]
    assert "run bbbbbbbb22 failed: boom" in seen
    assert "run cccccccc33 cannot be driven here: gone" in seen
    assert "run aaaaaaaa11 completed" not in seen
    assert re.fullmatch(
        r"worker: 2 claimed · 0 running · 2 finished · 1 failed · \d+\.\ds", seen[-1]
    )
    verbose_console, verbose = terminal()
    loud = WorkerProgress(console=verbose_console, verbose=True)
    loud.offered("r1")
    loud.ended("r1", state("r1", "completed"))
    loud.close()
    assert "run r1 completed" in lines(verbose)


def test_the_started_line_waits_for_the_run_to_exist(capsys):
    """`run ID started` is printed at the run's first event, never for a run refused
    before it was written (the command names the run before the engine writes it)."""
    refused = Progress(color=False)
    refused.begin("r0", total=1, announce="run r0 started (wf)")
    refused.close()
    assert capsys.readouterr().err == ""
    progress = Progress(color=False)
    progress.begin("r1", total=1, announce="run r1 started (wf)")
    feed(progress, event("run_started"), event("node_started", "a"), event("run_resumed"))
    assert capsys.readouterr().err.splitlines() == ["run r1 started (wf)", "  a running"]


def test_map_items_and_loop_iterations_count_in_the_total():
    """A map of 3 items and a loop of 2 iterations: the total grows by each item and
    iteration node as it appears, so the summary reads done/total, not 8/2."""
    console, _buffer = terminal()
    progress = Progress(console=console, verbose=False)
    progress.begin("r1", total=2)
    events = [event("run_started"), event("node_started", "m", attempt=1)]
    for i in range(3):
        events += [event("node_started", f"m[{i}]", attempt=1), event("node_completed", f"m[{i}]")]
    events.append(event("node_completed", "m"))
    events.append(event("node_started", "loop", attempt=1))
    for k in range(2):
        events += [event("node_started", f"loop#{k}/b"), event("node_completed", f"loop#{k}/b")]
        events.append(event("node_completed", f"loop#{k}"))
    events += [event("node_completed", "loop"), event("run_completed")]
    feed(progress, *events)
    assert progress.summary().startswith("9/9 nodes · 0 failed")
