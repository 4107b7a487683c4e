"""``--json``: stdout holds the one JSON document and nothing else.

A command given ``--json`` may run tasks in its own process (``spindle run``,
``resume``, ``retry``...): a Python task's ``print()``, a C extension writing
to fd 1, ``os.system("echo ...")`` or a process pool worker would all write
into the document a script is about to parse. So, as soon as ``--json`` is
parsed, :func:`reserve_stdout` keeps a duplicate of the real stdout for the
document alone and points file descriptor 1 at stderr for the rest of the
command: whatever else is written to stdout — by any thread, by C code, by a
child process started meanwhile — ends on stderr. :func:`document_stream` is
where :func:`~spindle._cli._common.echo_json` writes.

When stdout is not a file descriptor (click's test runner), ``sys.stdout``
itself is pointed at ``sys.stderr`` instead, which catches Python-level
writes only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TextIO

__all__ = ["document_stream", "reserve_stdout"]

_document: TextIO | None = None


def document_stream() -> TextIO | None:
    """Where the ``--json`` document goes: the real stdout, kept by :func:`reserve_stdout`
    (None when spindle started with its stdout closed)."""
    return _document if _document is not None else sys.stdout


def reserve_stdout() -> Callable[[], None]:
    """Keep the real stdout for the document only; return the function that undoes it."""
    global _document
    if _document is not None:
        return lambda: None
    out, err = sys.stdout, sys.stderr
    if out is None:  # started with fd 1 closed: there is no document to protect
        return lambda: None
    out.flush()
    fd = _fileno(out)
    err_fd = _fileno(err) if err is not None else None
    if fd is not None and err_fd is None:  # no stderr to send the rest to: drop it
        err = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as fd 1
        err_fd = err.fileno()
    if fd is None or err_fd is None or err is None:
        _document = out
        sys.stdout = err

        def restore_streams() -> None:
            global _document
            _document = None
            if sys.stdout is err:
                sys.stdout = out

        return restore_streams
    saved = os.dup(fd)
    _document = os.fdopen(saved, "w", encoding="utf-8", closefd=True)
    os.dup2(err_fd, fd)

    def restore_fd() -> None:
        global _document
        document, _document = _document, None
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()  # what went to stderr meanwhile stays there
        if document is not None:
            with contextlib.suppress(OSError, ValueError):
                document.flush()
            os.dup2(document.fileno(), fd)
            document.close()

    return restore_fd


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
