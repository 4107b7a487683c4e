"""The ``cache`` middleware: result caching for every workflow an engine runs.

Caching is off by default. A workflow turns it on with ``cache:`` (on a node,
or at its top for every task node; see docs/caching.md). This middleware
turns it on for **every** workflow the engine runs that does not say
otherwise, as if each had ``cache: {key, ttl, files}`` at its top::

    [[middleware]]
    kind = "cache"
    ttl = "7d"          # optional: how long a kept result is reused
    key = "v1"          # optional: bump it to stop reusing older results

A workflow's own top-level ``cache:`` (``false`` included) replaces it, and
a node's ``cache: false`` opts that node out. Nodes a default cannot cover
(effects, control flow, a ``folder`` output, a secret input or secret in the
runtime) simply run, as under a workflow's ``cache:``.

It wraps no stage: the engine asks it for its default once, when it is
built, and decides hits and misses where a node's result is recorded, so a
hit is in the ledger (a ``cache`` record naming the source run and node)
in the same commit as the reused result.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import define, field

from spindle import Middleware
from spindle.core.workflow import CacheSpec

__all__ = ["CacheMiddleware"]


@define
class CacheMiddleware(
    Middleware,
    kind="cache",
    description="Turns result caching on for every workflow without its own 'cache:'.",
):
    """Result caching for every workflow the engine runs (see the module docstring).

    Attributes:
        key: text mixed into every fingerprint; change it to stop reusing
            results kept before. A template like a workflow's ``cache.key``.
        ttl: how long a kept result may be reused, a duration (``30d``,
            ``12h``, ``1d12h``); none: until ``spindle cache clear``.
        files: files whose content is part of every fingerprint (relative to
            each workflow file's directory, or absolute).
    """

    #: No stage: the engine reads :meth:`cache_default` once.
    stages: ClassVar[frozenset[str]] = frozenset()

    key: str | None = None
    ttl: str | None = None
    files: list[str] = field(factory=list)
    # Built (and so checked, a bad ttl refused) with the options, as a workflow's
    # top-level cache: is when its file loads.
    _spec: CacheSpec = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._spec = CacheSpec(key=self.key, ttl=self.ttl, files=tuple(self.files))

    def cache_default(self) -> CacheSpec:
        """The ``cache:`` applied to every workflow that has none of its own."""
        return self._spec
