"""The payloads the built-in runtimes prepare and the built-in executors run.

A runtime turns a node into one of these; an executor declares the ones it
``accepts``. They are plain attrs classes so a third-party executor (a Dask
cluster, a container runner) can accept them too::

    runtime         payload         executors that accept it
    command         CommandPayload  subprocess
    python_script   ScriptPayload   subprocess
    python          PythonCall      inline, subprocess, process_pool
    python_code     CodePayload     inline

Payloads hold what is needed to run the task *now*; they are not stored in
the ledger (the node definition and its result are).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

from attrs import define, field

__all__ = ["CodePayload", "CommandPayload", "PythonCall", "ScriptPayload"]


@define
class CommandPayload:
    """A shell command line, already rendered and quoted.

    Attributes:
        command: the command line, passed to ``shell -c``.
        cwd: the absolute working directory.
        env: variables added to the executor's own environment (not the whole
            environment, so a payload never carries the host's secrets around).
        shell: the shell program that interprets ``command``.
    """

    command: str
    cwd: Path
    env: dict[str, str] = field(factory=dict)
    shell: str = "/bin/sh"


@define
class ScriptPayload:
    """A Python script file to run in a fresh interpreter.

    The executor hands the script its inputs and collects its result through
    files named by environment variables (see
    :class:`~spindle.plugins.runtimes.python_script.PythonScriptRuntime`).

    Attributes:
        path: the absolute path of the ``.py`` file.
        inputs: the values the script reads from ``SPINDLE_INPUTS`` (JSON-ready).
        outputs: declared outputs as absolute path strings (None for value outputs).
        cwd: the absolute working directory.
        env: variables added to the executor's environment.
        args: extra command-line arguments after the script path.
        python: the interpreter to run.
    """

    path: Path
    inputs: dict[str, Any]
    outputs: dict[str, str | None]
    cwd: Path
    env: dict[str, str] = field(factory=dict)
    args: list[str] = field(factory=list)
    python: str = ""


@define
class PythonCall:
    """A Python callable and the keyword arguments to call it with.

    Attributes:
        function: the callable itself (sync or async).
        kwargs: keyword arguments by parameter name; the value for a ``ctx``
            parameter is the live :class:`~spindle.TaskContext`, which
            out-of-process executors replace by a stand-in whose durable calls
            (:class:`~spindle.core.plugin.DurableCalls`) reach the engine's.
        reference: ``"module:qualname"`` when the callable can be imported by
            that name in a fresh interpreter, else None (lambdas, local
            functions, functions of ``__main__``).
        name: how error messages name the callable.
        is_async: whether calling it returns a coroutine to await.
        sys_path: directories a fresh interpreter must put on ``sys.path`` to
            import ``reference`` (the workflow file's directory).
    """

    function: Callable[..., Any]
    kwargs: dict[str, Any]
    reference: str | None = None
    name: str = ""
    is_async: bool = False
    sys_path: list[str] = field(factory=list)


@define
class CodePayload:
    """Compiled Python source to ``exec`` in a fresh namespace.

    Attributes:
        code: the compiled code object.
        filename: the name tracebacks show for it (``<python_code node 'x'>``).
        namespace: the globals the code runs in (``inputs``, ``outputs``,
            ``ctx``); the result is its ``result`` variable afterwards.
        source: the source text, for error messages.
    """

    code: CodeType
    filename: str
    namespace: dict[str, Any]
    source: str = ""
