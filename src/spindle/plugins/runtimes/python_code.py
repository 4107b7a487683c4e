"""The ``python_code`` runtime: a snippet of Python source run with ``exec``.

::

    publish:
      runtime:
        kind: python_code
        code: |
          text = inputs["text"]
          result = text.upper()

The code runs in a fresh namespace holding ``inputs`` (the workflow's inputs
overlaid by the node's own), ``outputs`` (declared outputs: name → path) and
``ctx`` (the :class:`~spindle.TaskContext`). The node's result is the value
of the variable ``result`` afterwards (None when the code does not set it).
A syntax error is reported when the workflow is loaded, with its line in the
code string. Load policies that do not trust a workflow's author should deny
``runtime.python_code``: the code can do anything Python can.
"""

from __future__ import annotations

import linecache
import re
from types import CodeType
from typing import TYPE_CHECKING, ClassVar

from attrs import define, field

from spindle import Runtime, TaskError
from spindle.plugins.payloads import CodePayload
from spindle.plugins.runtimes._common import prepare_outputs

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["PythonCodeRuntime"]


@define
class PythonCodeRuntime(Runtime[CodePayload], kind="python_code"):
    """Runs a Python code string with ``exec``; its ``result`` variable is the node's result.

    Attributes:
        code: the Python source.
    """

    default_executor: ClassVar[str] = "inline"

    code: str
    _compiled: CodeType | None = field(init=False, default=None, repr=False, eq=False)
    _filename: str = field(init=False, default="<python_code>", repr=False, eq=False)

    def functions(self, resolve: bool = False) -> list[str]:
        """``builtins:exec``: what runs the code, so a function allow-list can refuse it."""
        return ["builtins:exec"]

    def _compile(self, node_id: str | None = None) -> CodeType:
        """Compile once; registers the source so tracebacks show the offending line.

        Raises:
            SyntaxError: the code does not parse, or holds a lone surrogate
                (``"\\ud800"`` in a JSON file), which is not text Python reads.
        """
        if self._compiled is None:
            if node_id is not None:
                # One compiled code serves every item of a map (every iteration of a
                # loop): it is named for the template, NAME[i] / NAME#k/B, not one item.
                template = re.sub(r"#\d+/", "#k/", re.sub(r"\[\d+\]$", "[i]", node_id))
                self._filename = f"<python_code node '{template}'>"
            try:
                self._compiled = compile(self.code, self._filename, "exec")
            except UnicodeEncodeError as exc:
                raise SyntaxError(
                    f"the code holds a character that is not valid text "
                    f"({exc.object[exc.start : exc.end]!r}, a lone surrogate); remove it",
                    (self._filename, 1, 1, ""),
                ) from None
            linecache.cache[self._filename] = (
                len(self.code),
                None,
                self.code.splitlines(keepends=True),
                self._filename,
            )
        return self._compiled

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report a syntax error with its line number inside the code string."""
        try:
            self._compile(node.id)
        except SyntaxError as exc:
            return [_syntax_message(exc)]
        return []

    async def _setup_runtime(self, task: TaskContext) -> CodePayload:
        """Compile (once) and build the namespace the code runs in."""
        try:
            code = self._compile(task.node_id)
        except SyntaxError as exc:
            raise TaskError(
                f"node '{task.node_id}': {_syntax_message(exc)}", node_id=task.node_id
            ) from exc
        prepare_outputs(task)
        namespace = {
            "__name__": "__spindle_code__",
            "inputs": {**task.workflow_inputs, **task.inputs},
            "outputs": dict(task.outputs),
            "ctx": task,
        }
        return CodePayload(
            code=code, filename=self._filename, namespace=namespace, source=self.code
        )


def _syntax_message(exc: SyntaxError) -> str:
    where = f"at line {exc.lineno} of" if exc.lineno else "in"
    return f"python_code has a syntax error {where} its code: {exc.msg}"
