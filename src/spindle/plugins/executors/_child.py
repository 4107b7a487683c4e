"""Run a Python callable named by reference in another process.

Two entry points:

* ``python -m spindle.plugins.executors._child RESULT_PATH`` — used by the
  ``subprocess`` executor. It reads a pickled request from stdin, calls the
  function and writes a pickled response to ``RESULT_PATH``; the function's
  prints go to the process's stdout/stderr, which the executor captures.
* :func:`call_in_worker` — the function a ``process_pool`` worker runs.

A request is ``{"reference", "kwargs", "sys_path", "is_async"}``; the
response is ``{"ok": True, "value": ...}`` or ``{"ok": False, "type",
"message", "traceback", "error": pickled exception or None}``. Only the
callable's *name* crosses the process boundary, so anything importable by
``module:qualname`` works with any multiprocessing start method.
"""

from __future__ import annotations

import inspect
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any

from spindle.plugins._references import import_reference

__all__ = ["call_in_worker", "init_worker", "main"]

_cache: dict[str, Callable[..., Any]] = {}


def _resolve(reference: str, sys_path: list[str]) -> Callable[..., Any]:
    fn = _cache.get(reference)
    if fn is None:
        fn = import_reference(reference, sys_path)
        _cache[reference] = fn
    return fn


def _call(request: dict[str, Any]) -> Any:
    fn = _resolve(request["reference"], request.get("sys_path") or [])
    value = fn(**request["kwargs"])
    if request.get("is_async") or inspect.isawaitable(value):
        import asyncio

        async def _await() -> Any:
            return await value

        value = asyncio.run(_await())
    return value


def init_worker(sys_path: list[str]) -> None:
    """Process-pool initializer: make the parent's import path available to the worker."""
    for entry in sys_path:
        if entry not in sys.path:
            sys.path.append(entry)


def call_in_worker(blob: bytes) -> Any:
    """Process-pool entry: unpickle a request, call the function, return its value.

    Exceptions propagate to the parent the way ``concurrent.futures`` sends them.
    """
    return _call(pickle.loads(blob))


def _error_response(exc: BaseException) -> dict[str, Any]:
    try:
        blob: bytes | None = pickle.dumps(exc)
    except Exception:  # an exception holding unpicklable state: send its text only
        blob = None
    return {
        "ok": False,
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "error": blob,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child interpreter; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    result_path = args[0]
    request = pickle.loads(sys.stdin.buffer.read())
    init_worker(request.get("parent_path") or [])
    try:
        value = _call(request)
    except Exception as exc:
        data, code = pickle.dumps(_error_response(exc)), 1
    else:
        try:
            data, code = pickle.dumps({"ok": True, "value": value}), 0
        except Exception as exc:
            err = TypeError(
                f"the result of '{request['reference']}' cannot be sent back to the engine "
                f"({type(exc).__name__}: {exc}); return plain data"
            )
            data, code = pickle.dumps(_error_response(err)), 1
    with open(result_path, "wb") as f:
        f.write(data)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
