"""What a Dask worker runs for one node: the request the executor pickled, called there.

The call itself is the ``process_pool`` executor's
(:func:`spindle.plugins.executors._child.call_in_worker`): the function named
by its ``module:qualname`` reference, its keyword arguments, a stand-in
``ctx`` whose durable calls reach the engine over the sub-step channel, and
its prints kept in the node's log files. This module adds what is particular
to a cluster: the worker may be another machine, which has neither the
engine's import path nor its sub-step socket.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from spindle.core.errors import TaskError
from spindle.plugins.executors._child import call_in_worker, init_worker

__all__ = ["run_request"]


def run_request(
    blob: bytes, *, node_id: str, parent_path: list[str], channel: str | None, engine_host: str
) -> tuple[str, Any]:
    """Call the pickled request ``blob`` on this worker: ``("value", V)`` or ``("suspend", E)``.

    Args:
        node_id: the node, for error messages.
        parent_path: the engine's ``sys.path``, added to this process's (a module
            next to the workflow file is found on a worker of the same machine).
        channel: the sub-step socket's path when the function takes ``ctx``.
        engine_host: the engine's host name, for the error when the socket is
            not on this machine.

    Raises:
        TaskError: the task makes durable sub-steps and this worker cannot reach the
            engine's sub-step channel (it runs on another machine).
        Exception: whatever the function raised (Dask sends it back to the engine).
    """
    if channel is not None and not os.path.exists(channel):
        raise TaskError(
            f"node '{node_id}': its function takes ctx, and durable sub-steps (ctx.step, "
            f"ctx.map, ctx.ask_user ...) reach the engine over a socket on the engine's "
            f"machine ({engine_host}), which this Dask worker ({socket.gethostname()}) "
            f"cannot open; run such nodes on workers of the engine's machine (the "
            f"executor's own LocalCluster, or a Dask resource only they offer), or drop ctx",
            node_id=node_id,
        )
    init_worker(parent_path)
    return call_in_worker(blob)
