"""The built-in executors: inline, subprocess, process_pool."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from spindle.core.errors import TaskError
from spindle.core.plugin import Suspend
from spindle.core.workflow import ArtifactSpec
from spindle.plugins.executors.inline import InlineExecutor
from spindle.plugins.executors.process_pool import ProcessPoolExecutor
from spindle.plugins.executors.subprocess import SubprocessExecutor
from spindle.plugins.payloads import CommandPayload
from spindle.plugins.runtimes.command import CommandRuntime
from spindle.plugins.runtimes.python import PythonRuntime
from spindle.plugins.runtimes.python_code import PythonCodeRuntime

# --- functions run in other processes (module level: importable by reference) --------------


def whoami(ctx, x):
    return {
        "pid": os.getpid(),
        "x": x,
        "node": ctx.node_id,
        "key": ctx.idempotency_key,
        "run_dir": str(ctx.run_dir),
    }


async def async_double(x):
    await asyncio.sleep(0)
    return {"pid": os.getpid(), "value": x * 2}


def interval(delay):
    start = time.time()
    time.sleep(delay)
    return os.getpid(), start, time.time()


def fails(x):
    print("about to fail", flush=True)
    raise ValueError(f"bad {x}")


def asks(ctx):
    return ctx.ask_user("Publish?")


def dies():
    os._exit(7)


def steps_twice(ctx, x):
    return {"pid": os.getpid(), "values": [ctx.step(square, x), ctx.step(square, x)]}


def square(x):
    return x * x


# --- helpers ----------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.exists() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


async def read_pid(path: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def command(make_task, cmd, executor=None, **kw):
    rt = CommandRuntime(command=cmd)
    return make_task(rt, executor or SubprocessExecutor(), **kw)


async def prepare(task):
    return await task.runtime.setup_runtime(task)


# --- inline ---------------------------------------------------------------------------


def test_sync_functions_run_off_the_event_loop(make_task):
    """A blocking sync function runs in a thread while the loop keeps ticking."""
    ticks = 0

    def blocking():
        time.sleep(0.3)
        return threading.get_ident()

    async def ticker(stop):
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main():
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        rt = PythonRuntime(function=blocking)
        task = make_task(rt, InlineExecutor())
        outcome = await task.executor.execute(await prepare(task), task)
        stop.set()
        await tick
        return outcome.value

    thread = asyncio.run(main())
    assert thread != threading.get_ident()
    assert ticks >= 10


def test_async_functions_are_awaited_on_the_loop(make_task, run_node):
    """An async function runs in the event loop's thread."""

    async def where():
        await asyncio.sleep(0)
        return threading.get_ident()

    rt = PythonRuntime(function=where)
    assert run_node(make_task(rt, InlineExecutor())).value == threading.get_ident()


def test_inline_exceptions_propagate_unchanged(make_task, run_node):
    """An exception from the function reaches the caller as itself."""
    rt = PythonRuntime(function=fails)
    with pytest.raises(ValueError, match="bad 2"):
        run_node(make_task(rt, InlineExecutor(), inputs={"x": 2}))


def test_suspend_propagates_from_a_sync_function(make_task, run_node):
    """ctx.ask_user in a sync function (in a thread) raises Suspend to the engine, unwrapped."""

    def approve(ctx):
        return ctx.ask_user("Publish?", ["yes", "no"])

    rt = PythonRuntime(function=approve)
    with pytest.raises(Suspend) as info:
        run_node(make_task(rt, InlineExecutor()))
    assert info.value.effect.kind == "ask_user"
    assert info.value.effect.params == {"prompt": "Publish?", "choices": ["yes", "no"]}


def test_suspend_propagates_from_an_async_function(make_task, run_node):
    """ctx.wait_for_event in an async function raises Suspend to the engine."""

    async def waits(ctx):
        return ctx.wait_for_event("paid")

    rt = PythonRuntime(function=waits)
    with pytest.raises(Suspend) as info:
        run_node(make_task(rt, InlineExecutor()))
    assert info.value.effect.kind == "wait_event"


def test_suspend_propagates_from_python_code(make_task, run_node):
    """ctx.ask_user inside a python_code snippet raises Suspend."""
    rt = PythonCodeRuntime(code="result = ctx.ask_user('ok?')")
    with pytest.raises(Suspend):
        run_node(make_task(rt, InlineExecutor()))


def test_inline_refuses_a_command_payload(make_task, run_dir):
    """Handing inline a payload it does not accept raises TypeError naming both."""
    task = make_task(None, InlineExecutor())
    payload = CommandPayload(command="true", cwd=run_dir)
    with pytest.raises(TypeError, match="executor 'inline' cannot run a CommandPayload"):
        asyncio.run(InlineExecutor().execute(payload, task))


