"""The ``python`` runtime: call a Python function with keyword arguments by name.

In a workflow file the function is a ``"module:function"`` string; the file's
directory goes on ``sys.path`` when it is imported, so a workflow can name a
module that sits next to it::

    nodes:
      upper:
        runtime: {kind: python, function: "mymodule:upper"}
        inputs: {text: hello.out}

In Python the function may be the callable itself (``@wf.node`` does that).
Each parameter is filled, by name, from the first of: the node's inputs, its
declared outputs (their paths), ``ctx`` (the :class:`~spindle.TaskContext`),
the workflow's inputs. A parameter with a default may stay unfilled; one
without a default that nothing fills is reported when the workflow is
loaded, before anything runs. A function that takes ``**kwargs`` also
receives every node input its named parameters did not take.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field

from spindle import Runtime, TaskError, converter
from spindle.core.workflow import current_base_dir
from spindle.plugins._references import (
    defined_name,
    display_name,
    import_reference,
    local_module,
    reference_of,
)
from spindle.plugins.payloads import PythonCall

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["UNIMPORTABLE_PREFIX", "PythonRuntime"]

#: How the stored definition names a callable that cannot be imported by name
#: (a lambda, a local function, a function of ``__main__``). Resuming such a
#: run in another process needs the workflow object passed in again.
UNIMPORTABLE_PREFIX = "<not importable: "

_EMPTY = inspect.Parameter.empty


def _validate_function(_: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, str) or callable(value):
        return
    raise TypeError(
        f"field 'function': expected a 'module:function' string or a callable, "
        f"got {type(value).__name__} {value!r}"
    )


@define(eq=False)
class _Plan:
    """A resolved function and how to fill its parameters (computed once per runtime)."""

    function: Callable[..., Any]
    reference: str | None
    name: str
    is_async: bool
    required: list[str]  # keyword-passable parameters without a default
    optional: list[str]  # keyword-passable parameters with a default
    positional_only: list[str]  # without a default: can never be filled by name
    var_keyword: bool
    sys_path: list[str]


@define
class PythonRuntime(Runtime[PythonCall], kind="python"):
    """Calls a Python function (sync or async); its return value is the node's result.

    Attributes:
        function: a ``"module:function"`` string or, from Python, the callable.
        base_dir: the directory of the workflow file that named the function
            (set from the file being loaded; not part of the stored definition).
    """

    default_executor: ClassVar[str] = "inline"

    function: Any = field(validator=_validate_function)
    base_dir: str | None = field(init=False, default=None)
    _plan: _Plan | None = field(init=False, default=None, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        base = current_base_dir()
        if base is not None:
            self.base_dir = str(base)

    # --- naming -------------------------------------------------------------

    @property
    def reference(self) -> str | None:
        """``"module:function"`` when the function can be imported by that name."""
        if isinstance(self.function, str):
            return self.function
        return reference_of(self.function)

    def definition_reference(self) -> str:
        """The string the stored definition keeps: the reference, or a marker."""
        ref = self.reference
        if ref is not None:
            return ref
        return f"{UNIMPORTABLE_PREFIX}{display_name(self.function)}>"

    @property
    def _label(self) -> str:
        return self.function if isinstance(self.function, str) else display_name(self.function)

    # --- resolving ----------------------------------------------------------

    def _resolve(self, base_dir: str | None = None) -> _Plan:
        """Import (if named by string) and inspect the function, once.

        Raises:
            ImportError: with the user-facing message (module or attribute missing).
        """
        if self._plan is not None:
            return self._plan
        sys_path = [d for d in (self.base_dir or base_dir,) if d]
        fn: Any = self.function
        if isinstance(fn, str):
            if fn.startswith(UNIMPORTABLE_PREFIX):
                raise ImportError(
                    f"runtime 'python' cannot import {fn}: the workflow was saved with a lambda "
                    f"or local function; pass the Workflow object itself to resume it"
                )
            try:
                fn = import_reference(fn, sys_path)
            except (ImportError, AttributeError, ValueError) as exc:
                raise ImportError(
                    f"runtime 'python' cannot import '{self.function}' ({exc}); is the module "
                    f"on PYTHONPATH or next to the workflow file?"
                ) from exc
            if not callable(fn):
                raise ImportError(
                    f"runtime 'python': '{self.function}' is a {type(fn).__name__}, not a callable"
                )
        name = (
            self.function
            if isinstance(self.function, str)
            else (getattr(fn, "__name__", None) or self._label)
        )
        self._plan = _make_plan(fn, self.reference, name, sys_path)
        return self._plan

    # --- load time ----------------------------------------------------------

    def functions(self, resolve: bool = False) -> list[str]:
        """The function as written (``module:qualname``) or, resolved, where it is defined."""
        if not resolve:
            if not isinstance(self.function, str):
                return [self.definition_reference()]
            local = local_module(self.function.partition(":")[0], self.base_dir or "")
            if self.base_dir and local is not None:
                return [
                    f"<'{self.function}' comes from the workflow's own directory ({local}), "
                    f"which a load policy does not trust; install the module or put its "
                    f"directory on PYTHONPATH>"
                ]
            return [self.function]
        try:
            plan = self._resolve()
        except ImportError:
            return []  # check() reports why it cannot be imported
        return [defined_name(plan.function)]

    def implicit_inputs(self, offered: Sequence[str]) -> list[str]:
        """The offered names the function has a parameter for (``def f(item, index)``)."""
        try:
            plan = self._resolve()
        except ImportError:
            return []  # check() reports why it cannot be imported
        params = {*plan.required, *plan.optional}
        return [n for n in offered if n in params]

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report an unimportable function or a parameter nothing provides.

        Args:
            node: the node being loaded.
            available: what a parameter may be filled from: the node's input
                and output names, ``"ctx"``, and ``"inputs.NAME"`` for every
                workflow input. Other plain names are accepted as given.
        """
        try:
            plan = self._resolve()
        except ImportError as exc:
            return [str(exc)]
        names = _available_names(node, available)
        problems = [
            f"function '{self._label}' has parameter '{p}' that nothing provides; "
            f"available: {', '.join(names) or '(nothing)'}"
            for p in plan.required
            if p not in names
        ]
        problems.extend(
            f"function '{self._label}' has positional-only parameter '{p}' without a default; "
            f"spindle passes arguments by name"
            for p in plan.positional_only
        )
        return problems

    # --- run time -----------------------------------------------------------

    async def _setup_runtime(self, task: TaskContext) -> PythonCall:
        """Bind the function's parameters from the task and return the call."""
        plan = self._plan
        if plan is None:  # the first call: import and inspect the function
            wf_base = task.workflow.base_dir if task.workflow is not None else None
            try:
                plan = self._resolve(str(wf_base) if wf_base is not None else None)
            except ImportError as exc:
                raise TaskError(f"node '{task.node_id}': {exc}", node_id=task.node_id) from exc
        kwargs: dict[str, Any] = {}
        if plan.required or plan.optional or plan.var_keyword:
            self._bind(plan, task, kwargs)
        # By position (function, kwargs, reference, name, is_async, sys_path): every step.
        return PythonCall(
            plan.function, kwargs, plan.reference, plan.name, plan.is_async, plan.sys_path
        )

    @staticmethod
    def _bind(plan: _Plan, task: TaskContext, kwargs: dict[str, Any]) -> None:
        """Fill ``kwargs`` with the function's parameters, by name, from the task."""
        inputs, outputs, wf_inputs = task.inputs, task.outputs, task.workflow_inputs
        for group, required in ((plan.required, True), (plan.optional, False)):
            for p in group:
                if p in inputs:
                    kwargs[p] = inputs[p]
                elif p in outputs:
                    kwargs[p] = outputs[p]
                elif p == "ctx":
                    kwargs[p] = task
                elif p in wf_inputs:
                    kwargs[p] = wf_inputs[p]
                elif required:
                    names = [*inputs, *(o for o in outputs if o not in inputs), "ctx"]
                    raise TaskError(
                        f"node '{task.node_id}': function '{plan.name}' has parameter '{p}' "
                        f"that nothing provides; available: {', '.join(names)}",
                        node_id=task.node_id,
                    )
        if plan.var_keyword:
            for k, v in inputs.items():
                kwargs.setdefault(k, v)


