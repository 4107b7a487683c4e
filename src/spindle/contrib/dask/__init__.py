"""The Dask executor (``pip install 'spindle[dask]'``): Python-callable nodes on a Dask
cluster, given by its scheduler address or started on this machine on demand.

``executor: {kind: dask}`` selects it (``{kind: dask, address: "tcp://host:8786"}`` for
a running cluster). See :class:`DaskExecutor` for its options and
``docs/deployment.md`` for running a cluster, on machines or through an HPC
scheduler with ``dask-jobqueue``.
"""

from __future__ import annotations

try:
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        f"the Dask executor needs dask.distributed ({exc}); install it with: "
        "pip install 'spindle[dask]'"
    ) from exc

from spindle.contrib.dask.executor import DaskExecutor, WorkerLost

__all__ = ["DaskExecutor", "WorkerLost"]
