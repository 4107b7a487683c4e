"""The sub-step channel: durable sub-steps for tasks that run in another process.

A task run by the ``subprocess`` or ``process_pool`` executor gets a stand-in
context (:class:`~spindle.plugins.executors._detached.DetachedContext`). Its
``ctx.step``, ``ctx.map``, ``await ctx.astep`` & co are the very code the
engine's process runs (:class:`~spindle.core.plugin.DurableCalls`): the child
reserves the call indices, runs the step functions and their retry loop. Only
the ledger stays with the engine: the stand-in's ``recorded`` mapping and its
``steps`` log (:class:`~spindle.plugins.executors._remote.StepClient`) forward
every call to the live :class:`~spindle.TaskContext`'s over this channel, and
the child goes on only once the engine has answered — for a commit, once it
is durable. So replay (with its name check), recorded failed attempts,
durable backoffs, ``max_steps``, the artifact store for large values and the
scrubbing of secrets all happen exactly as for a task in the engine's process.

**Transport.** For each task whose function takes ``ctx``, the executor
listens on a Unix socket in a fresh private directory (mode 0700) while the
task runs (:func:`serve_steps`). The socket's path and a random token travel
in the pickled request (the child's stdin, the pool's call queue), never on
disk; the child connects on its first call.

**Frames.** Each frame is a header ``>IQ`` (payload length, request id) and a
pickle. The child first sends id 0, ``("hello", TOKEN)``; then requests
``(OP, ARGS)`` with ids from 1, several at a time (``ctx.map``). The engine
answers each id with ``(True, RESULT)`` or ``(False, ERROR)``, ``ERROR`` being
``(pickled exception or None, module, qualname, message)``::

    recorded  KEY                           -> StepRecord | None  (task.recorded.get)
    keys                                    -> [KEY, ...]         (this node's)
    history   KEY                           -> StepHistory        (task.steps.history)
    value     KEY                           -> the recorded value (task.steps.value)
    completed INDEX VALUE NAME ATTEMPT      -> the value as the ledger holds it
    failed    INDEX ERROR NAME ATTEMPT DELAY -> None              (task.steps.failed)

Only the node's own keys (``RUN:NODE:...``) are answered.

**Ends.** A child that dies closes its end: the engine finishes the requests
it already read (their commits are durable either way) and the node fails or
is retried from the process's exit as before. When the task ends (or the
engine dies) the child's further requests fail with
:class:`~spindle.core.plugin.AttemptAbandoned`, so a stray thread never
records a step of an attempt that moved on.

Pickle is the format because both ends run the node's own code as the same
user; the directory admits only that user, and the token only the task's child.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import pickle
import secrets
import shutil
import struct
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from spindle.core.errors import TaskError
from spindle.core.model import call_key
from spindle.core.plugin import AttemptAbandoned
from spindle.plugins.executors._detached import DetachedContext

if TYPE_CHECKING:
    from spindle.core.plugin import StepLog, TaskContext

__all__ = ["StepServer", "encode", "export_error", "import_error", "read_frame", "serve_steps"]

_HEADER = struct.Struct(">IQ")
#: Longest Unix socket path we create (the OS limit is 104-108 bytes).
_MAX_PATH = 100

ErrorData = tuple[bytes | None, str, str, str]


# --- frames and errors (both ends) ----------------------------------------------------


def encode(ident: int, message: Any) -> bytes:
    """One frame: ``message`` pickled, behind its header.

    Raises:
        Exception: ``message`` cannot be pickled (whatever pickle raises).
    """
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data), ident) + data


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame's request id and pickled payload.

    Raises:
        asyncio.IncompleteReadError: the other end closed the connection.
    """
    size, ident = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return ident, await reader.readexactly(size)


def export_error(error: BaseException) -> ErrorData:
    """``error`` for the other end: pickled when it can be, and always its name and text."""
    try:
        blob: bytes | None = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception holding unpicklable state: its name and text will do
        blob = None
    return blob, type(error).__module__, type(error).__qualname__, str(error)


def import_error(data: ErrorData) -> BaseException:
    """The exception :func:`export_error` sent: the original when it unpickles here, else
    a stand-in of the same class name and message (what a failure record keeps)."""
    blob, module, qualname, message = data
    if blob is not None:
        try:
            error = pickle.loads(blob)
        except Exception:  # its class cannot be imported or rebuilt on this end
            error = None
        if isinstance(error, BaseException):
            return error
    stand_in: type[Exception] = type(
        qualname.rpartition(".")[2], (Exception,), {"__module__": module}
    )
    stand_in.__qualname__ = qualname
    return stand_in(message)


# --- the engine's end -----------------------------------------------------------------


def _private_dir() -> str:
    """A new directory only this user can enter, short enough for a socket path in it."""
    path = tempfile.mkdtemp(prefix="spindle-")
    if len(path) + 6 > _MAX_PATH:  # a long TMPDIR (macOS): fall back to /tmp
        os.rmdir(path)
        path = tempfile.mkdtemp(prefix="spindle-", dir="/tmp")
    return path


