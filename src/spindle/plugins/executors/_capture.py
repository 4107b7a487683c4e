"""What a Python task run in the engine's own process prints: kept in the node's log files.

The ``inline`` executor runs tasks in the engine process, where a ``print()``
would otherwise land on the host's own stdout — in the middle of the JSON
document ``spindle run --json`` prints, for one. While an inline task runs,
:func:`captured_output` sends what it writes to ``sys.stdout`` and
``sys.stderr`` to ``RUN_DIR/logs/NODE.stdout`` and ``.stderr``, the same
files (same name rule, same ``--- attempt N ---`` lines, same ``log_limit``
cap, secret values written as ``***``) the ``subprocess`` executor writes, so
``spindle logs RUN`` shows them.

How it tells one task's writes from another's: ``sys.stdout`` and
``sys.stderr`` are replaced, while at least one inline task runs, by a
:class:`_Switch` that looks up the task writing in a context variable.
:func:`asyncio.to_thread` copies the context into the worker thread, so a
sync task in a thread and an ``async def`` task on the loop are both found;
writes from anywhere else (the engine, the progress display, threads a task
starts itself) go to the stream that was there before. Redirecting the file
descriptors instead would catch C-level writes and child processes too, but
fd 1 is one per process, so it cannot tell two concurrent tasks apart; those
writes still reach the process's own stdout and stderr (``spindle run
--json`` moves fd 1 to stderr for the whole run, see
:mod:`spindle._cli._stdout`).

With ``echo`` (the default) what a task prints also still reaches the
stream it was meant for, as before; the log file is the record.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from spindle.plugins.executors._process import Capture, log_paths

if TYPE_CHECKING:
    from spindle import TaskContext

__all__ = ["begin_task_output", "captured_output", "end_task_output", "log_spec"]

_STREAMS = ("stdout", "stderr")


def log_spec(
    task: TaskContext, *, limit: int, echo: bool, detached: bool = False
) -> dict[str, Any]:
    """Where and how one attempt's output is kept, as plain data a worker process can take.

    ``detached`` (for another process) writes the run directory in; otherwise
    it is looked up from ``task`` on the first write, so a task that prints
    nothing does not create it.
    """
    return {
        "run_dir": str(task.run_dir) if detached else None,
        "task": None if detached else task,
        "node_id": task.node_id,
        "attempt": task.attempt,
        "secrets": [v for v in task.secret_values if v],
        "limit": limit,
        "echo": echo,
    }


# One lock for every attempt's log files: writes are rare next to the attempts
# themselves, and a lock per attempt would be made on every step.
_WRITE_LOCK = threading.Lock()


class _TaskOutput:
    """The two log files of one attempt of one node, opened on the first write.

    ``task`` (in this process) or ``run_dir`` (another one) says where they go.
    """

    __slots__ = (
        "_captures",
        "attempt",
        "closed",
        "echo",
        "limit",
        "node_id",
        "run_dir",
        "secrets",
        "task",
    )

    def __init__(
        self,
        task: TaskContext | None,
        run_dir: str | None,
        node_id: str,
        attempt: int,
        secrets: tuple[str, ...],
        limit: int,
        echo: bool,
    ) -> None:
        self.task = task
        self.run_dir = run_dir
        self.node_id = node_id
        self.attempt = attempt
        self.secrets = secrets
        self.limit = limit
        self.echo = echo
        self._captures: dict[str, Capture] = {}
        self.closed = False

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> _TaskOutput:
        return cls(
            spec["task"],
            spec["run_dir"],
            spec["node_id"],
            int(spec["attempt"]),
            tuple(spec["secrets"]),
            int(spec["limit"]),
            bool(spec["echo"]),
        )

    def write(self, stream: str, text: str) -> str:
        """Keep ``text`` in the log of ``stream``; return what may be echoed (redacted)."""
        with _WRITE_LOCK:  # a task may print from several threads
            if not self.closed:
                capture = self._captures.get(stream) or self._open(stream)
                capture.feed(text.encode("utf-8", "backslashreplace"))
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _open(self, stream: str) -> Capture:
        attempt = self.attempt
        task = self.task
        run_dir = task.run_dir if task is not None else Path(str(self.run_dir))
        paths = log_paths(run_dir, self.node_id)
        header = f"--- attempt {attempt} ---\n".encode() if attempt > 1 else b""
        capture = Capture(
            getattr(paths, stream),
            self.limit,
            0,
            header=header,
            secrets=tuple(s.encode() for s in self.secrets),
        )
        capture.open(append=attempt > 1)
        self._captures[stream] = capture
        return capture

    def close(self) -> None:
        with _WRITE_LOCK:
            self.closed = True
            for capture in self._captures.values():
                capture.close()


_current: contextvars.ContextVar[_TaskOutput | None] = contextvars.ContextVar(
    "spindle_task_output", default=None
)


class _Switch:
    """Stands in for ``sys.stdout`` / ``sys.stderr``: a running task's writes go to its log."""

    def __init__(self, stream: str, original: TextIO) -> None:
        self._stream = stream
        self.original = original

    def write(self, text: str) -> int:
        output = _current.get()
        if output is None or output.closed:
            return self.original.write(text)
        shown = output.write(self._stream, text)
        if output.echo:
            self.original.write(shown)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, isatty(), fileno(), buffer...: those of the stream it stands in for.
        return getattr(self.original, name)


