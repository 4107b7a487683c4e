"""The ``python_script`` runtime: run a ``.py`` file in a fresh interpreter.

::

    report:
      runtime: {kind: python_script, path: scripts/report.py}
      inputs: {rows: load.rows}
      outputs: {pdf: {kind: file, path: report.pdf}}

The script runs as ``python PATH ARGS...`` (``path`` is relative to the
workflow file's directory) in the run directory, and talks to spindle through
environment variables that each hold a file path:

``SPINDLE_INPUTS``
    a JSON object of the node's inputs (overlaying the workflow's non-secret
    inputs); the file is removed when the script ends.
``SPINDLE_OUTPUTS``
    a JSON object of declared outputs: name → absolute path (null for value
    outputs).
``SPINDLE_RESULT``
    where the script may write its result as JSON; if it writes nothing the
    node's result is None.

``SPINDLE_RUN_ID``, ``SPINDLE_NODE_ID``, ``SPINDLE_RUN_DIR`` and
``SPINDLE_ATTEMPT`` are set as for commands. A script reads its inputs with::

    import json, os
    inputs = json.load(open(os.environ["SPINDLE_INPUTS"]))
    json.dump({"rows": len(inputs["rows"])}, open(os.environ["SPINDLE_RESULT"], "w"))
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field

from spindle import Runtime, TaskError
from spindle.core.workflow import current_base_dir
from spindle.plugins.payloads import ScriptPayload
from spindle.plugins.runtimes._common import prepare_outputs, resolve_dir, task_env

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["PythonScriptRuntime"]


@define
class PythonScriptRuntime(Runtime[ScriptPayload], kind="python_script"):
    """Runs a Python script file in a subprocess; it returns a result through ``SPINDLE_RESULT``.

    Attributes:
        path: the script, relative to the workflow file's directory (or absolute).
        args: extra command-line arguments for the script.
        env: variables added to the environment.
        cwd: the working directory, relative to the run directory (default: the run dir).
        python: the interpreter (default: the one running spindle).
        base_dir: the workflow file's directory, set while the file is loaded.
    """

    default_executor: ClassVar[str] = "subprocess"

    path: str
    args: list[str] = field(factory=list)
    env: dict[str, str] = field(factory=dict)
    cwd: str | None = None
    python: str | None = None
    base_dir: str | None = field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        base = current_base_dir()
        if base is not None:
            self.base_dir = str(base)

    def script_path(self, workflow_dir: Path | None = None) -> Path:
        """The absolute path of the script (relative paths from the workflow's directory)."""
        p = Path(self.path)
        if p.is_absolute():
            return p
        base = Path(self.base_dir) if self.base_dir else workflow_dir
        return (base or Path.cwd()) / p

    def read_files(self, workflow_dir: Path | None) -> list[Path]:
        """The script: a cached node's fingerprint covers its content."""
        return [self.script_path(workflow_dir)]

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report a script file that does not exist."""
        script = self.script_path()
        if not script.is_file():
            return [f"python_script file '{self.path}' does not exist (looked for {script})"]
        return []

    def executables(self) -> list[str]:
        """The interpreter that runs the script."""
        return [self.python or sys.executable]

    async def _setup_runtime(self, task: TaskContext) -> ScriptPayload:
        """Describe the script run: its path, inputs, outputs and environment."""
        wf_dir = task.workflow.base_dir if task.workflow is not None else None
        script = self.script_path(wf_dir)
        if not script.is_file():
            raise TaskError(
                f"node '{task.node_id}': python_script file '{self.path}' does not exist "
                f"(looked for {script})",
                node_id=task.node_id,
            )
        prepare_outputs(task)
        env = task_env(task)
        env.update(self.env)
        return ScriptPayload(
            path=script,
            inputs={**_public_inputs(task), **task.inputs},
            outputs={k: (str(v) if v is not None else None) for k, v in task.outputs.items()},
            cwd=resolve_dir(task.run_dir, self.cwd),
            env=env,
            args=list(self.args),
            python=self.python or sys.executable,
        )

    def run_paths(self) -> dict[str, str]:
        """``cwd``, when set: the loader and the engine keep it inside the run directory."""
        return {"cwd": self.cwd} if self.cwd else {}


def _public_inputs(task: TaskContext) -> dict[str, Any]:
    """The workflow inputs not declared secret (secrets reach a script only when mapped)."""
    specs = task.workflow.inputs if task.workflow is not None else {}
    return {k: v for k, v in task.workflow_inputs.items() if not (k in specs and specs[k].secret)}
