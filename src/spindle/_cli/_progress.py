"""Node progress of the run commands (run, resume, retry, rerun), on stderr.

:class:`Progress` is an engine observer with two faces:

* **piped** (stderr is not a terminal): one plain line per node event, as
  ``  NODE completed in 0.12s`` — no colour, no control characters;
* **terminal**: one live line (a bar with done/total nodes, failed,
  retrying and waiting counts, the elapsed time and the nodes running now),
  redrawn a few times a second, which ends in a one-line summary
  (``500/500 nodes · 0 failed · 3.2s``) when the run ends or suspends.
  Failures are printed as lines above it as they happen; per-node lines
  only with ``spindle -v``.

Nodes of sub-workflow runs are not counted in done/total (that is the main
run's nodes); they show among the running nodes, marked with the child's
short id, and their failures are printed like the main run's.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from spindle._cli._live import LiveLine, bar, elapsed, fit_names, terminal_console, verbosity

if TYPE_CHECKING:
    from spindle.core.model import RunLifecycleEvent

__all__ = ["Progress"]

_STYLES = {
    "running": "blue",
    "completed": "green",
    "failed": "bold red",
    "retrying": "yellow",
    "skipped": "dim",
    "waiting": "cyan",
}

_ENDED = frozenset({"run_completed", "run_failed", "run_cancelled"})


class Progress:
    """An observer showing the nodes of a run as they go, on stderr.

    Args:
        color: draw for a terminal (live line, colours); default: whether
            stderr is a terminal. False gives the plain lines of a pipe.
        verbose: on a terminal, also print a line per node event (default:
            whether ``spindle -v`` was given).
        console: the rich console to draw on (tests pass one writing to a
            buffer); implies ``color=True`` unless told otherwise.

    Call :meth:`begin` with the main run's id and node count before driving it;
    without it the first event's run is the main run and no total is shown.
    """

    def __init__(
        self,
        *,
        color: bool | None = None,
        verbose: bool | None = None,
        console: Any = None,
    ) -> None:
        self.main_run: str | None = None
        #: The main run's node count, and how many of them ended / failed.
        self.total: int | None = None
        self.done = 0
        self.failed = 0
        self.waiting = 0
        self._not_run = 0
        self._retrying: set[str] = set()
        self._dynamic: set[str] = set()
        self._started: dict[tuple[str, str], float] = {}
        self._began: float | None = None
        self._announce: str | None = None
        self._verbose = verbosity() > 0 if verbose is None else verbose
        self._line_out: LiveLine | None = None
        terminal = color if color is not None else (console is not None or sys.stderr.isatty())
        if terminal:
            own = console is None
            self._line_out = LiveLine(
                terminal_console() if own else console, self._render, redirect=own
            )

    # --- what the command tells -------------------------------------------------------

    def begin(
        self,
        run_id: str,
        *,
        total: int | None = None,
        done: int = 0,
        failed: int = 0,
        announce: str | None = None,
    ) -> None:
        """Follow ``run_id``: it has ``total`` nodes, ``done`` of them ended already
        (``failed`` of those failed), as a resumed run's ledger says.

        ``announce`` (``run ID started (NAME)``) is printed when the run's first
        event arrives — once it exists: a run refused before it is written (an
        unknown input) never reads as started.
        """
        self.main_run = run_id
        self._announce = announce
        self.total = total
        self.done = done
        self.failed = failed

    # --- the observer -------------------------------------------------------------------

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Count a node event (printing its line when asked), or end the display."""
        kind = event.type.value
        if self.main_run is None:
            self.main_run = event.run_id
        main = event.run_id == self.main_run
        if main and self._announce is not None:
            click.echo(self._announce, err=True)  # before the live line starts
            self._announce = None
        node = event.node_id or ""
        if not main:
            node = f"{node} (sub-run {event.run_id[:8]})"
        # A map item or loop iteration (NAME[i], NAME#k, NAME#k/B) is a node of its
        # own, not in the workflow's count: the total grows as they appear.
        dynamic = main and self.total is not None and ("[" in node or "#" in node)
        if dynamic and node not in self._dynamic and self.total is not None:
            self._dynamic.add(node)
            self.total += 1
        if kind == "node_started":
            self._node_started(event, node, main)
        elif kind in ("node_completed", "node_failed", "node_retrying", "node_skipped"):
            self._node_ended(event, kind, node, main)
        elif kind == "run_waiting":
            self._run_waiting(event, main)
        elif main and kind in _ENDED:
            if kind != "run_completed" and self.total is not None:
                self._not_run = max(0, self.total - self.done)
            self._finish()
        elif main and kind in ("run_started", "run_resumed"):
            self._show()

    def _node_started(self, event: RunLifecycleEvent, node: str, main: bool) -> None:
        out = self._line_out
        if out is None:
            attempt = event.payload.get("attempt", 1)
            self._plain("running", node, f" (attempt {attempt})" if attempt > 1 else "")
            self._started[(event.run_id, node)] = time.monotonic()
            return
        with out.lock:
            self._started[(event.run_id, node)] = time.monotonic()
            if main:
                self._retrying.discard(node)
        self._show()  # the spinner line names running nodes: no -v line for a start

    def _node_ended(self, event: RunLifecycleEvent, kind: str, node: str, main: bool) -> None:
        out = self._line_out
        key = (event.run_id, node)
        if out is None:
            began = self._started.pop(key, None)
        else:
            with out.lock:
                began = self._started.pop(key, None)
                if main and kind == "node_retrying":
                    self._retrying.add(node)
                elif main:
                    self.done += 1
                    self.failed += kind == "node_failed"
        word = style = kind.removeprefix("node_")
        took = f" in {time.monotonic() - began:.2f}s" if began is not None else ""
        extra = ""
        if kind == "node_retrying":
            extra = f"; retrying in {event.payload.get('delay', 0):.1f}s"
            word = "failed"  # this attempt failed; the style says another follows
        if kind != "node_completed" and event.payload.get("error"):
            extra += f": {event.payload['error']}"
        source = event.payload.get("cached_from") if kind == "node_completed" else None
        if isinstance(source, dict):
            extra += f" (cached from {source.get('run_id')}/{source.get('node_id')})"
        if out is None:
            self._plain(word, node, took + extra)
        elif kind != "node_completed" or self._verbose:
            self._styled(word, node, took + extra, style)  # a failure is always shown

    def _run_waiting(self, event: RunLifecycleEvent, main: bool) -> None:
        # A run suspends only once nothing is in flight: none of its nodes is running.
        rid = event.run_id
        waits = [str(w) for w in event.payload.get("waits", [])] if main else []
        if self._line_out is None:
            self._started = {k: v for k, v in self._started.items() if k[0] != rid}
            for wait in waits:
                self._plain("waiting", wait, "")
            return
        with self._line_out.lock:
            self._started = {k: v for k, v in self._started.items() if k[0] != rid}
            if main:
                self.waiting = len(waits)
        if main:
            self._finish()
            for wait in waits:
                self._styled("waiting", wait, "", "waiting")

    # --- drawing ------------------------------------------------------------------------

    def _plain(self, word: str, node: str, rest: str) -> None:
        click.echo(f"  {node} {word}{rest}", err=True)

    def _styled(self, word: str, node: str, rest: str, style: str) -> None:
        from rich.markup import escape

        assert self._line_out is not None
        colour = _STYLES.get(style, "")
        self._line_out.print(f"  {escape(node)} [{colour}]{word}[/]{escape(rest)}")

    def _show(self) -> None:
        out = self._line_out
        if out is None or out.active:
            return
        if self._began is None:
            self._began = time.monotonic()
        with out.lock:
            self.waiting = 0
            self._not_run = 0
        out.start()

    def _counts(self) -> str:
        if self.total is not None:
            text = f"{min(self.done, self.total)}/{self.total} nodes"
        else:
            text = f"{self.done} nodes done"
        text += f" · {self.failed} failed"
        if self._retrying:
            text += f" · {len(self._retrying)} retrying"
        if self.waiting:
            text += f" · {self.waiting} waiting"
        if self._not_run:
            text += f" · {self._not_run} not run"
        return text

    def _seconds(self) -> float:
        return 0.0 if self._began is None else time.monotonic() - self._began

    def _render(self, width: int) -> Any:
        """The live line (called under the lock, from rich's refresh thread)."""
        from rich.text import Text

        assert self._line_out is not None
        line = Text()
        line.append(self._line_out.spinner() + " ", style="blue")
        if self.total:
            line.append_text(bar(self.done, self.total))
            line.append(" ")
        line.append(f"{self._counts()} · {elapsed(self._seconds())}")
        if self._started:
            room = width - len(line) - len(" · running: ") - 1
            names = fit_names((n for _, n in self._started), len(self._started), room)
            line.append(f" · running: {names}", style="dim")
        line.truncate(max(1, width - 1))
        return line

    def summary(self) -> str:
        """The one line that replaces the live display: counts and elapsed time."""
        return f"{self._counts()} · {elapsed(self._seconds())}"

    def _finish(self) -> None:
        out = self._line_out
        if out is not None and out.stop():
            from rich.markup import escape

            out.print(escape(self.summary()))

    def close(self) -> None:
        """Stop the live display, printing its summary (idempotent)."""
        self._finish()

    async def aclose(self) -> None:
        """Called by the engine when it closes."""
        self.close()
