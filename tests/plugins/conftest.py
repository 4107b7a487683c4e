"""Fixtures for testing runtimes and executors without the engine.

The engine's part is small: build a :class:`TaskContext`, then
``payload = await runtime.setup_runtime(task)`` and
``outcome = await executor.execute(payload, task)``. ``make_task`` and
``run_node`` do exactly that.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spindle.core.plugin import Registry, TaskContext
from spindle.core.workflow import ArtifactSpec, NodeSpec


@pytest.fixture(scope="session")
def registry() -> Registry:
    """A registry over the installed entry points, as the engine uses."""
    return Registry()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    return d


@pytest.fixture
def make_task(run_dir: Path) -> Callable[..., TaskContext]:
    """Build a TaskContext for a node, resolving declared output paths in the run dir."""

    def factory(
        runtime: Any = None,
        executor: Any = None,
        *,
        node_id: str = "n",
        inputs: dict[str, Any] | None = None,
        refs: dict[str, Any] | None = None,
        outputs: dict[str, ArtifactSpec] | None = None,
        workflow_inputs: dict[str, Any] | None = None,
        attempt: int = 1,
        workflow: Any = None,
    ) -> TaskContext:
        outputs = outputs or {}
        inputs = inputs or {}
        node = NodeSpec(
            id=node_id,
            runtime=runtime,
            executor=executor,
            inputs=refs if refs is not None else {k: f"up.{k}" for k in inputs},
            outputs=outputs,
        )
        paths = {k: (run_dir / s.path if s.path else None) for k, s in outputs.items()}
        return TaskContext(
            run_id="run-1",
            node_id=node_id,
            node=node,
            inputs=dict(inputs),
            outputs=paths,
            run_dir=run_dir,
            workflow_inputs=dict(workflow_inputs or {}),
            attempt=attempt,
            runtime=runtime,
            executor=executor,
            workflow=workflow,
        )

    return factory


async def run_node_async(task: TaskContext) -> Any:
    """What the engine does for one task: prepare the payload, then execute it."""
    assert task.runtime is not None and task.executor is not None
    payload = await task.runtime.setup_runtime(task)
    return await task.executor.execute(payload, task)


@pytest.fixture
def run_node() -> Callable[[TaskContext], Any]:
    """Run a task's runtime then its executor on a fresh event loop; return the Outcome."""

    def run(task: TaskContext) -> Any:
        return asyncio.run(run_node_async(task))

    return run


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Forget modules and sys.path entries a test adds (tests import modules from tmp dirs)."""
    modules = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path
