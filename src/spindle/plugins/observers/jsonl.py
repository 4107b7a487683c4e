"""The ``jsonl`` observer: append every lifecycle event to a file, one JSON object per line.

Configure it in ``spindle.toml``::

    [[observers]]
    kind = "jsonl"
    path = ".spindle/events.jsonl"

The file is opened on the first event (in append mode, parent directories
created), each line is flushed as it is written so another process can tail
it, and the file is closed by :meth:`JsonlObserver.aclose`. Lines are short
writes to a local file, done inline: an event is a few hundred bytes.
"""

from __future__ import annotations

import json
import os
from typing import IO

from attrs import define, field

from spindle import ObserverPlugin, RunLifecycleEvent, converter

__all__ = ["JsonlObserver"]


@define
class JsonlObserver(ObserverPlugin, kind="jsonl"):
    """Appends each lifecycle event to a JSON Lines file.

    Attributes:
        path: the file to append to; relative paths are relative to the
            process's working directory.
    """

    path: str
    _file: IO[str] | None = field(default=None, init=False, repr=False, eq=False)

    def _open(self) -> IO[str]:
        if self._file is None:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in aclose
        return self._file

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Append ``event`` (unstructured with the project converter) as one line."""
        line = json.dumps(converter.unstructure(event), default=str, ensure_ascii=False)
        f = self._open()
        f.write(line + "\n")
        f.flush()

    async def aclose(self) -> None:
        """Close the file (a later event reopens it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
