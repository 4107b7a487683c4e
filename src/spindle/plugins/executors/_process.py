"""Run one child process for a node: capture its output, stop its whole process group.

The mechanics behind the ``subprocess`` executor, kept apart from the payload
handling:

* The child starts in a **new session** (``start_new_session=True``), so it
  and everything it spawns share a process group the executor can signal as
  a whole. A naive ``proc.kill()`` would kill the shell and leave its
  children running.
* stdout and stderr are **streamed** to ``<run_dir>/logs/<node>.stdout`` and
  ``.stderr``, each capped at ``log_limit`` bytes (a note at the end of the
  file says how much was dropped). The last ``tail_size`` bytes of each are
  kept in memory for the outcome and error messages, and the first
  ``head_size`` bytes of stdout for the node's result.
* **Cancellation** (a timeout, a run cancel) sends SIGTERM to the group,
  waits up to ``grace`` seconds for the child to exit, then sends SIGKILL to
  the group, and re-raises.
* When the child exits normally, processes it **left behind** in its group
  get SIGTERM, and SIGKILL once the pipes they hold are closed or ``grace``
  has passed, so a node never leaks processes nor hangs on a pipe a
  background job keeps open.

POSIX only (process groups and signals).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from attrs import define, field

__all__ = ["Capture", "LogPaths", "ProcessResult", "log_paths", "run_process"]

_CHUNK = 64 * 1024
_UNSAFE = re.compile(r"[^\w.-]")


@define
class LogPaths:
    """Where a node's process output goes."""

    stdout: Path
    stderr: Path


def log_paths(run_dir: Path, node_id: str) -> LogPaths:
    """``<run_dir>/logs/<node>.stdout|stderr`` (the node id made safe for a file name)."""
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    safe = _UNSAFE.sub("_", node_id) or "_"
    return LogPaths(logs / f"{safe}.stdout", logs / f"{safe}.stderr")


@define(eq=False)
class Capture:
    """One output stream: written to a capped log file, with a head and a tail kept in memory."""

    path: Path
    limit: int
    tail_size: int
    head_size: int = 0
    header: bytes = b""
    total: int = 0
    written: int = 0
    head: bytearray = field(factory=bytearray)
    tail: bytearray = field(factory=bytearray)
    secrets: tuple[bytes, ...] = ()
    _file: IO[bytes] | None = None
    _partial: bytearray = field(factory=bytearray)

    def open(self, append: bool) -> None:
        """Open the log file (appending on retries, so earlier attempts stay readable).

        Unbuffered: each chunk read from the pipe is on disk when ``feed`` returns,
        so ``spindle logs --follow`` shows a node's lines as it prints them.
        """
        mode = "ab" if append else "wb"
        self._file = open(self.path, mode, buffering=0)  # noqa: SIM115 - closed in close()
        if self.header:
            self._file.write(self.header)

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of output (secret values replaced by ``***``).

        With secrets to hide, output is redacted a whole line at a time, so a
        value split across two chunks is still found; a line longer than 64 KiB
        is redacted in pieces.
        """
        if self.secrets:
            self._partial += chunk
            cut = self._partial.rfind(b"\n") + 1
            if not cut and len(self._partial) < 65536:
                return
            cut = cut or len(self._partial)
            ready = bytes(self._partial[:cut])
            del self._partial[:cut]
            self._take(self._redact(ready))
        else:
            self._take(chunk)

    def _redact(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret, b"***")
        return data

    def _take(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self._file is not None and self.written < self.limit:
            part = chunk[: self.limit - self.written]
            self._file.write(part)
            self.written += len(part)
        if len(self.head) < self.head_size:
            self.head += chunk[: self.head_size - len(self.head)]
        if self.tail_size:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_size:
                del self.tail[: -self.tail_size]

    @property
    def truncated(self) -> bool:
        """Whether the log file holds less than the process wrote."""
        return self.total > self.written

    def tail_text(self) -> str:
        """The last ``tail_size`` bytes, decoded (invalid UTF-8 replaced)."""
        return bytes(self.tail[-self.tail_size :]).decode("utf-8", "replace")

    def close(self) -> None:
        """Close the log, noting a truncation at its end."""
        if self._partial:
            rest = bytes(self._partial)
            self._partial.clear()
            self._take(self._redact(rest))
        if self._file is None:
            return
        if self.truncated:
            self._file.write(
                f"\n[spindle: log truncated after {self.written} bytes; "
                f"{self.total - self.written} more bytes were not kept]\n".encode()
            )
        self._file.close()
        self._file = None


@define
class ProcessResult:
    """How a child process ended and what it printed."""

    returncode: int
    stdout: Capture
    stderr: Capture
    duration: float


class _Protocol(asyncio.SubprocessProtocol):
    """Feeds pipe data straight into the captures and reports exit and close separately.

    ``exited`` resolves when the child itself exits; ``closed`` once its pipes
    are closed too (which waits for anything it left running that holds them).
    ``asyncio.subprocess.Process.wait()`` only offers the latter.
    """

    def __init__(self, stdout: Capture, stderr: Capture, loop: asyncio.AbstractEventLoop) -> None:
        self.sinks = {1: stdout, 2: stderr}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.sinks[fd].feed(data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - pid reused by another user's process
        return False
    return True


async def _settle(future: asyncio.Future[None], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``future`` without cancelling it; whether it is done."""
    if not future.done():
        await asyncio.wait([future], timeout=timeout)
    return future.done()


