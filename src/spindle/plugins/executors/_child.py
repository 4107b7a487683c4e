"""Run a Python callable named by reference in another process.

Two entry points:

* ``python -m spindle.plugins.executors._child RESULT_PATH`` — used by the
  ``subprocess`` executor. It reads a pickled request from stdin, calls the
  function and writes a pickled response to ``RESULT_PATH``; the function's
  prints go to the process's stdout/stderr, which the executor captures.
* :func:`call_in_worker` — the function a ``process_pool`` worker runs. A
  request given ``"logs"`` (a :func:`~spindle.plugins.executors._capture.log_spec`)
  has the function's prints kept in its node's log files, as inline does.

A request is ``{"reference", "kwargs", "sys_path", "is_async"}`` and, when
the function takes ``ctx`` and the engine records its sub-steps, ``"steps"``:
how to reach the engine's end of the sub-step channel
(:mod:`spindle.plugins.executors._channel`); the stand-in ``ctx`` is attached
to it before the call. The response is ``{"ok": True, "value": ...}``,
``{"ok": False, "suspend": Effect}`` (the task asked for an effect
mid-function, or a step's backoff waits on a durable timer), or ``{"ok":
False, "type", "message", "traceback", "error": pickled exception or None}``.
Only the callable's *name* crosses the process boundary, so anything
importable by ``module:qualname`` works with any multiprocessing start method.
"""

from __future__ import annotations

import inspect
import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any

from spindle.plugins._references import import_reference

# The engine's signals and the sub-step channel are imported only by tasks that
# use them (a task taking ``ctx``, a task that raised one): a plain function's
# interpreter starts as fast as before.

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
    kwargs = request["kwargs"]
    client = None
    if request.get("steps"):
        from spindle.plugins.executors._detached import DetachedContext
        from spindle.plugins.executors._remote import StepClient

        client = StepClient(**request["steps"])
        for value in kwargs.values():
            if isinstance(value, DetachedContext):
                value.attach(client, client.recorded)
    saved = _set_env(request.get("env") or {})
    try:
        value = fn(**kwargs)
        if request.get("is_async") or inspect.isawaitable(value):
            import asyncio

            async def _await() -> Any:
                return await value

            value = asyncio.run(_await())
        return value
    finally:
        _restore_env(saved)
        if client is not None:
            client.close()


def _set_env(env: dict[str, str]) -> dict[str, str | None]:
    """Put ``env`` (from the engine's observers: ``TRACEPARENT`` ...) in ``os.environ`` for
    the call; return what it replaced. A pool or Dask worker outlives the call, so the
    next call must not see this node's values."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _signal(exc: BaseException) -> tuple[str, Any]:
    """What a task's ``BaseException`` means: ``("suspend", EFFECT)`` for a suspend,
    ``("error", TaskError)`` for an abandoned attempt; anything else is raised again."""
    from spindle.core.errors import TaskError
    from spindle.core.plugin import AttemptAbandoned, Suspend

    if isinstance(exc, Suspend):
        return "suspend", exc.effect
    if isinstance(exc, AttemptAbandoned):
        # The engine stopped listening (the attempt ended, or the engine died): an
        # ordinary failure, never a signal that would escape the engine's handling.
        return "error", TaskError(str(exc))
    raise exc


def init_worker(sys_path: list[str]) -> None:
    """Process-pool initializer: make the parent's import path available to the worker."""
    for entry in sys_path:
        if entry not in sys.path:
            sys.path.append(entry)


def call_in_worker(blob: bytes) -> tuple[str, Any]:
    """Process-pool entry: unpickle a request and call the function.

    Returns ``("value", VALUE)``, or ``("suspend", EFFECT)`` when the task asked
    for an effect. Exceptions propagate to the parent the way
    ``concurrent.futures`` sends them.
    """
    request = pickle.loads(blob)
    logs = request.get("logs")
    if logs is None:
        return _call_signalled(request)
    from spindle.plugins.executors._capture import captured_output

    with captured_output(logs):
        return _call_signalled(request)


def _call_signalled(request: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", _call(request)
    except Exception:
        raise
    except BaseException as exc:
        kind, what = _signal(exc)
        if kind == "error":
            raise what from None
        return kind, what


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


def _respond(request: dict[str, Any]) -> tuple[bytes, int]:
    """Call the function; the pickled response and the exit code."""
    try:
        response = {"ok": True, "value": _call(request)}
    except Exception as exc:
        return pickle.dumps(_error_response(exc)), 1
    except BaseException as exc:
        kind, what = _signal(exc)
        if kind == "error":
            return pickle.dumps(_error_response(what)), 1
        response = {"ok": False, "suspend": what}
    try:
        return pickle.dumps(response), 0
    except Exception as exc:
        what = "effect request" if "suspend" in response else "result"
        err = TypeError(
            f"the {what} of '{request['reference']}' cannot be sent back to the engine "
            f"({type(exc).__name__}: {exc}); return plain data"
        )
        return pickle.dumps(_error_response(err)), 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child interpreter; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    result_path = args[0]
    request = pickle.loads(sys.stdin.buffer.read())
    init_worker(request.get("parent_path") or [])
    data, code = _respond(request)
    with open(result_path, "wb") as f:
        f.write(data)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
