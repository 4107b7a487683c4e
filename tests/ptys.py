"""Running ``spindle`` with stderr on a pseudo-terminal, as a user at a terminal would.

Used by the tests of what the CLI draws on a terminal (the live progress
display, colours): stdout stays a pipe, stderr is the terminal's follower
side, and the leader side is read while the command runs (a full pty buffer
would block it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest


def on_pty(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -m spindle ARGV``; return its exit code, its stdout and what it wrote
    on the terminal (raw, escape codes kept). Skips the test where no pseudo-terminal
    can be opened, saying why."""
    if sys.platform == "win32":
        pytest.skip("needs a pseudo-terminal (POSIX only)")
    import pty

    try:
        leader, follower = pty.openpty()
    except OSError as exc:
        pytest.skip(f"cannot open a pseudo-terminal here: {exc}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spindle", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO once the command has exited and closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=60)
    reader.join(timeout=30)
    os.close(leader)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")
