"""A group-commit write in waiting: what it runs, and how its caller learns the outcome.

The writer thread (``_sqlite_group``) takes :class:`Job` objects from its
queue, runs each one's statements inside a batch's transaction and hands the
outcome back to the caller's event loop. A caller cancelled while its write
is queued cannot take the write back, so :func:`outcome` makes its
cancellation wait for the outcome: the caller returns from the write (or
raises its error) as it would have without group commit, and the
cancellation is raised at its next ``await``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

from spindle.core.errors import StoreError

__all__ = ["Job", "call_in", "outcome", "rolled_back"]


class Job:
    """One write waiting for the writer: what to run, and how to tell its caller."""

    __slots__ = ("error", "fail", "forget", "future", "loop", "result", "settled", "work")

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], Any],
        fail: Callable[[sqlite3.Error], StoreError],
        forget: Callable[[], object] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        #: Runs the write's statements inside the batch's transaction (in the writer).
        self.work = work
        #: The store's error for a SQLite failure of this write.
        self.fail = fail
        #: Undoes what ``work`` cached in memory, when its writes were rolled back.
        self.forget = forget
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.result: Any = None
        self.error: BaseException | None = None
        #: Set in the caller's loop once the outcome was handed to ``future``.
        self.settled = False

    def failed(self, exc: BaseException) -> None:
        """Record that this write failed with ``exc`` and was rolled back."""
        self.error = rolled_back(exc, self.fail, self.forget)


def rolled_back(
    exc: BaseException,
    fail: Callable[[sqlite3.Error], StoreError],
    forget: Callable[[], object] | None,
) -> BaseException:
    """The error a caller gets for its write that failed with ``exc`` and was rolled back
    (the store's own for a SQLite failure); what the write cached in memory is undone."""
    error = fail(exc) if isinstance(exc, sqlite3.Error) else exc
    if error is not exc:
        error.__cause__ = exc
    if forget is not None:
        forget()
    return error


def call_in(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    # A RuntimeError says the caller's loop is closed: nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


async def outcome(job: Job, *, cancelled: bool = False) -> Any:
    """Wait for ``job``'s outcome; a cancellation while waiting is raised only after it.

    The write cannot be taken back once queued, so its caller must learn how it
    ended before it goes on; the cancellation is requested again (counted once, as
    ``asyncio.timeout`` expects) and lands at the caller's next ``await``.
    ``cancelled``: the caller's wait on ``job.future`` was cancelled already
    (``submit`` awaits it itself first: the common case is no cancellation).
    """
    waited_out = cancelled  # this wait on job.future was cancelled (no need to await it)
    try:
        while True:
            future = job.future
            if not waited_out:
                try:
                    return await future
                except asyncio.CancelledError:
                    cancelled = True
            waited_out = False
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if not future.cancelled():
                return future.result()  # the outcome came with the cancellation
            if job.settled:
                break  # handed to the future that was cancelled: read it off the job
            job.future = future.get_loop().create_future()
        if job.error is not None:
            raise job.error
        return job.result
    finally:
        if cancelled:
            task = asyncio.current_task()
            if task is not None:
                task.cancel()
