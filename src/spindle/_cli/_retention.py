"""A worker's retention policy (``spindle worker --retention``, the ``retention`` setting).

The worker (:class:`~spindle.Worker`) tends its policy before each claim; a pass runs at
most every :data:`EVERY` seconds and deletes at most :data:`MAX_BATCHES`
batches of :data:`BATCH` runs, so pruning never keeps a worker from claiming runs for long. A
prune that fails (a busy or full store) is reported and tried again at the
next pass: retention never stops a worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from spindle.core.engine import Retention

__all__ = ["BATCH", "EVERY", "MAX_BATCHES", "worker_retention"]

#: The fewest seconds between two retention passes of one worker.
EVERY = 60.0

#: Prune batches per pass.
MAX_BATCHES = 4

#: Runs per batch: one short transaction each (smaller than ``spindle prune``'s
#: default, since a worker drives live runs in the same process meanwhile).
BATCH = 200


def worker_retention(
    flag: str | None, setting: str | None, run_dir: Callable[[str], Path] | None = None
) -> Retention | None:
    """The policy ``--retention`` (else the ``retention`` setting) asks for, or None.

    ``run_dir`` (``Engine.run_dir``) has pruned runs' working directories removed too.

    Raises:
        ConfigError: the duration cannot be read (the message says how to write one).
    """
    text = flag if flag is not None else setting
    if text is None:
        return None
    from spindle.core.engine import Retention
    from spindle.core.model import parse_duration

    what = "--retention" if flag is not None else "retention setting"
    age = parse_duration(text, what=what)
    return Retention(age, every=EVERY, max_batches=MAX_BATCHES, batch=BATCH, run_dir=run_dir)