def _available_names(node: NodeSpec, available: set[str]) -> list[str]:
    """What can fill a parameter, in the order messages list it."""
    names = list(node.inputs)
    names.extend(o for o in node.outputs if o not in names)
    if "ctx" not in names:
        names.append("ctx")
    plain = sorted(a for a in available if "." not in a and a not in names)
    names.extend(plain)
    wf = sorted(a.partition(".")[2] for a in available if a.startswith("inputs."))
    names.extend(w for w in wf if w not in names)
    return names


# What inspecting a function found, by function: a workflow calling one function
# from 10,000 nodes inspects it once. Weak keys: a function can still be collected.
_Shape = tuple[bool, list[str], list[str], list[str], bool]
_SHAPES: weakref.WeakKeyDictionary[Any, _Shape] = weakref.WeakKeyDictionary()


def _make_plan(
    fn: Callable[..., Any], reference: str | None, name: str, sys_path: list[str]
) -> _Plan:
    try:
        shape = _SHAPES.get(fn)
    except TypeError:  # not weakly referable (a builtin, an unhashable instance)
        shape = None
        cacheable = False
    else:
        cacheable = True
    if shape is None:
        shape = _shape(fn)
        if cacheable:
            with contextlib.suppress(TypeError):
                _SHAPES[fn] = shape
    is_async, required, optional, positional_only, var_keyword = shape
    return _Plan(
        fn, reference, name, is_async, required, optional, positional_only, var_keyword, sys_path
    )


def _shape(fn: Callable[..., Any]) -> _Shape:
    """How ``fn`` is called: async or not, its required, optional and positional-only
    parameters, and whether it takes ``**kwargs``."""
    required: list[str] = []
    optional: list[str] = []
    positional_only: list[str] = []
    var_keyword = False
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature: pass nothing by name
        params = []
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_keyword = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.kind is p.POSITIONAL_ONLY:
            if p.default is _EMPTY:
                positional_only.append(p.name)
        elif p.default is _EMPTY:
            required.append(p.name)
        else:
            optional.append(p.name)
    # An instance with an ``async def __call__`` is async too.
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    return is_async, required, optional, positional_only, var_keyword


def _unstructure(runtime: PythonRuntime) -> dict[str, Any]:
    # The callable is stored by name; base_dir is left out on purpose, so moving
    # the workflow directory does not change the node's content hash.
    return {"kind": runtime.kind_name, "function": runtime.definition_reference()}


converter.register_unstructure_hook(PythonRuntime, _unstructure)
