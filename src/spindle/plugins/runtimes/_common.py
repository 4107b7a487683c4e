"""Small helpers the built-in runtimes share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spindle import TaskContext

__all__ = ["prepare_outputs", "task_env"]


def prepare_outputs(task: TaskContext) -> None:
    """Create the directories declared outputs will be written into.

    A ``folder`` output's own directory is created; for ``file`` and ``json``
    outputs, their parent. A task can then write ``{outputs.out.path}`` even
    when the declared path is ``reports/today.txt``.
    """
    specs = task.node.outputs
    for name, path in task.outputs.items():
        if path is None:
            continue
        spec = specs.get(name)
        target = path if spec is not None and spec.kind == "folder" else path.parent
        target.mkdir(parents=True, exist_ok=True)


def task_env(task: TaskContext) -> dict[str, str]:
    """The ``SPINDLE_*`` variables a process task sees, naming its run and node."""
    return {
        "SPINDLE_RUN_ID": task.run_id,
        "SPINDLE_NODE_ID": task.node_id,
        "SPINDLE_RUN_DIR": str(task.run_dir),
        "SPINDLE_ATTEMPT": str(task.attempt),
    }


def resolve_dir(base: Path, relative: str | None) -> Path:
    """``relative`` resolved against ``base`` (an absolute ``relative`` wins); ``base`` if None."""
    if not relative:
        return base
    return base / relative
