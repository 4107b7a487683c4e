"""The ``dask`` executor: Python-callable nodes on a Dask cluster.

::

    crunch:
      runtime: {kind: python, function: "stats:crunch"}
      executor: {kind: dask, address: "tcp://scheduler.internal:8786"}
      resources: {cpu: 2, memory: 4GiB}
      retry: {max_attempts: 3}

Without ``address`` the nodes run on a ``LocalCluster`` on loopback, started
on first use and shared by the process (:mod:`spindle.contrib.dask._cluster`).

* **The call** crosses to a worker as the ``process_pool`` executor sends it:
  the function by its ``module:qualname`` reference, its arguments pickled,
  ``ctx`` replaced by a stand-in whose durable calls (``ctx.step``,
  ``ctx.map``, ``ctx.ask_user`` ...) reach the engine over the sub-step
  channel, a Unix socket (:mod:`spindle.plugins.executors._channel`): they
  work on workers of the engine's machine; a worker elsewhere fails such a
  node with a message that says so. What the function prints is kept in the
  node's log files when the worker sees the run directory (same machine, or
  a shared file system).
* **Resources.** A node's ``resources`` (``{cpu: 2, memory: 4GiB}``) become
  the Dask task's (``{"cpu": 2, "memory": 4294967296}``): only a worker that
  declares at least as much runs it. When no connected worker does, the node
  fails at once naming what the workers offer (``unmet_resources: fail``), or
  waits in the scheduler's queue until one joins (``wait``, for clusters that
  grow).
* **Cancelling** the run (or the node's timeout) cancels the Dask future. A
  function already running on a worker thread runs on to its end (Dask
  cannot interrupt a thread); its result is dropped and its later sub-steps
  are refused.
* **A worker lost mid-task** (killed, out of memory, its machine gone) fails
  the attempt with :class:`WorkerLost`, which the node's ``retry`` policy
  retries like any failure. The executor's own LocalCluster hands that
  failure back at once; a cluster given by ``address`` first re-runs the task
  itself up to its scheduler's ``distributed.scheduler.allowed-failures``
  times (set it to 0 to leave every retry to spindle).
* **Results** come back to the engine from the worker; one larger than the
  engine's ``result_inline_limit`` is kept in the artifact store, with the
  ledger holding its reference, as for every executor. The Dask future is
  released at once, so the worker does not keep the value either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import re
import socket
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from attrs import define, field

from spindle import Executor, Outcome, TaskError
from spindle.contrib.dask import _cluster
from spindle.contrib.dask._worker import run_request
from spindle.core.errors import ConfigError
from spindle.core.plugin import Suspend
from spindle.core.workflow import resource_amounts
from spindle.plugins._references import import_reference
from spindle.plugins.executors._capture import log_spec
from spindle.plugins.executors._channel import serve_steps
from spindle.plugins.executors._detached import detached_request
from spindle.plugins.payloads import PythonCall

if TYPE_CHECKING:
    from distributed import Client

    from spindle import TaskContext

__all__ = ["DaskExecutor", "WorkerLost"]

_SCHEMES = ("tcp", "tls", "ucx", "inproc", "ws", "wss")
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+)(?::\d+)?"
)


class WorkerLost(TaskError):
    """The Dask worker running a node's task died (killed, out of memory, its machine gone).

    An ordinary failure: the node's ``retry`` policy retries it
    (``retry_on: [WorkerLost]`` retries this failure only).
    """


def _listed(amounts: dict[str, Any]) -> str:
    """``cpu=2, memory=4294967296``: whole amounts without a decimal point."""
    return ", ".join(
        f"{k}={int(v) if float(v).is_integer() else v}" for k, v in sorted(amounts.items())
    )


@define
class DaskExecutor(Executor[PythonCall], kind="dask"):
    """Runs Python functions on a Dask cluster, by address or started on demand (extra dask).

    Attributes:
        address: the Dask scheduler to connect to (``tcp://host:8786``). Unset: a
            LocalCluster on 127.0.0.1, started on first use, shared by the process
            and closed with the last engine using it (or the ``cluster`` factory's).
        cluster: a ``module:function`` returning a Dask cluster object to start
            instead of the LocalCluster (a ``dask_jobqueue.SLURMCluster``, say);
            called once per process, closed like the LocalCluster.
        n_workers: the LocalCluster's worker count (default: Dask's, from the CPUs).
        threads_per_worker: threads of each LocalCluster worker (default: Dask's).
        processes: LocalCluster workers are processes (true) or threads of this one.
        worker_resources: what each LocalCluster worker offers to nodes'
            ``resources`` (``{cpu: 4, memory: 8GiB}``); none by default.
        connect_timeout: seconds to wait for the scheduler when connecting.
        unmet_resources: a node whose ``resources`` no connected worker offers
            ``fail``s at once, or ``wait``s queued until such a worker joins.
        echo: also print what the function prints on the worker's stdout and stderr.
        log_limit: the most bytes kept in each log file (stdout, stderr) per attempt.
    """

    accepts: ClassVar[tuple[type, ...]] = (PythonCall,)

    address: str | None = None
    cluster: str | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None
    processes: bool = True
    worker_resources: dict[str, int | float | str] = field(factory=dict)
    connect_timeout: float = 30.0
    unmet_resources: Literal["fail", "wait"] = "fail"
    echo: bool = True
    log_limit: int = 10 * 1024 * 1024
    _client: Any = field(init=False, default=None, repr=False, eq=False)
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None, repr=False, eq=False)
    _held: tuple[str, str] | None = field(init=False, default=None, repr=False, eq=False)
    _connecting: asyncio.Lock | None = field(init=False, default=None, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError("; ".join(problems))

    def _problems(self) -> list[str]:
        out = []
        if self.address is not None:
            match = _ADDRESS.fullmatch(self.address)
            if match is None:
                out.append(
                    f"address {self.address!r} is not a Dask scheduler address; write "
                    f"SCHEME://HOST:PORT, such as tcp://10.0.0.5:8786"
                )
            elif match["scheme"] is not None and match["scheme"] not in _SCHEMES:
                out.append(
                    f"address {self.address!r}: unknown protocol {match['scheme']!r}; "
                    f"known: {', '.join(_SCHEMES)}"
                )
            if self.cluster is not None:
                out.append(
                    "give 'address' (a running cluster) or 'cluster' (one to start), not both"
                )
        local = {
            "n_workers": self.n_workers,
            "threads_per_worker": self.threads_per_worker,
            "worker_resources": self.worker_resources or None,
        }
        chosen = [k for k, v in local.items() if v is not None]
        chosen += [] if self.processes else ["processes"]
        if chosen and (self.address is not None or self.cluster is not None):
            verb = "is an option" if len(chosen) == 1 else "are options"
            out.append(
                f"{', '.join(chosen)} {verb} of the LocalCluster the executor starts when "
                f"it has no 'address' or 'cluster'; configure that cluster's workers instead"
            )
        for name, value in (
            ("n_workers", self.n_workers),
            ("threads_per_worker", self.threads_per_worker),
        ):
            if value is not None and value < 1:
                out.append(f"{name} must be at least 1, got {value}")
        if self.connect_timeout <= 0:
            out.append(f"connect_timeout must be positive, got {self.connect_timeout}")
        try:
            resource_amounts(self.worker_resources)
        except ValueError as exc:
            out.append(f"worker_resources: {exc}")
        return out

    # --- running a node -------------------------------------------------------------------

    async def _execute(self, payload: PythonCall, task: TaskContext) -> Outcome:
        """Submit the call to the cluster and await its value."""
        if not isinstance(payload, PythonCall):
            raise TypeError(
                f"executor 'dask' cannot run a {type(payload).__name__}; it runs PythonCall"
            )
        try:
            wanted = resource_amounts(task.node.resources)
        except ValueError as exc:
            raise TaskError(f"node '{task.node_id}': {exc}", node_id=task.node_id) from None
        request = detached_request(payload, task, "dask", "a Dask cluster")
        request["logs"] = log_spec(task, limit=self.log_limit, echo=self.echo, detached=True)
        client = await self.client(task.node_id)
        if wanted and self.unmet_resources == "fail":
            await self._check_resources(client, wanted, task.node_id)
        async with serve_steps(task, request):
            kind, value, duration = await self._call(client, payload, task, request, wanted)
        if kind == "suspend":
            raise Suspend(value)
        return Outcome(value=value, duration=duration)

    async def _call(
        self,
        client: Client,
        payload: PythonCall,
        task: TaskContext,
        request: dict[str, Any],
        wanted: dict[str, float],
    ) -> tuple[str, Any, float]:
        """Run the request on a worker: ``(kind, value, seconds)``."""
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        try:
            blob = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TaskError(
                f"node '{task.node_id}': the arguments of '{payload.name}' cannot be sent to a "
                f"Dask worker ({type(exc).__name__}: {exc})",
                node_id=task.node_id,
            ) from exc
        key = f"spindle-{task.run_id}-{task.node_id}-{task.attempt}-{uuid.uuid4().hex[:8]}"
        steps = request.get("steps")
        start = time.perf_counter()
        future = client.submit(
            run_request,
            blob,
            node_id=task.node_id,
            parent_path=[p or os.getcwd() for p in sys.path],
            channel=steps["address"] if steps else None,
            engine_host=socket.gethostname(),
            key=key,
            pure=False,
            resources=wanted or None,
        )
        try:
            kind, value = await future
        except asyncio.CancelledError:
            # The run was cancelled or the node timed out: the scheduler forgets the task
            # (a worker already running it cannot be interrupted; its result is dropped).
            with contextlib.suppress(Exception):  # a scheduler gone forgets it anyway
                await asyncio.shield(client.cancel([future], force=True))
            raise
        except KilledWorker as exc:
            raise WorkerLost(
                f"node '{task.node_id}': the Dask worker running '{payload.name}' died "
                f"(killed, out of memory, or its machine was lost: {exc})",
                node_id=task.node_id,
            ) from exc
        except FutureCancelledError as exc:
            raise TaskError(
                f"node '{task.node_id}': the Dask cluster dropped the task of '{payload.name}' "
                f"({exc}); was the scheduler restarted, or the task cancelled there?",
                node_id=task.node_id,
            ) from exc
        finally:
            future.release()
        return kind, value, time.perf_counter() - start

    async def _check_resources(self, client: Client, wanted: dict[str, float], node: str) -> None:
        """Fail the node when workers are connected and none offers ``wanted``."""
        scheduler: Any = client.scheduler
        identity = await scheduler.identity()
        workers = identity.get("workers") or {}
        offers = [dict(w.get("resources") or {}) for w in workers.values()]
        if not offers or any(all(o.get(k, 0) >= v for k, v in wanted.items()) for o in offers):
            return  # a worker can run it (or none has joined yet: the task waits for one)
        asked = _listed(wanted)
        offered = sorted({_listed(o) or "nothing" for o in offers})
        raise TaskError(
            f"node '{node}': no worker of the Dask cluster at {scheduler.address} offers "
            f"the resources it needs ({asked}); its {len(offers)} worker(s) offer: "
            f"{'; '.join(offered)}. Start workers with `dask worker ADDRESS --resources "
            f'"{asked.replace(", ", ",")}"` (or set the executor\'s worker_resources), or '
            f"set unmet_resources: wait to queue the node until such a worker joins",
            node_id=node,
        )

    # --- the connection -------------------------------------------------------------------

    async def client(self, node_id: str = "") -> Client:
        """This executor's client on the running loop, connecting (and starting a
        LocalCluster) on first use.

        Raises:
            TaskError: the scheduler cannot be reached, or the cluster cannot start.
        """
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            if self._client.status in ("closing", "closed"):
                self._client = None  # gave up on a scheduler that went away: connect again
            else:
                client: Client = self._client
                return client
        if self._connecting is None or self._loop is not loop:
            self._connecting, self._loop, self._client = asyncio.Lock(), loop, None
        async with self._connecting:
            if self._client is None:
                self._client = await self._connect(node_id)
            connected: Client = self._client
        return connected

    async def _connect(self, node_id: str) -> Client:
        from distributed import Client

        address = self.address
        if address is None:
            if self._held is None:
                key, start = self._starter()
                try:
                    self._held = key, await asyncio.to_thread(_cluster.acquire, key, start)
                except ConfigError as exc:
                    raise TaskError(f"node '{node_id}': {exc}", node_id=node_id) from exc
            address = self._held[1]
        try:
            client: Client = await Client(
                address,
                asynchronous=True,
                timeout=self.connect_timeout,
                set_as_default=False,
            )
        except (OSError, TimeoutError) as exc:
            raise TaskError(
                f"node '{node_id}': executor 'dask' cannot reach the Dask scheduler at "
                f"{address} within {self.connect_timeout:g}s ({type(exc).__name__}: {exc}); "
                f"is `dask scheduler` running there, and reachable from this machine?",
                node_id=node_id,
            ) from exc
        return client

    def _starter(self) -> tuple[str, Any]:
        """The shared cluster's key and how to start it (the factory, or a LocalCluster)."""
        if self.cluster is not None:
            reference = self.cluster

            def from_factory() -> Any:
                return import_reference(reference, [os.getcwd()])()

            return f"factory:{reference}", from_factory
        options: dict[str, Any] = {
            "n_workers": self.n_workers,
            "threads_per_worker": self.threads_per_worker,
            "processes": self.processes,
            "resources": resource_amounts(self.worker_resources),
        }

        def local() -> Any:
            return _cluster.local_cluster(**options)

        return "local:" + json.dumps(options, sort_keys=True), local

    async def aclose(self) -> None:
        """Close the client; the last executor using a cluster it started closes it."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()
        held, self._held = self._held, None
        if held is not None:
            await asyncio.to_thread(_cluster.release, held[0])
