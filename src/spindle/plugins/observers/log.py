"""The ``log`` observer: every lifecycle event as one ``logging`` record.

Configure it in ``spindle.toml``::

    [[observers]]
    kind = "log"
    level = "INFO"            # DEBUG, INFO, WARNING, ERROR or CRITICAL
    logger = "spindle.events"

Configuring it is asking to see those records, so it makes sure they are
emitted: when its logger has no level of its own, the observer gives it
``level``. A level set on that logger by the application is kept, which is
how a host limits or silences these records
(``logging.getLogger("spindle.events").setLevel(logging.WARNING)``). Where
the records go is up to the handlers: the ``spindle`` command prints every
``spindle.*`` record it receives on stderr; a host routes them with its own
logging configuration.

Payloads reach observers already redacted (secret inputs are replaced before
an event is built), so this observer logs what it receives as is.
"""

from __future__ import annotations

import logging

import attrs
from attrs import define, field

from spindle import ObserverPlugin, RunLifecycleEvent

__all__ = ["LogObserver"]

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


#: Levels log observers gave loggers (name -> level), so a later observer on the
#: same logger may lower it further, while a level the application set is kept.
_GIVEN: dict[str, int] = {}


def _upper(value: str) -> str:
    return value.upper() if isinstance(value, str) else value


def _enable(logger: logging.Logger, levelno: int) -> None:
    """Let ``logger`` emit records at ``levelno`` unless the application chose its level."""
    own = logger.level
    chosen_by_us = own == logging.NOTSET or _GIVEN.get(logger.name) == own
    if chosen_by_us and (own == logging.NOTSET or levelno < own):
        logger.setLevel(levelno)
        _GIVEN[logger.name] = levelno


@define
class LogObserver(ObserverPlugin, kind="log"):
    """Logs each lifecycle event through the standard ``logging`` module.

    Creating one gives its logger ``level`` unless that logger already has a
    level set by the application (see the module docstring), so the records
    are emitted even where the logger's parents log only warnings.

    Attributes:
        level: the level of every record (``DEBUG``...``CRITICAL``, any case).
        logger: the logger name, so hosts can route or silence these records.
    """

    level: str = field(default="INFO", converter=_upper, validator=attrs.validators.in_(_LEVELS))
    logger: str = "spindle.events"
    _log: logging.Logger = field(init=False, repr=False, eq=False)
    _levelno: int = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._log = logging.getLogger(self.logger)
        self._levelno = logging.getLevelName(self.level)
        _enable(self._log, self._levelno)

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Log ``event`` as ``run RUN_ID TYPE [node NODE] #SEQ PAYLOAD``."""
        if not self._log.isEnabledFor(self._levelno):
            return
        node = f" node {event.node_id}" if event.node_id else ""
        self._log.log(
            self._levelno,
            "run %s %s%s #%d %s",
            event.run_id,
            event.type.value,
            node,
            event.sequence,
            event.payload,
            extra={"spindle_event": event},
        )
