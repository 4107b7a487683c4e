"""What ``spindle worker`` shows while it drives runs, on stderr.

Piped (stderr is not a terminal): one plain line per claimed run
(``run ID claimed``) and per run it stops driving (``run ID completed``,
``run ID failed: ERROR``, ``run ID waiting``, as before), and the notes of
runs it cannot drive now. On a terminal: one live line — claimed, running,
finished and failed run counts, the elapsed time and the runs running now —
redrawn a few times a second; failures and notes are printed above it as
they happen, the per-run lines only with ``spindle -v``; when the worker
stops the line becomes a one-line summary.

A run counts as claimed once this worker holds it: at its first lifecycle
event (it started or resumed under this worker's lease), or when its drive
returns. A run another worker holds (``LeaseHeld``) is never shown.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._live import LiveLine, elapsed, fit_names, terminal_console, verbosity

if TYPE_CHECKING:
    from spindle.core.model import RunLifecycleEvent, RunState

__all__ = ["WorkerProgress"]

_STYLES = {"completed": "green", "failed": "bold red", "cancelled": "red", "waiting": "cyan"}


class WorkerProgress:
    """The worker's display, and an engine observer that sees its runs start.

    Args:
        color: draw for a terminal (live line, colours); default: whether
            stderr is a terminal.
        verbose: on a terminal, also print the per-run lines (default: whether
            ``spindle -v`` was given).
        console: the rich console to draw on (tests pass one writing to a buffer).
    """

    def __init__(
        self, *, color: bool | None = None, verbose: bool | None = None, console: Any = None
    ) -> None:
        self.claimed = 0
        self.finished = 0
        self.failed = 0
        self._offered: set[str] = set()
        self._running: dict[str, float] = {}
        self._began = time.monotonic()
        self._verbose = verbosity() > 0 if verbose is None else verbose
        self._out: LiveLine | None = None
        terminal = color if color is not None else (console is not None or sys.stderr.isatty())
        if terminal:
            own = console is None
            self._out = LiveLine(terminal_console() if own else console, self._render, redirect=own)

    # --- what the worker tells --------------------------------------------------------

    def offered(self, run_id: str) -> None:
        """The worker is about to drive ``run_id`` (it may turn out held elsewhere)."""
        self._offered.add(run_id)

    def dropped(self, run_id: str) -> None:
        """Another worker holds ``run_id``: forget it, silently."""
        self._offered.discard(run_id)

    def _claim(self, run_id: str) -> None:
        if run_id not in self._offered:
            return
        self._offered.discard(run_id)
        if self._out is None:
            self.claimed += 1
            self._running[run_id] = time.monotonic()
            click.echo(f"run {run_id} claimed", err=True)
            return
        with self._out.lock:
            self.claimed += 1
            self._running[run_id] = time.monotonic()
        if self._verbose:
            self._out.print(f"run {run_id} [blue]claimed[/]")
        self.show()

    def ended(self, run_id: str, state: RunState) -> None:
        """The drive of ``run_id`` returned ``state``: it stopped (ended or waits)."""
        self._claim(run_id)  # a run that sent no event is claimed only now
        status = state.status.value
        failed = status == "failed"
        line = f"run {run_id} {status}" + (f": {state.error}" if failed and state.error else "")
        if self._out is None:
            self._running.pop(run_id, None)
            self.finished += 1
            self.failed += failed
            click.echo(line, err=True)
            return
        with self._out.lock:
            self._running.pop(run_id, None)
            self.finished += 1
            self.failed += failed
        if failed or self._verbose:
            from rich.markup import escape

            colour = _STYLES.get(status, "")
            error = f": {state.error}" if failed and state.error else ""
            self._out.print(f"run {run_id} [{colour}]{status}[/]{escape(error)}")

    def note(self, run_id: str | None, message: str) -> None:
        """A line that is always printed (a run left to retry, one that cannot be driven)."""
        if run_id is not None:
            self._offered.discard(run_id)
            if self._out is not None:
                with self._out.lock:
                    self._running.pop(run_id, None)
            else:
                self._running.pop(run_id, None)
        if self._out is None:
            click.echo(message, err=True)
        else:
            from rich.markup import escape

            self._out.print(f"[yellow]{escape(message)}[/]")

    def show(self) -> None:
        """Show the live line (on a terminal; no-op when shown or piped)."""
        if self._out is not None:
            self._out.start()

    # --- the observer -------------------------------------------------------------------

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """A run this worker was about to drive started or resumed: it holds it."""
        if event.run_id in self._offered:
            self._claim(event.run_id)

    # --- drawing ------------------------------------------------------------------------

    def _counts(self) -> str:
        return (
            f"{self.claimed} claimed · {len(self._running)} running · "
            f"{self.finished} finished · {self.failed} failed"
        )

    def summary(self) -> str:
        """The one line that replaces the live display when the worker stops."""
        return f"worker: {self._counts()} · {elapsed(time.monotonic() - self._began)}"

    def _render(self, width: int) -> Any:
        from rich.text import Text

        assert self._out is not None
        line = Text()
        line.append(self._out.spinner() + " ", style="blue")
        line.append(f"worker: {self._counts()} · {elapsed(time.monotonic() - self._began)}")
        if self._running:
            room = width - len(line) - len(" · running: ") - 1
            names = fit_names((r[:8] for r in self._running), len(self._running), room)
            line.append(f" · running: {names}", style="dim")
        else:
            line.append(" · waiting for due runs", style="dim")
        line.truncate(max(1, width - 1))
        return line

    def close(self) -> None:
        """Stop the live line, printing the summary (idempotent)."""
        if self._out is not None and self._out.stop():
            self._out.print(self.summary())

    async def aclose(self) -> None:
        """Called by the engine when it closes."""
        self.close()
