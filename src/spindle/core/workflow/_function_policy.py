"""Which Python functions a load policy lets a workflow call (``allowed_functions``).

A pattern is ``MODULE:NAME``:

- ``MODULE`` is a dotted module name (``pkg.mod``), or ``pkg.*`` for the
  package ``pkg`` and every module under it;
- ``NAME`` is a qualified name defined in that module (``fn``, ``Class.method``)
  or ``*`` for anything defined there.

A reference is checked twice, both times by exact comparison of dotted names
(so ``osx`` never passes for ``os``): first as written, before anything is
imported (importing a module runs its code, so a module outside the list is
never imported), then as resolved, by where the object is *defined*
(``__module__`` and ``__qualname__``; for an instance, its class). The second
check is what stops attribute chains and re-exports: ``mymod:os.system`` and a
``from os import system`` inside ``mymod`` both resolve to ``posix:system``,
which ``mymod:*`` does not cover. References must be plain ASCII dotted
identifiers: no relative modules (``..mod``), no ``__dunder__`` attributes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from attrs import frozen

if TYPE_CHECKING:
    from spindle.core.plugin import Runtime

__all__ = [
    "FunctionPattern",
    "function_problems",
    "pattern_problems",
    "policy_setting_problems",
]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"{_IDENT}(?:\.{_IDENT})*\Z")
_MODULE_PATTERN = re.compile(rf"(?P<base>{_IDENT}(?:\.{_IDENT})*)(?P<tree>\.\*)?\Z")


@frozen
class FunctionPattern:
    """One parsed ``allowed_functions`` entry."""

    text: str
    module: str
    subtree: bool  # ``pkg.*``: the package and every module under it
    name: str  # a qualified name, or "*"

    @classmethod
    def parse(cls, text: str) -> FunctionPattern:
        """Parse ``MODULE:NAME``.

        Raises:
            ValueError: ``text`` is not of that shape (the message says how to write it).
        """
        module, sep, name = text.partition(":")
        m = _MODULE_PATTERN.match(module)
        if not sep or m is None or not (name == "*" or _DOTTED.match(name)):
            raise ValueError(
                f"entry {text!r} is not 'module:function', 'module:*' "
                f"or 'package.*:*' (dotted ASCII names, e.g. 'mypkg.tasks:upper')"
            )
        return cls(text, m["base"], m["tree"] is not None, name)

    def matches(self, module: str, qualname: str) -> bool:
        """Whether ``module:qualname`` (plain dotted names) is covered by this pattern."""
        if self.subtree:
            in_module = module == self.module or module.startswith(self.module + ".")
        else:
            in_module = module == self.module
        return in_module and (self.name == "*" or qualname == self.name)


def pattern_problems(entries: Sequence[str]) -> list[str]:
    """A line for each malformed ``allowed_functions`` entry."""
    out = []
    for entry in entries:
        try:
            FunctionPattern.parse(entry)
        except ValueError as exc:
            out.append(str(exc))
    return out


_PROGRAM = re.compile(r"[A-Za-z0-9_./+-]+\Z")


def policy_setting_problems(
    allowed_executables: Sequence[str] | None, allowed_functions: Sequence[str] | None
) -> list[tuple[str, str]]:
    """``(setting, problem)`` for each malformed ``[policy]`` allow-list entry.

    An executable must be a plain program name or path (ASCII letters, digits and
    ``_./+-``): a command line is compared with it word for word.
    """
    out = [
        (
            "allowed_executables",
            f"entry {exe!r} is not a plain program name (ASCII letters, digits and _./+-)",
        )
        for exe in allowed_executables or ()
        if not _PROGRAM.match(exe)
    ]
    out.extend(("allowed_functions", p) for p in pattern_problems(allowed_functions or ()))
    return out


def _plain_reference(reference: str) -> tuple[str, str] | None:
    """``(module, qualname)`` when ``reference`` is a plain dotted ``module:qualname``."""
    module, sep, qualname = reference.partition(":")
    if not sep or not _DOTTED.match(module) or not _DOTTED.match(qualname):
        return None
    if any(part.startswith("__") for part in qualname.split(".")):
        return None
    return module, qualname


def function_problems(runtime: Runtime[object], allowed: Sequence[str]) -> list[str]:
    """Why the functions ``runtime`` calls are not all allowed by ``allowed`` (patterns).

    Written names are checked before the runtime resolves (imports) anything;
    only when all of them pass are the resolved names asked for and checked.
    """
    written = runtime.functions()
    if written is None:
        return []
    patterns = [FunctionPattern.parse(p) for p in allowed]
    shown = ", ".join(allowed) or "none"
    out = []
    for reference in written:
        plain = _plain_reference(reference)
        if reference.startswith("<") and reference.endswith(">"):
            out.append(f"function {reference[1:-1]}")
        elif plain is None:
            out.append(
                f"function '{reference}' is not a plain 'module:function' reference, which "
                f"the load policy requires (dotted ASCII names, no '__' attributes)"
            )
        elif not any(p.matches(*plain) for p in patterns):
            out.append(
                f"function '{reference}' is not in the policy's allowed functions ({shown}); "
                f"add it to [policy] allowed_functions to allow it"
            )
    if out:
        return out
    for reference, defined in zip(written, runtime.functions(resolve=True) or [], strict=False):
        plain = _plain_reference(defined)
        if plain is None or not any(p.matches(*plain) for p in patterns):
            out.append(
                f"function '{reference}' is defined as '{defined}', which is not in the "
                f"policy's allowed functions ({shown}); the policy checks where a function "
                f"is defined, so name that module in [policy] allowed_functions"
            )
    return out
