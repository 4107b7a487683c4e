"""Paths a node names relative to the run directory, and keeping them inside it.

A node names paths in two places: its declared outputs (``outputs.NAME.path``
of ``file``, ``folder`` and ``json`` outputs) and its runtime's working
directory (``cwd`` of ``command`` and ``python_script``, reported by
:meth:`~spindle.Runtime.run_paths`). Both are relative to the run directory
and must stay inside it, because an output file is copied into the artifact
store (so ``path: ../../secret`` would copy any readable file there) and a
working directory is where a command writes.

They are checked twice:

* when the workflow loads (:func:`path_problems`): an absolute path, or one
  whose ``..`` climbs above the run directory, is refused, with the node and
  the field named. A trusted workflow (one loaded without a load policy) may
  allow it for one node with ``allow_outside_paths: true``; under a policy that
  flag is itself refused (:func:`policy_path_problems`).
* when the node runs (:func:`run_time_escapes`, :func:`read_inside`): each
  path is resolved with :func:`os.path.realpath`, so a symbolic link the task
  (or an earlier node) planted inside the run directory cannot point the
  artifact store or a working directory at a file outside it. The check runs
  before the runtime prepares the task and again when outputs are collected.

Paths are not templates: ``{inputs.x}`` in a path is literal text, so the
load-time check sees the exact path. The run-time check applies to the path
actually used, whatever produced it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from spindle.core.errors import TaskError

if TYPE_CHECKING:
    from spindle.core.workflow._nodes import NodeSpec

__all__ = [
    "OUTSIDE_FLAG",
    "check_inside",
    "node_paths",
    "path_escape",
    "path_problems",
    "policy_path_problems",
    "read_inside",
    "run_time_escapes",
]

#: The node field a trusted workflow sets to let that node's paths leave the run directory.
OUTSIDE_FLAG = "allow_outside_paths"

_HINT = (
    "paths are relative to the run directory; a trusted workflow, run without a load "
    f"policy, can allow this for the node with '{OUTSIDE_FLAG}: true'"
)


def _quoted(text: str, limit: int = 200) -> str:
    """``text`` quoted for a message, cut at ``limit`` characters (a path can be huge)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _cut(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def path_escape(text: str) -> str | None:
    """Why ``text`` leaves the run directory it is relative to, or None if it stays inside.

    The check is on the text alone (no file system): an absolute path leaves,
    and so does one whose ``..`` parts climb above where it starts
    (``a/../../x``); ``a/../b`` and ``./x`` stay inside.
    """
    if "\x00" in text:
        return "contains a NUL byte"
    if os.path.isabs(text) or PurePath(text).anchor:
        return "is absolute"
    depth = 0
    for part in PurePath(text).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return "leaves the run directory"
        elif part != ".":
            depth += 1
    return None


def node_paths(node: NodeSpec) -> Iterator[tuple[str, str, str]]:
    """Each run-directory path ``node`` names: ``(what, location, path)``.

    ``what`` names it in a message (``output 'out' path``), ``location`` is its
    dotted path in the definition (``nodes.x.outputs.out.path``).
    """
    where = f"nodes.{node.id}"
    for name, spec in node.outputs.items():
        if spec.path is not None:
            yield f"output '{name}' path", f"{where}.outputs.{name}.path", spec.path
    if node.runtime is not None:
        for field, value in node.runtime.run_paths().items():
            yield f"runtime {field}", f"{where}.runtime.{field}", value


def path_problems(node: NodeSpec) -> list[str]:
    """One ``problem @ location`` line for each path of ``node`` that leaves the run directory.

    A node with ``allow_outside_paths: true`` has none (whether the flag itself
    is allowed is the load policy's business: :func:`policy_path_problems`).
    """
    if node.allow_outside_paths:
        return []
    out = []
    for what, location, text in node_paths(node):
        why = path_escape(text)
        if why is not None:
            out.append(f"node '{node.id}': {what} {_quoted(text)} {why} ({_HINT}) @ {location}")
    return out


def policy_path_problems(node: NodeSpec) -> list[str]:
    """What a load policy refuses about ``node``'s paths: the ``allow_outside_paths`` flag.

    A definition from elsewhere never reads or writes outside its run
    directory, so under a policy the flag is refused whatever the paths are;
    the line names the paths that would leave, so the fix is clear.
    """
    if not node.allow_outside_paths:
        return []
    leaving = [
        f"{what} {_quoted(text)} {why}"
        for what, _, text in node_paths(node)
        if (why := path_escape(text)) is not None
    ]
    detail = f" ({'; '.join(leaving)})" if leaving else ""
    return [
        f"node '{node.id}': '{OUTSIDE_FLAG}' is refused by the load policy: under a policy "
        f"every path stays inside the run directory{detail}; remove the flag and use "
        f"paths relative to the run directory @ nodes.{node.id}.{OUTSIDE_FLAG}"
    ]


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _escape_message(node: NodeSpec, what: str, text: str, real: str, root: str) -> str:
    reason = path_escape(text)
    if reason is None:
        why = "a symbolic link inside the run directory points out of it"
    elif node.allow_outside_paths:
        why = f"it {reason}; under a load policy '{OUTSIDE_FLAG}' is not honoured"
    else:
        why = f"it {reason}; {_HINT}"
    return (
        f"node '{node.id}': {what} {_quoted(text)} resolves to {_cut(real)}, outside the run "
        f"directory {root} ({why}); refused"
    )


def run_time_escapes(
    node: NodeSpec, run_dir: Path, outputs: Mapping[str, Path | None]
) -> list[str]:
    """A message for each of ``node``'s paths that resolves outside ``run_dir`` now.

    Args:
        node: the node about to run.
        run_dir: the run directory.
        outputs: the node's output paths as its task sees them (``task.outputs``).
    """
    root = os.path.realpath(run_dir)
    out = []
    for name, path in outputs.items():
        if path is None:
            continue
        real = os.path.realpath(run_dir / path)
        if not _inside(root, real):
            spec = node.outputs.get(name)
            text = spec.path if spec is not None and spec.path is not None else str(path)
            out.append(_escape_message(node, f"output '{name}' path", text, real, root))
    if node.runtime is not None:
        for field, text in node.runtime.run_paths().items():
            real = os.path.realpath(run_dir / text)
            if not _inside(root, real):
                out.append(_escape_message(node, f"runtime {field}", text, real, root))
    return out


def check_inside(node: NodeSpec, name: str, run_dir: Path, path: Path) -> str:
    """The real path of output ``name`` at ``path``; TaskError if it is outside ``run_dir``.

    Called when outputs are collected, after the task ran: whatever the task
    left at the path (a file, a folder, a symbolic link) is resolved first.

    Raises:
        TaskError: the path resolves outside the run directory.
    """
    root = os.path.realpath(run_dir)
    real = os.path.realpath(path)
    if not _inside(root, real):
        spec = node.outputs.get(name)
        text = spec.path if spec is not None and spec.path is not None else str(path)
        raise TaskError(
            _escape_message(node, f"output '{name}' path", text, real, root), node_id=node.id
        )
    return real


def read_inside(node: NodeSpec, name: str, run_dir: Path, path: Path) -> bytes:
    """The bytes of output ``name``'s file, refused when it resolves outside ``run_dir``.

    The path is resolved first and the resolved file is opened without
    following a link, so a link swapped in after the check is not followed.

    Raises:
        TaskError: the file resolves outside the run directory.
        OSError: it cannot be read.
    """
    real = check_inside(node, name, run_dir, path)
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return f.read()
