"""Group commit for the SQLite store: one writer thread, one transaction for many writes.

At ``durability=full`` every transaction ends in an fsync (hundreds of
microseconds to milliseconds), and a store that commits synchronously in
the event loop makes every run in flight wait for every other run's fsync.
With group commit the store's writes go to a queue instead; one thread,
with its own connection to the file, takes everything queued, writes it as
ONE transaction, and commits once (one fsync for the whole batch). While it
writes, new writes queue for the next batch, so the busier the engine, the
bigger the batches.

A write with nothing to share a transaction with -- made by the same task
as the last one, while nothing is queued or being written: one run driven
at a time -- is written in its caller instead, in its own transaction, as
without group commit: the two thread hops would only add to its fsync.

The contract of every write stays what it was: a caller's ``await`` returns
(or raises its own error) only once the transaction holding its write is
durable. A write that fails (``LeaseLost``, ``LedgerError``, an event that
cannot be consumed) is raised in its caller alone; the others commit. The
batch is written without savepoints first (almost every write succeeds); a
write that fails makes the writer roll that transaction back and write the
batch again with a SAVEPOINT around each write, so only the failing one is
rolled back. When the transaction as a whole fails (a full disk, an I/O
error, the lock held by another process past ``busy_timeout``), every write
of the batch fails with the error the store raises for that failure without
group commit, and the writer goes on with the next batch.

A caller cancelled while its write is queued cannot take the write back,
so its cancellation waits for the write's outcome: the caller returns from
the write (or raises its error) as it would have without group commit, and
the cancellation is raised at its next ``await``. Its code never runs on
without knowing whether the write was made.

Reads keep the store's own connection (WAL readers never wait for the
writer), and see a write once its caller has been told it committed.

The writer also checkpoints the write-ahead log, between batches rather than
inside a COMMIT, so that a batch's callers do not wait for it
(``_sqlite_checkpoint``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from spindle.core.errors import StoreError
from spindle.plugins.stores._sqlite_checkpoint import LogCheckpoints
from spindle.plugins.stores._sqlite_errors import rollback, transact
from spindle.plugins.stores._sqlite_jobs import Job, call_in, outcome, rolled_back

__all__ = ["GroupWriter", "Job"]


class GroupWriter:
    """The thread that writes queued jobs in batches, one transaction (one fsync) each.

    Args:
        conn: the writer's own connection to the store file (closed when it stops).
        path: the store file, for messages.
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._queue: list[Job] = []
        # ``with self._mutex`` holds the condition's lock without the Python-level call
        # of ``with self._wake`` (submit runs on every write).
        self._mutex = threading.Lock()
        self._wake = threading.Condition(self._mutex)
        self._closing = False
        self._stopped: Callable[[], None] | None = None
        # Loops told of a batch's outcomes whose woken callers have not yet run.
        self._returning = 0
        # Held while statements run on the connection: the writer's batches and
        # checkpoints, and a lone caller's write in its own thread (see ``submit``).
        self._conn_lock = threading.Lock()
        # Set while the writer has a batch in hand, from taking it until it is written,
        # and the id of the task that made the last write (an id, so that a finished
        # task is not kept alive; one reused by a later task makes at worst one write
        # alone that could have joined a batch).
        self._writing = False
        self._last_task = 0
        #: Batches begun and jobs in them (tests and benchmarks read these; a lone
        #: caller's write counts as a batch of one once written), lone writes tried,
        #: and the CPU seconds the thread spent writing and settling batches.
        self.batches = 0
        self.jobs = 0
        self.alone = 0
        self.cpu = 0.0
        #: When the writer checkpoints the log between batches, and how many it made.
        self.log = LogCheckpoints(conn)
        # A daemon thread: a host that never closes its store must still be able to exit.
        self._thread = threading.Thread(
            target=self._serve, name=f"spindle-sqlite-writer {path}", daemon=True
        )
        self._thread.start()

    async def submit(
        self,
        work: Callable[[sqlite3.Connection], Any],
        fail: Callable[[sqlite3.Error], StoreError],
        forget: Callable[[], object] | None = None,
    ) -> Any:
        """Queue ``work`` for the next batch; return its result once that batch is durable.

        A lone caller writes in its own thread instead, as without group commit: when
        the task that made the last write makes this one, and nothing is queued or
        being written, no other write is in flight to share a transaction with, and
        the two thread hops (about 0.1 ms on a VM) would only add to its commit.
        Concurrent runs write from different tasks, so their writes still go to the
        writer and share transactions.

        Raises:
            StoreError: the store is closing, or the batch failed (``fail``'s error).
            Exception: whatever ``work`` raised (its write was rolled back).
        """
        loop = asyncio.get_running_loop()
        task = id(asyncio.current_task(loop))
        with self._mutex:
            if self._closing:
                raise StoreError(
                    f"SQLite store {self._path} is closed; open it again ('await store.open()' "
                    "or 'async with store:') before writing"
                )
            lone = (
                task == self._last_task
                and not self._queue
                and not self._writing
                and self._conn_lock.acquire(blocking=False)
            )
            self._last_task = task
            if not lone:
                job = Job(work, fail, forget, loop)
                self._queue.append(job)
                if not self._returning:  # else the callers' return wakes the writer
                    self._wake.notify()
        if lone:
            try:
                return self._write_alone(work, fail, forget)
            finally:
                self._conn_lock.release()
        try:
            return await job.future  # the common case, without a coroutine of its own
        except asyncio.CancelledError:
            return await outcome(job, cancelled=True)

    async def aclose(self) -> None:
        """Write everything queued so far, then stop the thread and close its connection."""
        loop = asyncio.get_running_loop()
        stopped: asyncio.Future[None] = loop.create_future()

        def tell() -> None:
            if not stopped.done():
                stopped.set_result(None)

        with self._wake:
            if self._closing:
                return
            self._closing = True
            self._stopped = lambda: call_in(loop, tell)
            self._wake.notify()
            alive = self._thread.is_alive()
        if alive:
            await stopped  # the writer thread calls ``tell`` on its way out, whatever happens
        self._thread.join()

    def _write_alone(
        self,
        work: Callable[[sqlite3.Connection], Any],
        fail: Callable[[sqlite3.Error], StoreError],
        forget: Callable[[], object] | None,
    ) -> Any:
        """A lone caller's write, in its own transaction, here (holding the connection)."""
        self.alone += 1
        try:
            result = transact(self._conn, work)
        except Exception as exc:
            error = rolled_back(exc, fail, forget)
            if error is exc:
                raise
            raise error from exc
        except BaseException:
            if forget is not None:
                forget()
            raise
        self.batches += 1
        self.jobs += 1
        self.log.run_if_due(self._conn)
        return result

    # --- the writer thread -------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._queue and not self._closing:
                        self._wake.wait(_RETURN_WAIT if self._returning else None)
                    if self._returning and not self._closing:
                        # The callers of the last batch are running again: wait (briefly)
                        # until they are back with their next writes, to write those
                        # together rather than the first of them alone.
                        self._wake.wait_for(lambda: not self._returning, _RETURN_WAIT)
                        self._returning = 0
                    batch, self._queue = self._queue, []
                    self._writing = bool(batch)
                if not batch:
                    break  # closing, and nothing left to write
                started = time.thread_time()
                with self._conn_lock:
                    try:
                        self._write(batch)
                    except Exception as exc:  # the writer's own fault: nobody may hang on it
                        rollback(self._conn)
                        for job in batch:
                            job.error = job.error or exc
                with self._mutex:
                    self._writing = False
                self._settle(batch)
                with self._conn_lock:
                    self.log.run_if_due(self._conn)
                self.cpu += time.thread_time() - started
        finally:
            with self._wake:
                self._closing = True  # no more writes: nobody would write them
                left, self._queue = self._queue, []
            for job in left:  # only if the thread itself failed
                job.error = StoreError(f"SQLite store {self._path}: its writer thread stopped")
            self._settle(left)
            with self._conn_lock:
                self._conn.close()
            if self._stopped is not None:
                self._stopped()

    def _write(self, batch: list[Job]) -> None:
        """Write ``batch`` in one transaction; each job ends with a result or an error.

        The batch is first written as it comes, without a savepoint per job: a
        savepoint copies every page a job is first to touch into SQLite's statement
        journal, which cost the writer about a third of its time per job (and
        almost every job succeeds). Only when a job raises is that transaction
        rolled back whole and the batch written again with a savepoint around
        each job, so that the failing one is rolled back alone.
        """
        conn = self._conn
        if not self._begin(batch):
            return
        self.batches += 1
        self.jobs += len(batch)
        if len(batch) == 1:
            # One job: the transaction is its savepoint.
            job = batch[0]
            try:
                job.result = job.work(conn)
                conn.execute("COMMIT")
            except Exception as exc:
                rollback(conn)
                job.failed(exc)
            return
        ran = 0
        try:
            for job in batch:
                ran += 1
                job.result = job.work(conn)
        except Exception:
            rollback(conn)
            for job in batch[:ran]:
                if job.forget is not None:
                    job.forget()  # its writes were rolled back; it is written again below
                job.result = None
            self._write_apart(batch)
            return
        try:
            conn.execute("COMMIT")
        except Exception as exc:  # the fsync failed: nothing of the batch was written
            rollback(conn)
            for job in batch:
                job.failed(exc)

    def _begin(self, batch: list[Job]) -> bool:
        """Open the batch's transaction; False (each job failed with why) if it cannot be."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in batch:
                job.failed(exc)
            return False
        return True

    def _write_apart(self, batch: list[Job]) -> None:
        """Write ``batch`` in one transaction with a savepoint around each job, so that a
        job that fails is rolled back (and raised) alone."""
        conn = self._conn
        if not self._begin(batch):
            return
        written: list[Job] = []
        try:
            for index, job in enumerate(batch):
                conn.execute("SAVEPOINT job")
                try:
                    job.result = job.work(conn)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (a full disk, an I/O
                        # error): every job of the batch shares this failure.
                        raise _BatchFailed(exc, batch[index:]) from exc
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    job.failed(exc)
                else:
                    conn.execute("RELEASE job")
                    written.append(job)
            conn.execute("COMMIT")
        except _BatchFailed as failure:
            rollback(conn)
            for job in (*written, *failure.rest):
                job.failed(failure.cause)
        except Exception as exc:
            # COMMIT (the fsync) or a savepoint statement failed: nothing of the batch
            # was written.
            rollback(conn)
            for job in batch:
                if job in written or job.error is None:
                    job.failed(exc)

    def _settle(self, batch: list[Job]) -> None:
        """Hand each job's outcome to its caller's event loop (one wake-up per loop)."""
        if not batch:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        with self._wake:
            self._returning = len(by_loop)
        for loop, jobs in by_loop.items():
            call_in(loop, self._resolve, jobs)

    def _resolve(self, jobs: list[Job]) -> None:
        """In the callers' loop: hand each job its outcome; once the callers woken by it
        have run (the callback after theirs), tell the writer they are back."""
        for job in jobs:
            job.settled = True
            future = job.future
            if future.done():
                continue
            if job.error is not None:
                future.set_exception(job.error)
            else:
                future.set_result(job.result)
        jobs[0].loop.call_soon(self._returned)

    def _returned(self) -> None:
        with self._wake:
            self._returning = max(self._returning - 1, 0)
            self._wake.notify()


#: How long the writer waits, at most, for the callers of its last batch to come back
#: with their next writes (a caller that does something slow first is not waited for).
_RETURN_WAIT = 0.002


class _BatchFailed(Exception):
    """The batch's transaction is gone: ``rest`` (from the failing job on) shares ``cause``."""

    def __init__(self, cause: BaseException, rest: list[Job]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.rest = rest