class StepServer:
    """The engine's end of one task's sub-step channel: answers from ``task.recorded`` and
    ``task.steps``.

    Args:
        task: the live task context.
        log: its ``steps`` log.
    """

    def __init__(self, task: TaskContext, log: StepLog) -> None:
        self._task = task
        self._log = log
        self._prefix = call_key(task.run_id, task.node_id, 0)[:-1]
        self._token = secrets.token_hex(16)
        self._dir: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self) -> dict[str, Any]:
        """Listen; return what the child needs to connect (the request's ``steps``)."""
        self._dir = _private_dir()
        path = os.path.join(self._dir, "steps")
        self._server = await asyncio.start_unix_server(self._serve, path=path)
        return {
            "address": path,
            "token": self._token,
            "node_id": self._task.node_id,
            "inline_sleep": self._log.inline_sleep,
        }

    async def close(self) -> None:
        """Stop listening, finish the requests already read, hang up, remove the socket."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.cancel()  # its reading only: requests already read run to their end
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self._connections.add(me)
        handlers: set[asyncio.Task[None]] = set()
        lock = asyncio.Lock()
        try:
            ident, data = await read_frame(reader)
            if ident != 0 or not self._welcome(data):
                return
            while True:
                ident, data = await read_frame(reader)
                handler = asyncio.create_task(self._handle(ident, data, writer, lock))
                handlers.add(handler)
                handler.add_done_callback(handlers.discard)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # the child hung up, or died
        except asyncio.CancelledError:
            pass  # close(): the task ended
        finally:
            if handlers:
                await asyncio.gather(*handlers, return_exceptions=True)
            writer.close()
            if me is not None:
                self._connections.discard(me)

    def _welcome(self, data: bytes) -> bool:
        try:
            hello = pickle.loads(data)
        except Exception:
            return False
        return (
            isinstance(hello, tuple)
            and len(hello) == 2
            and hello[0] == "hello"
            and isinstance(hello[1], str)
            and hmac.compare_digest(hello[1], self._token)
        )

    async def _handle(
        self, ident: int, data: bytes, writer: asyncio.StreamWriter, lock: asyncio.Lock
    ) -> None:
        reply: tuple[bool, Any]
        try:
            op, args = self._read(data)
            reply = (True, await self._answer(op, args))
        except (Exception, AttemptAbandoned) as exc:
            reply = (False, export_error(exc))
        try:
            frame = encode(ident, reply)
        except Exception as exc:  # pragma: no cover - records and JSON data always pickle
            frame = encode(ident, (False, export_error(TaskError(str(exc)))))
        async with lock:
            try:
                writer.write(frame)
                await writer.drain()
            except (ConnectionError, OSError):
                pass  # the child is gone; what it asked for is committed all the same

    def _read(self, data: bytes) -> tuple[str, tuple[Any, ...]]:
        node_id = self._task.node_id
        try:
            op, args = pickle.loads(data)
        except Exception as exc:
            raise TaskError(
                f"node '{node_id}': the engine cannot read a sub-step sent by the task's "
                f"process ({type(exc).__name__}: {exc}); return JSON-compatible data "
                f"from steps",
                node_id=node_id,
            ) from exc
        return str(op), tuple(args)

    async def _answer(self, op: str, args: tuple[Any, ...]) -> Any:
        task, log = self._task, self._log
        if op == "recorded":
            return task.recorded.get(args[0]) if self._ours(args[0]) else None
        if op == "keys":
            return [key for key in list(task.recorded) if self._ours(key)]
        if op == "history":
            return log.history(self._own(args[0]))
        if op == "value":
            record = task.recorded.get(self._own(args[0]))
            if record is None:
                raise TaskError(
                    f"node '{task.node_id}': no recorded sub-step {args[0]!r}",
                    node_id=task.node_id,
                )
            return await log.value(record)
        if op == "completed":
            index, value, name, attempt = args
            return await log.completed(int(index), value, name=str(name), attempt=int(attempt))
        if op == "failed":
            index, error, name, attempt, delay = args
            await log.failed(
                int(index), import_error(error), name=str(name), attempt=int(attempt), delay=delay
            )
            return None
        raise TaskError(f"node '{task.node_id}': unknown sub-step request {op!r}")

    def _ours(self, key: Any) -> bool:
        return isinstance(key, str) and key.startswith(self._prefix)

    def _own(self, key: Any) -> str:
        """``key``, checked to be one of this node's calls."""
        if not self._ours(key):
            raise TaskError(
                f"node '{self._task.node_id}': sub-step key {key!r} is not one of this "
                f"node's calls",
                node_id=self._task.node_id,
            )
        return str(key)


@contextlib.asynccontextmanager
async def serve_steps(task: TaskContext, request: dict[str, Any]) -> AsyncIterator[None]:
    """Serve the sub-steps of ``task`` while the body runs the task in another process.

    Adds the channel's address to ``request["steps"]`` when the task's function
    takes ``ctx`` and the engine records its steps (``task.steps``); otherwise
    the request is left as it is (a context built by hand keeps steps in memory,
    in the child, like the engine's process does).
    """
    log = task.steps
    takes_ctx = any(isinstance(v, DetachedContext) for v in request["kwargs"].values())
    if log is None or not takes_ctx:
        yield
        return
    server = StepServer(task, log)
    try:
        request["steps"] = await server.start()
        yield
    finally:
        await server.close()