# --- subprocess: commands -------------------------------------------------------------------


def test_command_result_is_stdout_without_trailing_newlines(make_task, run_node):
    """The node result is stdout with its trailing newlines stripped."""
    outcome = run_node(command(make_task, "printf 'a\\nb\\n\\n'"))
    assert outcome.value == "a\nb"
    assert outcome.exit_code == 0


def test_non_zero_exit_raises_task_error_with_stderr_tail(make_task, run_node):
    """A failing command raises TaskError with the exit code and the end of stderr."""
    task = command(make_task, "echo starting; echo 'it broke' >&2; exit 3", node_id="x")
    with pytest.raises(TaskError) as info:
        run_node(task)
    err = info.value
    assert str(err) == "node 'x': command exited with code 3: it broke"
    assert err.node_id == "x"
    assert err.details["exit_code"] == 3
    assert err.details["stderr_tail"] == "it broke\n"
    assert err.details["stdout_tail"] == "starting\n"


def test_a_command_killed_by_a_signal_says_which(make_task, run_node):
    """A command that dies from a signal is reported with the signal's name."""
    with pytest.raises(TaskError, match="command was killed by signal SIGKILL") as info:
        run_node(command(make_task, "kill -9 $$"))
    assert info.value.details["exit_code"] == -9


def test_output_is_logged_in_the_run_dir(make_task, run_node, run_dir):
    """stdout and stderr stream to logs/<node>.stdout and .stderr in the run dir."""
    outcome = run_node(command(make_task, "echo out; echo err >&2", node_id="build/step"))
    logs = run_dir / "logs"
    assert (logs / "build_step.stdout").read_text() == "out\n"
    assert (logs / "build_step.stderr").read_text() == "err\n"
    assert outcome.details["stdout_log"] == str(logs / "build_step.stdout")
    assert (outcome.stdout, outcome.stderr) == ("out\n", "err\n")


def test_logs_are_capped_and_note_the_truncation(make_task, run_node, run_dir):
    """A log stops at log_limit with a note; the outcome keeps the true tail."""
    ex = SubprocessExecutor(log_limit=1000, tail_size=100, result_limit=300)
    outcome = run_node(command(make_task, "head -c 5000 /dev/zero | tr '\\0' a; printf END", ex))
    log = (run_dir / "logs" / "n.stdout").read_bytes()
    assert log.startswith(b"a" * 1000)
    assert b"[spindle: log truncated after 1000 bytes; 4003 more bytes were not kept]" in log
    assert outcome.stdout == "a" * 97 + "END"
    assert outcome.value == "a" * 300
    assert outcome.details["result_truncated"] and outcome.details["log_truncated"]
    assert outcome.details["stdout_bytes"] == 5003


def test_retries_append_to_the_log_with_a_header(make_task, run_node, run_dir):
    """A later attempt appends to the node's log after an attempt header."""
    run_node(command(make_task, "echo first"))
    run_node(command(make_task, "echo second", attempt=2))
    assert (run_dir / "logs" / "n.stdout").read_text() == "first\n--- attempt 2 ---\nsecond\n"


def test_output_files_land_in_the_run_dir(make_task, run_node, run_dir):
    """A command writing {outputs.x.path} creates the file inside the run dir."""
    spec = ArtifactSpec(kind="file", path="out/hello.txt")
    run_node(
        command(
            make_task,
            "echo hello {inputs.who} > {outputs.out.path}",
            outputs={"out": spec},
            workflow_inputs={"who": "Ada"},
        )
    )
    assert (run_dir / "out" / "hello.txt").read_text() == "hello Ada\n"


def test_a_missing_shell_is_a_task_error(make_task, run_node):
    """A shell that does not exist fails the node with a clear message."""
    task = make_task(CommandRuntime(command="true", shell="/no/such/sh"), SubprocessExecutor())
    with pytest.raises(TaskError, match="cannot start '/no/such/sh'"):
        run_node(task)


def test_cancellation_kills_the_whole_process_group(make_task, run_dir):
    """Cancelling stops the shell and the children it started, not just the shell."""
    spec = ArtifactSpec(kind="file", path="pid")
    task = command(
        make_task, "sleep 60 & echo $! > {outputs.pid.path}; wait", outputs={"pid": spec}
    )

    async def main():
        running = asyncio.create_task(task.executor.execute(await prepare(task), task))
        pid = await read_pid(run_dir / "pid")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        return pid

    pid = asyncio.run(main())
    assert wait_gone(pid), f"child sleep {pid} outlived the cancellation"


def test_cancelling_while_the_process_starts_returns_promptly(make_task):
    """A cancel that lands while the child is starting stops its group without waiting on it."""
    task = command(make_task, "sleep 60 & sleep 60 & wait")

    async def main():
        running = asyncio.create_task(task.executor.execute(await prepare(task), task))
        await asyncio.sleep(0)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 5


