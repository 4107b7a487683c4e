"""Run leases: who drives a run, taken over at once from dead local processes.

A lease is an expiring claim with a fencing token. A lease whose holder was a
process on this host that no longer exists is taken over immediately (so
``spindle resume`` right after a crash just works); any other only once it
expires. While driving, the drive renews it every third of its life.
"""

from __future__ import annotations

import logging
import os

from spindle.core.errors import LeaseHeld
from spindle.core.model import Lease, utcnow
from spindle.core.store import Store

__all__ = ["Leases", "pid_alive"]

log = logging.getLogger("spindle.engine")


class Leases:
    """Acquires and renews run leases in a store for one engine (``owner``)."""

    def __init__(self, store: Store, owner: str, host: str, ttl: float) -> None:
        self.store = store
        self.owner = owner
        self.host = host
        self.ttl = ttl
        self.pid = os.getpid()

    async def acquire(self, run_id: str) -> Lease:
        """Take the run's lease; take it over at once from a dead process on this host.

        Raises:
            RunNotFound: no such run.
            LeaseHeld: a live process (or one on another host, until expiry) holds it.
        """
        lease = await self.try_acquire(run_id)
        if lease is not None:
            return lease
        held = await self.store.get_lease(run_id)
        who = f"process {held.pid} on {held.host}" if held else "another process"
        until = f" until {held.expires_at.isoformat()}" if held else ""
        raise LeaseHeld(
            f"run {run_id} is being driven by {who} (lease held{until}); wait for "
            f"it to finish, or retry after the lease expires"
        )

    async def try_acquire(self, run_id: str) -> Lease | None:
        """Take the run's lease if nobody live holds it; None when somebody does.

        Raises:
            RunNotFound: no such run.
        """
        lease = await self._take(run_id, None)
        if lease is not None:
            return lease
        held = await self.store.get_lease(run_id)
        if held is not None and held.host == self.host and not pid_alive(held.pid):
            lease = await self._take(run_id, held.token)
            if lease is not None:
                log.info("took over run %s from dead process %s", run_id, held.pid)
            return lease
        return None

    async def take_over(self, run_id: str) -> Lease | None:
        """Take the run's lease even from a live holder, whose next write then fails
        (its fencing token is stale). None only if the lease changed hands meanwhile."""
        held = await self.store.get_lease(run_id)
        return await self._take(run_id, held.token if held is not None else None)

    async def hold(self, run_id: str, ttl: float) -> Lease | None:
        """Take the run's lease (if free or ours) for ``ttl`` seconds without driving it:
        a worker keeps a run it cannot drive from being claimed again at once, or (``ttl``
        0) leaves one it stops driving due at once for others. None when held elsewhere."""
        return await self._take(run_id, None, ttl)

    async def _take(self, run_id: str, steal: int | None, ttl: float | None = None) -> Lease | None:
        return await self.store.acquire_lease(
            run_id,
            owner=self.owner,
            host=self.host,
            pid=os.getpid(),
            ttl=self.ttl if ttl is None else ttl,
            now=utcnow(),
            steal_token=steal,
        )

    async def release(self, run_id: str, token: int) -> None:
        """Give the lease up (no-op when it is no longer ours)."""
        await self.store.release_lease(run_id, owner=self.owner, token=token)

    def held_by_live_driver(self, lease: Lease | None) -> bool:
        """Whether ``lease`` is a live claim: unexpired, and not left by a dead local process."""
        if lease is None or lease.expires_at <= utcnow():
            return False
        return not (lease.host == self.host and not pid_alive(lease.pid))

    async def renew(self, run_id: str, token: int) -> bool:
        """Extend our lease by its life; False (logged) when it was taken over."""
        ok = await self.store.renew_lease(
            run_id, owner=self.owner, token=token, ttl=self.ttl, now=utcnow()
        )
        if not ok:
            log.warning("lease on run %s was taken over; stopping", run_id)
        return ok


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
