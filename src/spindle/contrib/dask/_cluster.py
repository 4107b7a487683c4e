"""The clusters the Dask executor starts itself, shared by every engine of one process.

A ``dask`` executor without an ``address`` runs its nodes on a
``distributed.LocalCluster`` on loopback (``127.0.0.1``), or on the cluster a
``cluster`` factory makes (a ``dask_jobqueue.SLURMCluster``, say). Starting
one takes a second or more and worker processes, so it is started once per
process for each distinct configuration, on first use, and shared: every
executor instance using it holds it (:func:`acquire`), and the last one to
let go (:func:`release`, from the engine's ``aclose()``) closes it.

Clusters are started and closed in a thread (the engine awaits them with
:func:`asyncio.to_thread`): a synchronous ``LocalCluster`` runs its scheduler
on an event loop of its own, so it outlives any one engine's loop, and the
engines talk to it through asynchronous clients on their own loops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from attrs import define

from spindle.core.errors import ConfigError

__all__ = ["acquire", "local_cluster", "release"]


@define
class _Held:
    cluster: Any
    address: str
    users: int = 0


_lock = threading.Lock()
_clusters: dict[str, _Held] = {}


def acquire(key: str, start: Callable[[], Any]) -> str:
    """Hold the cluster known as ``key``, starting it with ``start()`` if none is running.

    Blocking (call it in a thread). Returns its scheduler's address.

    Raises:
        ConfigError: ``start()`` failed or made something without a ``scheduler_address``.
    """
    with _lock:
        held = _clusters.get(key)
        if held is None:
            try:
                cluster = start()
            except Exception as exc:
                raise ConfigError(
                    f"executor 'dask': cannot start its cluster ({type(exc).__name__}: {exc})"
                ) from exc
            address = getattr(cluster, "scheduler_address", None)
            if not isinstance(address, str):
                close = getattr(cluster, "close", None)
                if callable(close):
                    close()
                raise ConfigError(
                    f"executor 'dask': the cluster factory returned "
                    f"{type(cluster).__name__}, which has no scheduler_address; return a "
                    f"Dask cluster object (LocalCluster, SLURMCluster, PBSCluster ...)"
                )
            held = _clusters[key] = _Held(cluster, address)
        held.users += 1
        return held.address


def release(key: str) -> None:
    """Let go of the cluster ``key``; the last holder closes it (blocking)."""
    with _lock:
        held = _clusters.get(key)
        if held is None:
            return
        held.users -= 1
        if held.users > 0:
            return
        del _clusters[key]
        held.cluster.close()


def local_cluster(
    *,
    n_workers: int | None,
    threads_per_worker: int | None,
    processes: bool,
    resources: dict[str, float],
) -> Any:
    """A new ``LocalCluster`` on loopback, for :func:`acquire` (blocking).

    The scheduler is told to send a task back as failed the first time a
    worker running it dies (``allowed_failures=0``), instead of running it
    again elsewhere on its own: the node's retry policy decides, and records,
    what happens next. The scheduler's HTTP server (its dashboard, when bokeh is
    installed) listens on a free loopback port, not on 8787, which another
    cluster of the machine may hold.
    """
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        host="127.0.0.1",
        protocol="tcp://",  # also for thread workers, which would default to inproc://
        scheduler_port=0,
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"allowed_failures": 0},
        resources=resources or None,
    )
