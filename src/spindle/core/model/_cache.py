"""A cached node result: what a completed node left for later runs to reuse.

The engine keeps one :class:`CacheEntry` per fingerprint (see
``spindle.core.engine._caching``): the result its ledger record holds, the
digests of the output files it produced (kept in the artifact store), where
it came from, and until when it may be reused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import define, field

__all__ = ["CacheEntry", "cache_hit_key"]


@define
class CacheEntry:
    """One reusable node result, found by its fingerprint.

    Attributes:
        fingerprint: SHA-256 (hex) of the node's runtime configuration, resolved
            inputs (file contents included), listed files and cache key.
        workflow: the workflow of the run that produced it (``cache clear --workflow``).
        run_id: the run that produced it.
        node_id: the node that produced it.
        result: the node's result as its ledger record holds it.
        artifacts: output name to the SHA-256 digest of the file it produced.
        created_at: when the result was recorded.
        expires_at: when it stops being reused (None: never).
    """

    fingerprint: str
    workflow: str
    run_id: str
    node_id: str
    result: Any
    created_at: datetime
    artifacts: dict[str, str] = field(factory=dict)
    expires_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        """Whether the entry may still be reused at ``now``."""
        return self.expires_at is None or now < self.expires_at


def cache_hit_key(run_id: str, node_id: str) -> str:
    """The key of the ledger record saying a node's result came from the cache."""
    return f"{run_id}:{node_id}:cache"
