"""The inline executor keeps what a task prints in its node's log files, task by task."""

from __future__ import annotations

import asyncio
import re
import sys
import threading

import attrs

from spindle.plugins.executors.inline import InlineExecutor
from spindle.plugins.runtimes.python import PythonRuntime
from spindle.plugins.runtimes.python_code import PythonCodeRuntime

from .conftest import run_node_async


def test_concurrent_tasks_in_threads_keep_their_own_prints(make_task, run_dir, capsys):
    """Two sync tasks printing at once in two threads each find only their lines in their log."""
    both = threading.Barrier(2, timeout=10)

    def chatter(name):
        both.wait()  # both are running, in two threads, when they print
        for i in range(200):
            print(f"{name} line {i}")
        both.wait()
        return name

    async def main():
        tasks = [
            make_task(PythonRuntime(function=lambda n=n: chatter(n)), InlineExecutor(), node_id=n)
            for n in ("left", "right")
        ]
        return await asyncio.gather(*(run_node_async(t) for t in tasks))

    outcomes = asyncio.run(main())
    assert [o.value for o in outcomes] == ["left", "right"]
    for name in ("left", "right"):
        lines = (run_dir / "logs" / f"{name}.stdout").read_text().splitlines()
        assert lines == [f"{name} line {i}" for i in range(200)]
    # Echoed as before (where two threads' lines may interleave, as on any shared stream).
    shown = capsys.readouterr().out
    assert shown.count("left line ") == shown.count("right line ") == 200


def test_a_retry_appends_under_an_attempt_line_and_secrets_are_redacted(make_task, run_dir):
    """Attempt 2 appends after `--- attempt 2 ---`; a secret value is `***` in the log."""
    code = "print('token is hunter2'); import sys; print('oops', file=sys.stderr)"
    rt = PythonCodeRuntime(code=code)
    for attempt in (1, 2):
        task = attrs.evolve(
            make_task(rt, InlineExecutor(echo=False), attempt=attempt),
            secret_values=("hunter2",),
        )
        asyncio.run(run_node_async(task))
    assert (run_dir / "logs" / "n.stdout").read_text() == (
        "token is ***\n--- attempt 2 ---\ntoken is ***\n"
    )
    assert (run_dir / "logs" / "n.stderr").read_text() == "oops\n--- attempt 2 ---\noops\n"


def test_the_log_limit_caps_an_attempt(make_task, run_dir):
    """Past log_limit bytes, the log ends with a note saying how much was not kept."""
    rt = PythonCodeRuntime(code="print('x' * 99)")
    asyncio.run(run_node_async(make_task(rt, InlineExecutor(echo=False, log_limit=10))))
    assert (run_dir / "logs" / "n.stdout").read_text() == (
        "xxxxxxxxxx\n[spindle: log truncated after 10 bytes; 90 more bytes were not kept]\n"
    )


def test_streams_are_given_back_after_the_task(make_task):
    """Once no inline task runs, sys.stdout and sys.stderr are the streams they were."""
    before = (sys.stdout, sys.stderr)
    asyncio.run(run_node_async(make_task(PythonCodeRuntime(code="x = 1"), InlineExecutor())))
    assert (sys.stdout, sys.stderr) == before


def test_a_task_that_prints_nothing_leaves_no_log_file(make_task, run_dir):
    """Log files are opened on the first write: a quiet task costs no file."""
    asyncio.run(run_node_async(make_task(PythonCodeRuntime(code="x = 1"), InlineExecutor())))
    assert not (run_dir / "logs").exists()


def _shout(item):
    print(f"item {item}")
    return item * 2


def _mapper(ctx):
    return ctx.map(_shout, [1, 2, 3], concurrency=3)


def test_prints_of_ctx_map_items_are_kept_in_the_node_log(tmp_path):
    """ctx.map runs items in threads of its own: their prints still land in the node's log."""
    from spindle import Settings, SyncEngine, Workflow

    wf = Workflow("mapping", output="m")
    wf.task("m", {"kind": "python", "function": _mapper}, executor={"kind": "inline"})
    settings = Settings(runs_dir=str(tmp_path / "runs"))
    with SyncEngine(store=f"sqlite:///{tmp_path / 'db.sqlite'}", settings=settings) as engine:
        state = engine.run(wf)
        log = engine.run_dir(state.run_id) / "logs" / "m.stdout"
    assert state.output == [2, 4, 6]
    # The items print at once in three threads: their pieces may interleave.
    assert sorted(re.findall(r"item \d", log.read_text())) == ["item 1", "item 2", "item 3"]
