"""The synchronous face of the engine: one thin wrapper, no second copy of the logic."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from spindle.core.engine._engine import Engine
from spindle.core.store import Store

__all__ = ["SyncEngine"]

T = TypeVar("T")


class _LoopThread:
    """An event loop on a thread of its own, for callers whose thread already runs one.

    The thread runs an :class:`asyncio.Runner`, so closing it cleans up as
    :func:`asyncio.run` does (remaining tasks cancelled, async generators and
    the default executor shut down).
    """

    loop: asyncio.AbstractEventLoop
    _stop: asyncio.Future[None]

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="spindle-sync-engine", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        try:
            with asyncio.Runner() as runner:
                runner.run(self._serve())
        finally:
            self._ready.set()  # never leave __init__ waiting, even if the loop failed

    async def _serve(self) -> None:
        # Both are set before __init__ returns (it waits for _ready).
        self.loop = asyncio.get_running_loop()
        self._stop = self.loop.create_future()
        self._ready.set()
        await self._stop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this thread's loop and block until it is done."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted while waiting (Ctrl-C): do not leave the call running behind.
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop and wait for the thread to finish."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._release)
        self._thread.join()

    def _release(self) -> None:
        if not self._stop.done():
            self._stop.set_result(None)


class _BlockingRunner:
    """Runs a coroutine to completion for a synchronous caller.

    Without an event loop running in the calling thread it uses an
    :class:`asyncio.Runner` (one loop, reused). With one running (Jupyter, an
    async web app calling sync code) it cannot nest a loop there, so it runs
    the coroutine on a helper thread with its own loop, created on first need
    and reused. :meth:`close` closes both.
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._thread: _LoopThread | None = None
        self.closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion and return its result or raise its exception."""
        if self.closed:
            coro.close()  # never awaited: close it so Python does not warn
            raise RuntimeError("SyncEngine is closed; create a new SyncEngine to go on")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return self._runner.run(coro)
        if self._thread is None:
            self._thread = _LoopThread()
        elif running is self._thread.loop:
            coro.close()
            raise RuntimeError(
                "SyncEngine was called from inside one of its own calls (a sync observer or "
                "task calling it back), which would wait on itself forever; use the async "
                "Engine (await engine.method(...)) there"
            )
        return self._thread.run(coro)

    def close(self) -> None:
        """Close the event loops (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._thread is not None:
                self._thread.close()
        finally:
            self._runner.close()


class SyncEngine:
    """The synchronous face of :class:`Engine`: every coroutine method, called blocking.

    Each coroutine method of the wrapped engine becomes a blocking call that
    returns the coroutine's result or raises its exception unchanged.

    Where the calls run: when the calling thread runs no event loop (a script,
    a test, a sync web app) they run on one event loop owned by this object.
    When it does (a Jupyter cell, sync code called from an async web app), a
    second loop cannot be started in that thread, so they run on a helper
    thread with its own event loop, started on first need and reused; the
    caller's thread, and so its loop, is blocked until the call is done.
    Async code that can ``await`` should use :class:`Engine` directly.
    :meth:`close` closes the engine and both loops.

    Example::

        with SyncEngine.from_config() as engine:
            state = engine.run(workflow, {"who": "Ada"})
    """

    def __init__(self, engine: Engine | Store | str | None = None, **kwargs: Any) -> None:
        """Wrap ``engine``, or build one: ``SyncEngine("sqlite:///runs.db", ...)`` takes the
        same arguments as :class:`Engine` (a store or store URL first, then keywords).

        Raises:
            TypeError: ``engine`` is neither an Engine, a Store nor a store URL.
        """
        if isinstance(engine, Engine):
            if kwargs:
                raise TypeError(
                    f"SyncEngine(engine, ...) wraps an Engine as it is and takes no other "
                    f"arguments (got {', '.join(sorted(kwargs))}); give them to Engine(...)"
                )
            self.engine = engine
        elif engine is None:
            self.engine = Engine(**kwargs)
        elif isinstance(engine, str | Store):
            self.engine = Engine(engine, **kwargs)
        else:
            raise TypeError(
                f"SyncEngine() takes an Engine, a Store or a store URL such as "
                f"'sqlite:///runs.db' (got {type(engine).__name__} {engine!r:.80})"
            )
        self._runner = _BlockingRunner()

    @classmethod
    def from_config(cls, cwd: str | Path | None = None, **kwargs: Any) -> SyncEngine:
        """Like :meth:`Engine.from_config`."""
        return cls(Engine.from_config(cwd, **kwargs))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.engine, name)
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._runner.run(attr(*args, **kwargs))

            call.__doc__ = attr.__doc__
            return call
        return attr

    def close(self) -> None:
        """Close the engine and its event loops; closing again does nothing."""
        if self._runner.closed:
            return
        try:
            self._runner.run(self.engine.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> SyncEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
