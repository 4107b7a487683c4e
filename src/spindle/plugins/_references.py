"""``"module:qualname"`` references to Python callables, both ways.

Used by the ``python`` runtime (to import a function named in a workflow
file, and to name a callable in the stored definition) and by the
out-of-process executors (a fresh interpreter gets the name, not the object).
Kept free of spindle imports so a child interpreter loads it cheaply.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "defined_name",
    "display_name",
    "import_reference",
    "local_module",
    "reference_of",
    "split_reference",
]


def split_reference(text: str) -> tuple[str, str]:
    """Split ``"pkg.module:Class.function"`` into module and qualified name.

    Raises:
        ValueError: ``text`` is not of that shape (the message shows the fix).
    """
    module, sep, qualname = text.partition(":")
    module, qualname = module.strip(), qualname.strip()
    if not sep or not module or not qualname:
        hint = ""
        if not sep and "." in text:
            head, _, tail = text.rpartition(".")
            hint = f" (did you mean '{head}:{tail}'?)"
        raise ValueError(
            f"'{text}' is not a 'module:function' reference{hint}; write the module, "
            f"a colon, then the function"
        )
    return module, qualname


def ensure_sys_path(entries: Iterable[str]) -> None:
    """Put each directory in ``entries`` at the front of ``sys.path`` unless already there.

    Entries stay on ``sys.path`` (like a script's own directory does), so a
    function that imports a sibling module lazily still finds it.
    """
    for entry in entries:
        if entry and entry not in sys.path:
            sys.path.insert(0, entry)
            _ADDED.add(entry)


#: The directories :func:`ensure_sys_path` put on ``sys.path`` (a workflow's own
#: directory), as opposed to the path the interpreter was started with.
_ADDED: set[str] = set()


def local_module(module: str, directory: str) -> str | None:
    """Where in ``directory`` the import of ``module`` comes from, if it does.

    For load policies, which trust a module by its name: a workflow's own
    directory goes first on ``sys.path``, so a file there named like an allowed
    module would shadow the real one. Returns None when ``directory`` was on the
    interpreter's path already (the user put it there) or the module is found
    elsewhere. Nothing is imported.
    """
    top = module.partition(".")[0]
    if not top.isidentifier():
        return None
    base = os.path.realpath(directory)
    loaded = sys.modules.get(top)
    if loaded is not None:
        # where the top-level module or package sits: the directory it was found in
        file = getattr(loaded, "__file__", None)
        if isinstance(file, str):
            found = os.path.dirname(os.path.realpath(file))
            if os.path.basename(file) == "__init__.py":
                found = os.path.dirname(found)
            return file if found == base else None
        places = [os.path.dirname(os.path.realpath(p)) for p in getattr(loaded, "__path__", [])]
        return os.path.join(directory, top) if base in places else None
    if directory in sys.path and directory not in _ADDED:
        return None
    spec = importlib.machinery.PathFinder.find_spec(top, [directory])
    if spec is None:
        return None
    return spec.origin or os.path.join(directory, top)


def import_reference(text: str, sys_path: Iterable[str] = ()) -> Any:
    """Import the object ``text`` names, after putting ``sys_path`` on ``sys.path``.

    Raises:
        ValueError: ``text`` is malformed.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such attribute.
    """
    module_name, qualname = split_reference(text)
    ensure_sys_path(sys_path)
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"module '{module_name}' has no attribute '{qualname}'") from None
    return obj


def reference_of(fn: Any) -> str | None:
    """``"module:qualname"`` when a fresh interpreter can import ``fn`` by that name.

    None for lambdas, local functions and anything defined in ``__main__``
    (another interpreter has another ``__main__``), and when the name leads
    to a different object (a decorator that did not keep the function).
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if module == "__main__" or "<" in qualname:
        return None
    loaded = sys.modules.get(module)
    if loaded is not None:
        obj: Any = loaded
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        if obj is not fn and getattr(obj, "__wrapped__", None) is not fn:
            return None
    return f"{module}:{qualname}"


def display_name(fn: Any) -> str:
    """How messages name a callable: ``module:qualname`` when known, else its repr."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(qualname, str):
        return f"{module}:{qualname}" if isinstance(module, str) else qualname
    return repr(fn)


def defined_name(obj: Any) -> str:
    """Where ``obj`` is defined, as ``module:qualname``, for load policies.

    A function, class or method names itself (a bound method names its
    function); anything else (a callable instance, a ``functools.partial``) is
    named by its class, so it is judged by the code that defines its behaviour.
    ``"?:?"`` when the object does not say (some builtin methods), which no
    policy pattern matches.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        cls = type(obj)
        module, qualname = getattr(cls, "__module__", None), getattr(cls, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return "?:?"
    return f"{module}:{qualname}"
