"""Log records of the ``spindle`` loggers on stderr, as many as ``-v`` asks for.

The ``spindle`` command is the application, so it — not the library — decides
where records go: one handler on the ``spindle`` logger writes them to stderr
as ``spindle.engine: INFO: took over run ...``. The root logger is left
alone, and records still propagate to it, so a host that runs the command in
process (tests with click's ``CliRunner``) keeps its own handlers.

Verbosity sets the ``spindle`` logger's level: WARNING by default (warnings
and errors always show), INFO with ``-v``, DEBUG with ``-vv``. A logger with a
level of its own keeps it: the ``log`` observer sets one on its logger, so
the events it logs show whatever ``-v`` says.

Standard library only (imported when a command runs, never for ``--help``).
"""

from __future__ import annotations

import logging
import sys

__all__ = ["FORMAT", "StderrHandler", "configure_logging", "level_for"]

#: How a record looks on stderr.
FORMAT = "%(name)s: %(levelname)s: %(message)s"

_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


class StderrHandler(logging.Handler):
    """Writes each record as one line to whatever ``sys.stderr`` is when it is emitted.

    Looking ``sys.stderr`` up per record (as :data:`logging.lastResort`
    does) keeps the handler right when stderr is replaced after it was
    installed, as click's ``CliRunner`` does for every invocation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` and a newline to stderr, and flush."""
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def level_for(verbosity: int) -> int:
    """The ``spindle`` logger's level for ``-v`` given ``verbosity`` times."""
    return _LEVELS[min(max(verbosity, 0), len(_LEVELS) - 1)]


def configure_logging(verbosity: int) -> int:
    """Show ``spindle`` records on stderr at the level ``verbosity`` asks for.

    The handler is installed once per process (calling again only changes
    the level), so records are never printed twice.

    Returns:
        The level the ``spindle`` logger had before, for the caller to restore.
    """
    logger = logging.getLogger("spindle")
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        logger.addHandler(StderrHandler())
    previous = logger.level
    logger.setLevel(level_for(verbosity))
    return previous
