"""The task's end of the sub-step channel, in the process that runs the task.

:class:`StepClient` is the :class:`~spindle.core.plugin.StepLog` and the
``recorded`` mapping of a :class:`~spindle.plugins.executors._detached.DetachedContext`:
each call is a request to the engine (:mod:`spindle.plugins.executors._channel`
describes the protocol), answered once the engine has done it.

The connection lives on an event loop of its own, in a daemon thread started
on first use (one per process: a pool worker keeps it for its next tasks).
Sync steps block on it from the task's threads as they would on the engine's
loop; async steps await it from the task's own loop. Many requests may be in
flight at once (``ctx.map``); each waits for its own answer.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import threading
from collections.abc import Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from spindle.core.errors import TaskError
from spindle.core.plugin import AttemptAbandoned
from spindle.plugins.executors._channel import encode, export_error, import_error, read_frame

if TYPE_CHECKING:
    from spindle.core.model import StepRecord
    from spindle.core.plugin import StepHistory

__all__ = ["StepClient", "channel_loop"]

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _forget_loop() -> None:
    global _loop
    _loop = None  # a forked child has the loop object but not the thread that ran it


os.register_at_fork(after_in_child=_forget_loop)


def channel_loop() -> asyncio.AbstractEventLoop:
    """This process's channel loop, running in a daemon thread (started on first use)."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="spindle-steps", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class StepClient:
    """A sub-step log and recorded mapping that forward to the engine's over the channel.

    Args:
        address: the engine's socket path.
        token: the task's token, sent first.
        node_id: the node, for error messages.
        inline_sleep: the engine's ``max_inline_sleep`` (backoffs up to it are slept here).
    """

    def __init__(self, address: str, token: str, node_id: str, inline_sleep: float) -> None:
        self.loop = channel_loop()
        self.inline_sleep = inline_sleep
        self.node_id = node_id
        self.recorded: Mapping[str, StepRecord] = _Recorded(self)
        self._address = address
        self._token = token
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._lock = asyncio.Lock()  # connecting and writing, on the channel loop
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._closed = False

    # --- the StepLog protocol -----------------------------------------------------------

    @property
    def open(self) -> bool:
        """False once this side hung up; an attempt the engine ended refuses requests."""
        return not self._closed

    def history(self, key: str) -> StepHistory:
        """The failed attempts the engine recorded for sub-step ``key``."""
        history: StepHistory = self._sync("history", key)
        return history

    async def value(self, record: StepRecord) -> Any:
        """A recorded sub-step's value (the engine fetches an offloaded one)."""
        return await self._async("value", record.idempotency_key)

    async def completed(self, index: int, value: Any, *, name: str, attempt: int) -> Any:
        """Have the engine commit sub-step ``index``; its value as the ledger holds it."""
        return await self._async("completed", index, value, name, attempt, name=name)

    async def failed(
        self, index: int, error: BaseException, *, name: str, attempt: int, delay: float | None
    ) -> None:
        """Have the engine commit failed attempt ``attempt`` of sub-step ``index``."""
        await self._async("failed", index, export_error(error), name, attempt, delay)

    def close(self) -> None:
        """Hang up: later requests (a stray thread's) fail with AttemptAbandoned."""
        if _running_loop() is self.loop:
            raise RuntimeError("StepClient.close() called on its own loop")
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=10)

    # --- requests -----------------------------------------------------------------------

    def _sync(self, op: str, *args: Any) -> Any:
        """A request from a thread that is not the channel loop's: block for the answer."""
        if _running_loop() is self.loop:  # pragma: no cover - tasks never run on this loop
            raise RuntimeError("a blocking sub-step request on the channel loop would deadlock")
        return asyncio.run_coroutine_threadsafe(self._call(op, args), self.loop).result()

    async def _async(self, op: str, *args: Any, name: str | None = None) -> Any:
        """A request from any loop: the channel's own, or the task's."""
        work: Coroutine[Any, Any, Any] = self._call(op, args, name)
        if _running_loop() is self.loop:
            return await work
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def _call(self, op: str, args: tuple[Any, ...], name: str | None = None) -> Any:
        ident = next(self._ids)
        try:
            frame = encode(ident, (op, args))
        except Exception as exc:
            what = f"step '{name}' returned a value that" if name else "a sub-step request"
            raise TaskError(
                f"node '{self.node_id}': {what} cannot be sent to the engine "
                f"({type(exc).__name__}: {exc}); return JSON-compatible data (dicts, lists, "
                f"strings, numbers)",
                node_id=self.node_id,
            ) from exc
        future: asyncio.Future[tuple[bool, Any]] = self.loop.create_future()
        self._waiting[ident] = future
        try:
            async with self._lock:
                writer = await self._connect()
                writer.write(frame)
                await writer.drain()
            ok, payload = await future
        except (ConnectionError, OSError) as exc:
            raise self._lost() from exc
        finally:
            self._waiting.pop(ident, None)
        if ok:
            return payload
        raise payload

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._closed:
            return self._writer
        if self._closed:
            raise self._lost()
        reader, writer = await asyncio.open_unix_connection(self._address)
        writer.write(encode(0, ("hello", self._token)))
        self._writer = writer
        self._reading = asyncio.create_task(self._read(reader))
        return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                ident, data = await read_frame(reader)
                future = self._waiting.get(ident)
                if future is None or future.done():
                    continue  # its asker gave up (cancelled)
                future.set_result(self._reply(data))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # the engine hung up: the task ended, or the engine stopped
        finally:
            self._closed = True
            lost = self._lost()
            for future in self._waiting.values():
                if not future.done():
                    future.set_result((False, lost))

    def _reply(self, data: bytes) -> tuple[bool, Any]:
        try:
            ok, payload = pickle.loads(data)
        except Exception as exc:  # pragma: no cover - the engine sends records and JSON data
            return False, TaskError(f"node '{self.node_id}': unreadable answer ({exc})")
        return (True, payload) if ok else (False, import_error(payload))

    def _lost(self) -> AttemptAbandoned:
        return AttemptAbandoned(
            f"node '{self.node_id}': the connection to the engine is closed (the engine "
            f"stopped, or this attempt already ended); this sub-step is not recorded"
        )

    async def _close(self) -> None:
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
            self._reading = None


class _Recorded(Mapping[str, "StepRecord"]):
    """The node's recorded calls, looked up in the engine's ``task.recorded`` one key at a time."""

    def __init__(self, client: StepClient) -> None:
        self._client = client

    def __getitem__(self, key: str) -> StepRecord:
        record: StepRecord | None = self._client._sync("recorded", key)
        if record is None:
            raise KeyError(key)
        return record

    def get(self, key: str, default: Any = None) -> Any:
        """The record of call ``key``, or ``default`` if it has none."""
        record = self._client._sync("recorded", key)
        return default if record is None else record

    def __iter__(self) -> Iterator[str]:
        return iter(self._client._sync("keys"))

    def __len__(self) -> int:
        return len(self._client._sync("keys"))
