"""The ``subprocess`` executor: commands, scripts and Python callables in child processes.

It runs three payloads:

* :class:`~spindle.plugins.payloads.CommandPayload` as ``shell -c LINE``;
  the node's result is stdout without trailing newlines (at most
  ``result_limit`` bytes of it).
* :class:`~spindle.plugins.payloads.ScriptPayload` as ``python SCRIPT ARGS``;
  the result is the JSON the script wrote to ``SPINDLE_RESULT``.
* :class:`~spindle.plugins.payloads.PythonCall` in a fresh interpreter, by its
  ``module:qualname`` reference (a lambda or local function cannot be run
  this way). Its keyword arguments are pickled to the child, with ``ctx``
  replaced by a stand-in whose durable calls reach the engine over a socket:
  ``ctx.step``, ``ctx.map``, ``await ctx.astep`` & co run their function in
  the child and are committed to the run's ledger before they return,
  exactly as in the engine's process, and mid-function effects
  (``ctx.ask_user``) suspend the node (see
  :mod:`spindle.plugins.executors._channel`). An exception in the function
  is raised again here, with the child's traceback as a note.

Every child runs in its own process group; output is streamed to
``<run_dir>/logs/<node>.stdout`` and ``.stderr`` (capped at ``log_limit``)
and its tail is kept for the outcome. A non-zero exit fails the node with a
:class:`~spindle.TaskError` carrying the exit code and the stderr tail. A
timeout or cancel stops the whole group: SIGTERM, then SIGKILL after ``grace``
seconds. See :mod:`spindle.plugins.executors._process` for the mechanics.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define

from spindle import Executor, Outcome, TaskError, converter
from spindle.core.plugin import Suspend
from spindle.plugins.executors._channel import serve_steps
from spindle.plugins.executors._detached import detached_request
from spindle.plugins.executors._process import Capture, ProcessResult, log_paths, run_process
from spindle.plugins.payloads import CommandPayload, PythonCall, ScriptPayload

if TYPE_CHECKING:
    from spindle import TaskContext

__all__ = ["SubprocessExecutor"]

_CHILD_MODULE = "spindle.plugins.executors._child"
_MESSAGE_TAIL = 1000


@define
class SubprocessExecutor(Executor[Any], kind="subprocess"):
    """Runs shell commands, Python scripts and Python callables in child processes.

    Attributes:
        grace: seconds between SIGTERM and SIGKILL when the node is cancelled.
        log_limit: the most bytes kept in each log file (stdout, stderr).
        tail_size: how many trailing bytes of each stream the outcome keeps.
        result_limit: the most bytes of a command's stdout used as its result.
    """

    accepts: ClassVar[tuple[type, ...]] = (CommandPayload, ScriptPayload, PythonCall)

    grace: float = 5.0
    log_limit: int = 10 * 1024 * 1024
    tail_size: int = 4096
    result_limit: int = 1024 * 1024

    async def _execute(self, payload: Any, task: TaskContext) -> Outcome:
        """Run ``payload`` in a child process and report its outcome."""
        if isinstance(payload, CommandPayload):
            return await self._run_command(payload, task)
        if isinstance(payload, ScriptPayload):
            return await self._run_script(payload, task)
        if isinstance(payload, PythonCall):
            return await self._run_python(payload, task)
        raise TypeError(
            f"executor 'subprocess' cannot run a {type(payload).__name__}; it runs "
            f"CommandPayload, ScriptPayload and PythonCall"
        )

    # --- payloads -----------------------------------------------------------

    async def _run_command(self, payload: CommandPayload, task: TaskContext) -> Outcome:
        payload.cwd.mkdir(parents=True, exist_ok=True)
        result = await self._spawn(
            [payload.shell, "-c", payload.command],
            task,
            cwd=payload.cwd,
            env=payload.env,
            head=self.result_limit,
        )
        self._check_exit(result, task, "command")
        value = bytes(result.stdout.head).decode("utf-8", "replace").rstrip("\r\n")
        return self._outcome(result, value)

    async def _run_script(self, payload: ScriptPayload, task: TaskContext) -> Outcome:
        stem = _temp_stem(task)
        inputs_file = stem.with_name(f"{stem.name}.inputs.json")
        outputs_file = stem.with_name(f"{stem.name}.outputs.json")
        result_file = stem.with_name(f"{stem.name}.result.json")
        try:
            _write_private(inputs_file, _to_json(payload.inputs, task, "inputs"))
            _write_private(outputs_file, _to_json(payload.outputs, task, "outputs"))
            env = {
                **payload.env,
                "SPINDLE_INPUTS": str(inputs_file),
                "SPINDLE_OUTPUTS": str(outputs_file),
                "SPINDLE_RESULT": str(result_file),
            }
            payload.cwd.mkdir(parents=True, exist_ok=True)
            argv = [payload.python or sys.executable, str(payload.path), *payload.args]
            result = await self._spawn(argv, task, cwd=payload.cwd, env=env)
            self._check_exit(result, task, "script")
            value = None
            if result_file.exists():
                text = result_file.read_text(encoding="utf-8")
                try:
                    value = json.loads(text) if text.strip() else None
                except ValueError as exc:
                    raise TaskError(
                        f"node '{task.node_id}': script {payload.path.name} wrote invalid JSON "
                        f"to SPINDLE_RESULT ({exc})",
                        node_id=task.node_id,
                    ) from exc
            return self._outcome(result, value)
        finally:
            for f in (inputs_file, outputs_file, result_file):
                f.unlink(missing_ok=True)

    async def _run_python(self, payload: PythonCall, task: TaskContext) -> Outcome:
        request = detached_request(payload, task, "subprocess", "a subprocess")
        request["parent_path"] = [p or os.getcwd() for p in sys.path]
        async with serve_steps(task, request):
            return await self._call_python(payload, task, request)

    async def _call_python(
        self, payload: PythonCall, task: TaskContext, request: dict[str, Any]
    ) -> Outcome:
        try:
            blob = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TaskError(
                f"node '{task.node_id}': the arguments of '{payload.name}' cannot be sent to a "
                f"subprocess ({type(exc).__name__}: {exc})",
                node_id=task.node_id,
            ) from exc
        stem = _temp_stem(task)
        result_file = stem.with_name(f"{stem.name}.result.pickle")
        env = {
            "SPINDLE_RUN_ID": task.run_id,
            "SPINDLE_NODE_ID": task.node_id,
            "SPINDLE_RUN_DIR": str(task.run_dir),
            "SPINDLE_ATTEMPT": str(task.attempt),
        }
        try:
            result = await self._spawn(
                [sys.executable, "-m", _CHILD_MODULE, str(result_file)],
                task,
                cwd=task.run_dir,
                env=env,
                stdin=blob,
            )
            response = None
            if result_file.exists():
                response = pickle.loads(result_file.read_bytes())
        finally:
            result_file.unlink(missing_ok=True)
        if response is None:
            self._check_exit(result, task, "python call")
            raise TaskError(
                f"node '{task.node_id}': the subprocess running '{payload.name}' "
                f"exited without a result",
                node_id=task.node_id,
            )
        if response.get("suspend") is not None:
            raise Suspend(response["suspend"])
        if not response["ok"]:
            raise _remote_error(response, task)
        return self._outcome(result, response["value"])

    # --- shared -------------------------------------------------------------

    async def _spawn(
        self,
        argv: list[str],
        task: TaskContext,
        *,
        cwd: Path,
        env: dict[str, str],
        stdin: bytes | None = None,
        head: int = 0,
    ) -> ProcessResult:
        paths = log_paths(task.run_dir, task.node_id)
        header = f"--- attempt {task.attempt} ---\n".encode() if task.attempt > 1 else b""
        hidden = tuple(v.encode() for v in task.secret_values if v)
        out = Capture(paths.stdout, self.log_limit, self.tail_size, head, header, secrets=hidden)
        err = Capture(paths.stderr, self.log_limit, self.tail_size, 0, header, secrets=hidden)
        # What the engine's observers give the node's process (TRACEPARENT ...) goes
        # under the payload's own variables: a command's explicit env wins.
        contributed = task.environment()
        try:
            return await run_process(
                argv,
                cwd=cwd,
                env={**contributed, **env} if contributed else env,
                stdout=out,
                stderr=err,
                stdin=stdin,
                grace=self.grace,
                append=task.attempt > 1,
            )
        except OSError as exc:
            raise TaskError(
                f"node '{task.node_id}': cannot start {argv[0]!r} in {cwd}: {exc.strerror or exc}",
                node_id=task.node_id,
                details={"argv0": argv[0], "cwd": str(cwd)},
            ) from exc

    def _check_exit(self, result: ProcessResult, task: TaskContext, what: str) -> None:
        code = result.returncode
        if code == 0:
            return
        tail = result.stderr.tail_text()
        if code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        short = tail.strip()
        if len(short) > _MESSAGE_TAIL:
            short = "..." + short[-_MESSAGE_TAIL:]
        raise TaskError(
            f"node '{task.node_id}': {what} {how}" + (f": {short}" if short else ""),
            node_id=task.node_id,
            details={
                "exit_code": code,
                "stderr_tail": tail,
                "stdout_tail": result.stdout.tail_text(),
                "stderr_log": str(result.stderr.path),
            },
        )

    def _outcome(self, result: ProcessResult, value: Any) -> Outcome:
        out, err = result.stdout, result.stderr
        details: dict[str, Any] = {
            "stdout_log": str(out.path),
            "stderr_log": str(err.path),
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
        }
        if out.head_size and out.total > out.head_size:
            details["result_truncated"] = True
        if out.truncated or err.truncated:
            details["log_truncated"] = True
        return Outcome(
            value=value,
            stdout=out.tail_text(),
            stderr=err.tail_text(),
            exit_code=result.returncode,
            duration=result.duration,
            details=details,
        )


def _temp_stem(task: TaskContext) -> Path:
    """A fresh hidden name in the node's log directory for files exchanged with a child."""
    paths = log_paths(task.run_dir, task.node_id)
    return paths.stdout.with_name(f".{paths.stdout.stem}.{os.urandom(4).hex()}")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only the current user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    data = converter.unstructure(obj)
    if data is obj:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")
    return data


def _to_json(data: Any, task: TaskContext, what: str) -> str:
    try:
        return json.dumps(data, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TaskError(
            f"node '{task.node_id}': the {what} cannot be passed to a script as JSON ({exc})",
            node_id=task.node_id,
        ) from exc


def _remote_error(response: dict[str, Any], task: TaskContext) -> BaseException:
    """The exception a child reported: the original one when it unpickles, else a TaskError."""
    exc: BaseException | None = None
    if response.get("error") is not None:
        try:
            exc = pickle.loads(response["error"])
        except Exception:  # a class whose __init__ cannot be rebuilt from its args
            exc = None
    if isinstance(exc, BaseException):
        exc.add_note(f"raised in a subprocess (node '{task.node_id}'):\n{response['traceback']}")
        return exc
    return TaskError(
        f"node '{task.node_id}': {response['type']}: {response['message']}",
        node_id=task.node_id,
        details={"type": response["type"], "traceback": response["traceback"]},
    )
