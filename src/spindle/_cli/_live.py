"""The live line the run commands and the worker draw on a terminal.

One transient rich ``Live`` region on stderr, redrawn by rich's own refresh
thread at a bounded rate (:data:`REFRESH_PER_SECOND`), never once per event:
a run of 10,000 nodes costs a few counter updates per node and at most a few
redraws a second. Lines printed while it is shown (failures, ``-v`` lines)
appear above it; when it stops it disappears and the owner prints a summary.

Also: the verbosity of the root ``spindle -v`` option, for commands that
print per-node lines only when asked.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import click

__all__ = [
    "REFRESH_PER_SECOND",
    "LiveLine",
    "bar",
    "elapsed",
    "fit_names",
    "terminal_console",
    "verbosity",
]

#: Redraws a second at most (rich's auto-refresh thread; events only change counters).
REFRESH_PER_SECOND = 8.0

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def verbosity() -> int:
    """How many ``-v`` the root ``spindle`` group was given (0 outside a click command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return 0
    return int(ctx.find_root().params.get("verbosity") or 0)


def terminal_console() -> Any:
    """A rich console on stderr that draws as on a terminal (colours, cursor moves)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, force_terminal=True)


def elapsed(seconds: float) -> str:
    """``3.2s``, ``4m05s`` or ``2h03m``: a duration as short as it reads well."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def fit_names(names: Iterable[str], count: int, width: int) -> str:
    """As many of ``names`` (``count`` in all) as fit in ``width`` characters,
    then ``+N more``; just ``N`` when not even one name fits."""
    shown: list[str] = []
    used = 0
    for name in names:
        rest = count - len(shown) - 1
        tail = len(f" +{rest} more") if rest else 0
        need = used + (2 if shown else 0) + len(name)
        if need + tail > width:
            break
        shown.append(name)
        used = need
    if not shown:
        return str(count)
    left = count - len(shown)
    return ", ".join(shown) + (f" +{left} more" if left else "")


def bar(done: int, total: int, width: int = 24) -> Any:
    """A rich ``Text`` bar of ``width`` cells, ``done`` of ``total`` filled."""
    from rich.text import Text

    filled = width if total <= 0 else min(width, round(width * done / total))
    text = Text("━" * filled, style="green")
    text.append("━" * (width - filled), style="grey30")
    return text


class LiveLine:
    """One transient live region on ``console``, redrawn from ``render`` by rich.

    ``render(width)`` returns the renderable for the current state; it is called
    from rich's refresh thread, so it must read state under :attr:`lock` (the
    owner updates state under it too).
    """

    def __init__(self, console: Any, render: Callable[[int], Any], *, redirect: bool) -> None:
        self.console = console
        self.lock = threading.Lock()
        self._render = render
        self._redirect = redirect
        self._live: Any = None
        self._pending: list[str] = []

    @property
    def active(self) -> bool:
        """Whether the live region is shown now."""
        return self._live is not None

    def spinner(self) -> str:
        """The spinner frame for now."""
        return _SPINNER[int(time.monotonic() * 10) % len(_SPINNER)]

    def start(self) -> None:
        """Show the live region (no-op when it is shown)."""
        if self._live is not None:
            return
        from rich.live import Live

        self._live = Live(
            console=self.console,
            get_renderable=self._renderable,
            transient=True,
            auto_refresh=True,
            refresh_per_second=REFRESH_PER_SECOND,
            # Text the process writes to stderr goes above the region instead of
            # through it; stdout is taken the same way only when it is the same
            # terminal (a piped stdout must keep its text).
            redirect_stderr=self._redirect,
            redirect_stdout=self._redirect and sys.stdout.isatty(),
        )
        self._live.start()

    def _renderable(self) -> Any:
        with self.lock:
            return self._render(self.console.width)

    def print(self, text: str) -> None:
        """Print ``text`` (rich markup, one line) above the live region.

        While the region is shown, lines are gathered and printed together a
        moment later (at most :data:`REFRESH_PER_SECOND` times a second): each
        print redraws the region, and ``-v`` on a 10,000-node run would
        otherwise redraw it 10,000 times.
        """
        if self._live is None:
            self.console.print(text)
            return
        self._pending.append(text)
        if len(self._pending) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not called from the event loop: print at once
                self.flush()
                return
            loop.call_later(1 / REFRESH_PER_SECOND, self.flush)

    def flush(self) -> None:
        """Print the gathered lines now."""
        if self._pending:
            lines, self._pending = self._pending, []
            self.console.print("\n".join(lines))

    def stop(self) -> bool:
        """Print the gathered lines and remove the live region; return whether it was shown."""
        self.flush()
        live, self._live = self._live, None
        if live is None:
            return False
        live.stop()
        return True
