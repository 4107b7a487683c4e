"""The ``log`` observer: every lifecycle event as one ``logging`` record.

Configure it in ``spindle.toml``::

    [[observers]]
    kind = "log"
    level = "INFO"            # DEBUG, INFO, WARNING, ERROR or CRITICAL
    logger = "spindle.events"

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


def _upper(value: str) -> str:
    return value.upper() if isinstance(value, str) else value


@define
class LogObserver(ObserverPlugin, kind="log"):
    """Logs each lifecycle event through the standard ``logging`` module.

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
