"""The synchronous face of the engine: one thin wrapper, no second copy of the logic."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

from spindle.core.engine._engine import Engine

__all__ = ["SyncEngine"]


class SyncEngine:
    """The synchronous face of :class:`Engine`: every coroutine method, called blocking.

    Example::

        with SyncEngine.from_config() as engine:
            state = engine.run(workflow, {"who": "Ada"})
    """

    def __init__(self, engine: Engine | None = None, **kwargs: Any) -> None:
        self.engine = engine if engine is not None else Engine(**kwargs)
        self._runner = asyncio.Runner()

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
        """Close the engine and its event loop."""
        self._runner.run(self.engine.aclose())
        self._runner.close()

    def __enter__(self) -> SyncEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