async def _stop_group(pgid: int, protocol: _Protocol, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for the child, then SIGKILL the group."""
    try:
        if _signal_group(pgid, signal.SIGTERM):
            await _settle(protocol.exited, grace)
    finally:
        # Always: children that outlived the shell, or a second cancellation mid-wait.
        _signal_group(pgid, signal.SIGKILL)
        await _settle(protocol.exited, 1.0)  # reaped, so the transport closes cleanly


async def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout: Capture,
    stderr: Capture,
    stdin: bytes | None = None,
    grace: float = 5.0,
    append: bool = False,
) -> ProcessResult:
    """Run ``argv`` to completion in its own process group, streaming output to the captures.

    Raises:
        OSError: the program could not be started (not found, not executable, bad cwd).
        asyncio.CancelledError: after the process group has been stopped.
    """
    start = time.perf_counter()
    loop = asyncio.get_running_loop()
    full_env = {**os.environ, **env} if env else None
    stdout.open(append)
    stderr.open(append)
    protocol = _Protocol(stdout, stderr, loop)
    starting = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: protocol,
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
        )
    )
    cancelled: asyncio.CancelledError | None = None
    try:
        try:
            transport, _ = await asyncio.shield(starting)
        except asyncio.CancelledError as exc:
            # Cancelled while the child starts. asyncio's own clean-up would kill the
            # shell only and then wait for its children to close the pipes; instead let
            # the start finish and stop the whole group below.
            cancelled = exc
            try:
                transport, _ = await starting
            except Exception:
                raise exc from None  # it never started: the cancellation is the news
    except BaseException:
        stdout.close()
        stderr.close()
        raise
    pgid = transport.get_pid()
    try:
        if stdin is not None:
            pipe = transport.get_pipe_transport(0)
            if isinstance(pipe, asyncio.WriteTransport):
                pipe.write(stdin)  # buffered by the transport; the child reads it all first
                pipe.close()
        try:
            if cancelled is not None:
                raise cancelled
            await asyncio.shield(protocol.exited)
            # Anything still in the group was left behind by the child: stop it. Its
            # pipes close once every process holding them has exited.
            leftovers = _signal_group(pgid, signal.SIGTERM)
            closed = await _settle(protocol.closed, grace)
            if leftovers or not closed:
                _signal_group(pgid, signal.SIGKILL)
            if not closed:
                await _settle(protocol.closed, 1.0)
        except BaseException:
            await _stop_group(pgid, protocol, grace)
            raise
    finally:
        transport.close()
        stdout.close()
        stderr.close()
    returncode = transport.get_returncode()
    return ProcessResult(
        returncode if returncode is not None else -1, stdout, stderr, time.perf_counter() - start
    )