class _Installed:
    """Puts the switches in place while at least one task is captured (counted, locked).

    When the last task leaves on an event loop, the streams are given back once
    the loop next runs its callbacks rather than at once: a drive running one
    inline node after another (without yielding to the loop) keeps the switches
    in place from one node to the next instead of swapping ``sys.stdout`` twice
    per step, and they are back before anything else on the loop runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._placed: list[tuple[str, _Switch]] = []
        self._made: dict[str, _Switch] = {}  # reused while the stream they wrap is the same
        self._restore_due = False

    def enter(self) -> None:
        with self._lock:
            if not self._users and not self._placed:
                for name in _STREAMS:
                    current = getattr(sys, name)
                    if current is None or isinstance(current, _Switch):
                        continue
                    switch = self._made.get(name)
                    if switch is None or switch.original is not current:
                        switch = self._made[name] = _Switch(name, current)
                    setattr(sys, name, switch)
                    self._placed.append((name, switch))
            self._users += 1

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop in this thread: give them back now
                self._restore_locked()
                return
            if not self._restore_due:
                self._restore_due = True
                loop.call_soon(self._restore)

    def _restore(self) -> None:
        with self._lock:
            self._restore_due = False
            if not self._users:
                self._restore_locked()

    def _restore_locked(self) -> None:
        for name, switch in self._placed:
            # Only undo our own: the host may have replaced the stream since.
            if getattr(sys, name) is switch:
                setattr(sys, name, switch.original)
        self._placed.clear()


_installed = _Installed()


class captured_output:  # lower case: used like contextlib.redirect_stdout
    """Keep what the current task writes to ``sys.stdout``/``sys.stderr`` in its node's logs.

    ``spec`` is a :func:`log_spec`. Enter it in the coroutine that runs the
    task, before handing the task to a thread with :func:`asyncio.to_thread`
    (which copies the context), or in the worker process that calls it. A
    class rather than a generator: it runs once per task, on the hot path.
    """

    __slots__ = ("_output", "_token")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._output = _TaskOutput.from_spec(spec)

    def __enter__(self) -> None:
        _installed.enter()
        self._token = _current.set(self._output)

    def __exit__(self, *exc: object) -> None:
        end_task_output(self._output, self._token)


def begin_task_output(
    task: TaskContext, limit: int, echo: bool
) -> tuple[_TaskOutput, contextvars.Token[_TaskOutput | None]]:
    """Start keeping what ``task``, run in this process, writes in its node's logs
    (what entering ``captured_output(log_spec(task, ...))`` does, without building
    the spec or a context manager: the inline executor runs this on every step).
    End it with :func:`end_task_output`."""
    secrets = tuple(v for v in task.secret_values if v) if task.secret_values else ()
    output = _TaskOutput(task, None, task.node_id, task.attempt, secrets, limit, echo)
    _installed.enter()
    return output, _current.set(output)


def end_task_output(output: _TaskOutput, token: contextvars.Token[_TaskOutput | None]) -> None:
    """End what :func:`begin_task_output` (or entering ``captured_output``) started, in
    the same context."""
    _current.reset(token)
    _installed.leave()
    output.close()