def test_a_timeout_stops_the_process_group(make_task, run_dir):
    """asyncio.wait_for around execute (a node timeout) kills the command's children."""
    spec = ArtifactSpec(kind="file", path="pid")
    task = command(
        make_task, "sleep 60 & echo $! > {outputs.pid.path}; wait", outputs={"pid": spec}
    )

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(task.executor.execute(await prepare(task), task), 0.5)

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 5
    assert wait_gone(int((run_dir / "pid").read_text()))


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(make_task, run_dir):
    """Children that ignore SIGTERM get SIGKILL once `grace` has passed."""
    spec = ArtifactSpec(kind="file", path="pid")
    task = command(
        make_task,
        "trap '' TERM; sleep 60 & echo $! > {outputs.pid.path}; wait",
        SubprocessExecutor(grace=0.3),
        outputs={"pid": spec},
    )

    async def main():
        running = asyncio.create_task(task.executor.execute(await prepare(task), task))
        pid = await read_pid(run_dir / "pid")
        await asyncio.sleep(0.1)  # let the trap take effect before cancelling
        start = time.monotonic()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        return pid, time.monotonic() - start

    pid, took = asyncio.run(main())
    assert took >= 0.3
    assert wait_gone(pid)


def test_background_processes_left_behind_are_stopped(make_task, run_node, run_dir):
    """A command that exits leaving a job holding its stdout neither hangs nor leaks it."""
    spec = ArtifactSpec(kind="file", path="pid")
    task = command(
        make_task, "sleep 60 & echo $! > {outputs.pid.path}; echo done", outputs={"pid": spec}
    )
    start = time.monotonic()
    assert run_node(task).value == "done"
    assert time.monotonic() - start < 3
    assert wait_gone(int((run_dir / "pid").read_text()))


# --- subprocess: Python callables -----------------------------------------------------------


def test_a_python_function_runs_in_a_fresh_interpreter(make_task, run_node, run_dir):
    """A module-level function runs in another process with a data-only ctx."""
    rt = PythonRuntime(function=whoami)
    outcome = run_node(make_task(rt, SubprocessExecutor(), inputs={"x": [1, 2]}, node_id="who"))
    value = outcome.value
    assert value["pid"] != os.getpid()
    assert value == {
        **value,
        "x": [1, 2],
        "node": "who",
        "key": "run-1:who",
        "run_dir": str(run_dir),
    }


def test_an_async_function_runs_in_a_subprocess(make_task, run_node):
    """An async function is awaited in the child interpreter."""
    rt = PythonRuntime(function=async_double)
    value = run_node(make_task(rt, SubprocessExecutor(), inputs={"x": 21})).value
    assert value["value"] == 42 and value["pid"] != os.getpid()


def test_a_subprocess_exception_is_raised_again_with_its_traceback(make_task, run_node, run_dir):
    """The child's exception is re-raised as its own type, with the remote traceback noted."""
    rt = PythonRuntime(function=fails)
    with pytest.raises(ValueError, match="bad 5") as info:
        run_node(make_task(rt, SubprocessExecutor(), inputs={"x": 5}))
    notes = "".join(getattr(info.value, "__notes__", []))
    assert "raised in a subprocess (node 'n')" in notes and "in fails" in notes
    assert (run_dir / "logs" / "n.stdout").read_text() == "about to fail\n"


def test_a_lambda_cannot_run_in_a_subprocess(make_task, run_node):
    """A callable without an importable reference is refused with the fix."""
    rt = PythonRuntime(function=lambda: 1)
    with pytest.raises(TaskError) as info:
        run_node(make_task(rt, SubprocessExecutor()))
    assert str(info.value) == (
        "node 'n': cannot run '<lambda>' in a subprocess: it has no importable reference; "
        "use the inline executor or a module-level function"
    )


def test_a_python_call_that_exits_without_a_result_reports_the_code(make_task, run_node):
    """A function that ends its interpreter abruptly fails the node with the exit code."""
    rt = PythonRuntime(function=dies)
    with pytest.raises(TaskError, match="node 'n': python call exited with code 7") as info:
        run_node(make_task(rt, SubprocessExecutor()))
    assert info.value.details["exit_code"] == 7


def test_effects_in_a_subprocess_suspend_the_task(make_task, run_node):
    """ctx.ask_user in a subprocess raises Suspend here with the child's effect request."""
    rt = PythonRuntime(function=asks)
    with pytest.raises(Suspend) as info:
        run_node(make_task(rt, SubprocessExecutor()))
    effect = info.value.effect
    assert (effect.kind, effect.params, effect.key) == (
        "ask_user",
        {"prompt": "Publish?"},
        "run-1:n:0",
    )


