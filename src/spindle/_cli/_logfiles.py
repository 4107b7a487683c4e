"""Reading what a run's nodes left on disk, for ``spindle logs``.

The ``subprocess`` executor (the default of ``command`` and ``python_script``
nodes, and the executor of Python callables given ``executor: {kind:
subprocess}``) streams each node's output to ``RUN_DIR/logs/NODE.stdout`` and
``RUN_DIR/logs/NODE.stderr``; the ``inline`` and ``process_pool`` executors
keep there what a Python task writes to ``sys.stdout`` and ``sys.stderr``
(not what is written below Python's streams: C code, ``os.system``). ``NODE``
is the node id with every character other than a letter, digit, ``_``, ``.``
or ``-`` replaced by ``_``. The files are per node, not per attempt: a retry
appends to them after a ``--- attempt N ---`` line (attempt 1 has none, and a
node run again after a crash starts them afresh). Each attempt keeps at most
the executor's ``log_limit`` bytes per stream, then a ``[spindle: log
truncated ...]`` note. Values of secret inputs are written as ``***`` already.

:class:`StreamTail` reads one such file incrementally and tells which attempt
each piece of it belongs to; :class:`Blocks` prints pieces under headings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import click

__all__ = ["STREAMS", "Blocks", "StreamTail", "log_file", "read_log"]

#: The streams a node's log files hold, in the order they are printed.
STREAMS = ("stdout", "stderr")

# Both must match spindle.plugins.executors._process (a test holds them together).
_UNSAFE = re.compile(r"[^\w.-]")
_ATTEMPT = re.compile(rb"--- attempt (\d+) ---\n")


def log_file(run_dir: Path, node_id: str, stream: str) -> Path:
    """Where the ``subprocess`` executor writes ``stream`` of node ``node_id``."""
    safe = _UNSAFE.sub("_", node_id) or "_"
    return run_dir / "logs" / f"{safe}.{stream}"


def read_log(path: Path) -> str | None:
    """The whole log file as text (invalid UTF-8 replaced), or None when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return None


class StreamTail:
    """One log file read a piece at a time, each piece tagged with its attempt.

    :meth:`poll` returns what was appended since the last call, as
    ``(attempt, text)`` pieces of whole lines; a last line without its newline
    is kept back until it is finished, the writer is idle for a poll, or
    ``final`` is given. A file that shrank was written afresh (a node run
    again after a crash) and is read from its start.
    """

    def __init__(self, node_id: str, stream: str, path: Path) -> None:
        self.node_id = node_id
        self.stream = stream
        self.path = path
        self._offset = 0
        self._attempt = 1
        self._partial = b""

    def poll(self, *, final: bool = False) -> list[tuple[int, str]]:
        """The pieces written since the last poll (see the class documentation)."""
        data = self._read()
        if not data and not self._partial:
            return []
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        idle = len(data) == len(self._partial)  # nothing new since the last poll
        if final or idle:
            cut = len(data)
        self._partial = data[cut:]
        return self._split(data[:cut])

    def _read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                if size < self._offset:
                    self._offset, self._attempt, self._partial = 0, 1, b""
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return b""
        self._offset += len(data)
        return data

    def _split(self, data: bytes) -> list[tuple[int, str]]:
        pieces: list[tuple[int, str]] = []
        start = 0
        # The executor writes the header right after the previous attempt's output,
        # which may not have ended its last line: a header need not start a line.
        for header in _ATTEMPT.finditer(data):
            if header.start() > start:
                pieces.append((self._attempt, _text(data[start : header.start()])))
            self._attempt = int(header.group(1))
            start = header.end()
        if start < len(data):
            pieces.append((self._attempt, _text(data[start:])))
        return pieces


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class Blocks:
    """Prints pieces of output under a heading naming node, stream and attempt.

    ``==> NODE STREAM (attempt N) <==``, like ``tail`` heads each file; a
    heading is printed only when the source changes, so a followed stream
    reads on under one heading.
    """

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self._write = write or (lambda text: click.echo(text, nl=False))
        self._heading: str | None = None
        self._line_open = False
        self.printed = False

    def add(self, node_id: str, what: str, attempt: int, text: str) -> None:
        """Print ``text`` (part of ``what`` — a stream, or ``traceback`` — of one attempt)."""
        if not text:
            return
        heading = f"==> {node_id} {what} (attempt {attempt}) <=="
        if heading != self._heading:
            self.end()
            if self._heading is not None:
                self._write("\n")  # a blank line between blocks
            self._write(f"{heading}\n")
            self._heading = heading
        self._write(text)
        self._line_open = not text.endswith("\n")
        self.printed = True

    def end(self) -> None:
        """Finish the last line, if the output left it open."""
        if self._line_open:
            self._write("\n")
            self._line_open = False