def test_steps_in_a_subprocess_without_an_engine_run_once_in_the_child(make_task, run_node):
    """With a context built by hand, ctx.step runs in the child and keeps its value in memory."""
    rt = PythonRuntime(function=steps_twice)
    value = run_node(make_task(rt, SubprocessExecutor(), inputs={"x": 4})).value
    assert value["values"] == [16, 16] and value["pid"] != os.getpid()


# --- process pool -----------------------------------------------------------------------


def run_with_pool(make_task, calls, warm_up=(), **pool_options):
    """Run ``calls`` ((function, inputs) pairs) concurrently on one pool; return the outcomes.

    ``warm_up`` calls run first, so workers are started and have imported this module.
    """
    ex = ProcessPoolExecutor(**pool_options)

    async def gather(pairs):
        tasks = [
            make_task(PythonRuntime(function=fn), ex, inputs=inputs, node_id=f"n{i}")
            for i, (fn, inputs) in enumerate(pairs)
        ]
        payloads = [await prepare(t) for t in tasks]
        return await asyncio.gather(
            *(ex.execute(p, t) for p, t in zip(payloads, tasks, strict=True)),
            return_exceptions=True,
        )

    async def main():
        try:
            await gather(warm_up)
            return await gather(calls)
        finally:
            await ex.aclose()

    return asyncio.run(main())


def test_process_pool_runs_calls_in_parallel_in_other_processes(make_task):
    """Calls run at the same time in several worker processes."""
    outcomes = run_with_pool(
        make_task, [(interval, {"delay": 0.5})] * 3, [(interval, {"delay": 0.2})] * 3, max_workers=3
    )
    results = [o.value for o in outcomes]
    pids = {pid for pid, _, _ in results}
    assert os.getpid() not in pids and len(pids) == 3
    assert max(s for _, s, _ in results) < min(e for _, _, e in results)  # all overlapped


def test_process_pool_passes_a_stand_in_ctx_and_raises_originals(make_task):
    """ctx arrives as a stand-in; exceptions come back as their own type, effects suspend."""
    outcomes = run_with_pool(
        make_task, [(whoami, {"x": 1}), (fails, {"x": 9}), (asks, {})], max_workers=2
    )
    assert outcomes[0].value["node"] == "n0" and outcomes[0].value["pid"] != os.getpid()
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad 9"
    assert isinstance(outcomes[2], Suspend) and outcomes[2].effect.kind == "ask_user"


def test_process_pool_refuses_a_lambda(make_task):
    """A lambda cannot be sent to a worker: TaskError with the fix."""
    ex = ProcessPoolExecutor()
    task = make_task(PythonRuntime(function=lambda: 1), ex)

    async def main():
        try:
            await ex.execute(await prepare(task), task)
        finally:
            await ex.aclose()

    with pytest.raises(TaskError, match="cannot run '<lambda>' in a process pool"):
        asyncio.run(main())


def test_process_pool_recovers_after_a_worker_dies(make_task):
    """A dead worker fails that node; the next call gets a fresh pool."""
    ex = ProcessPoolExecutor(max_workers=1)

    async def main():
        try:
            dead = make_task(PythonRuntime(function=dies), ex, node_id="dead")
            with pytest.raises(TaskError, match="a process pool worker died"):
                await ex.execute(await prepare(dead), dead)
            ok = make_task(PythonRuntime(function=square), ex, inputs={"x": 7})
            return (await ex.execute(await prepare(ok), ok)).value
        finally:
            await ex.aclose()

    assert asyncio.run(main()) == 49


def test_aclose_shuts_the_pool_down(make_task):
    """aclose() stops the workers and a later call starts a new pool."""
    ex = ProcessPoolExecutor(max_workers=1)

    async def main():
        task = make_task(PythonRuntime(function=square), ex, inputs={"x": 3})
        assert (await ex.execute(await prepare(task), task)).value == 9
        pool = ex.pool()
        await ex.aclose()
        assert ex._pool is None
        with pytest.raises(RuntimeError, match="after shutdown"):
            pool.submit(square, 1)

    asyncio.run(main())


def test_executors_build_from_mappings(registry):
    """Executor options structure from YAML-like mappings."""
    ex = registry.create("executor", {"kind": "subprocess", "grace": 1, "log_limit": 2048})
    assert isinstance(ex, SubprocessExecutor) and ex.grace == 1.0 and ex.log_limit == 2048
    pool = registry.create("executor", {"kind": "process_pool", "max_workers": 2})
    assert isinstance(pool, ProcessPoolExecutor) and pool.max_workers == 2
    assert isinstance(registry.create("executor", {"kind": "inline"}), InlineExecutor)
    assert sys.executable  # the child interpreter the subprocess executor uses
