"""Loading workflow files: YAML or JSON in, a validated :class:`Workflow` out.

Every problem :meth:`Workflow.from_dict` reports as ``"message @ dotted.path"``
is rewritten as ``"FILE:LINE: message @ dotted.path"``, where LINE is the line
of the deepest part of the path present in the file (a missing field points at
the mapping that should hold it). A YAML syntax error names the file, line and
column; a missing file names the path.

Scalars follow the YAML 1.2 core schema rather than PyYAML's YAML 1.1 default,
so a file means what it looks like and what its JSON twin means:
``yes``/``no``/``on``/``off`` are strings (``choices: [yes, no]`` is two
strings), only ``true``/``false`` are booleans; ``12:30`` is a string, not
the sexagesimal integer 750; ``2024-01-01`` is a string (a ``datetime`` field
parses ISO-8601 itself). Duplicate keys in a mapping are an error rather than
last-one-wins.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from spindle.core.errors import ValidationError
from spindle.core.workflow._files import missing_workflow_files
from spindle.core.workflow._json_fast import parse_json_fast
from spindle.core.workflow._limits import (
    BoundedLoader,
    check_data,
    check_text_size,
    read_workflow_file,
    reader_error,
    too_deep,
    value_error,
)
from spindle.core.workflow._nodes import LoadPolicy
from spindle.core.workflow._workflow import Workflow
from spindle.core.workflow._yaml_fast import compose, parse_fast
from spindle.core.workflow._yaml_schema import CORE_RESOLVERS

if TYPE_CHECKING:
    from spindle.core.config import Settings
    from spindle.core.plugin import Registry

__all__ = ["SUFFIXES", "load_workflow", "load_workflow_text"]

#: File name suffixes :func:`load_workflow` reads.
SUFFIXES = (".yaml", ".yml", ".json")


class _Loader(BoundedLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and numbers, no timestamps, and limits."""

    yaml_implicit_resolvers = CORE_RESOLVERS


def load_workflow(
    path: str | os.PathLike[str],
    *,
    registry: Registry | None = None,
    policy: LoadPolicy | None = None,
    settings: Settings | None = None,
) -> Workflow:
    """Load and validate the workflow in a ``.yaml``, ``.yml`` or ``.json`` file.

    Relative references in the file (a ``python`` runtime's ``"module:function"``,
    an effect's file path) resolve against the file's directory, which becomes
    the workflow's ``base_dir``.

    Args:
        path: the workflow file.
        registry: where plugin kinds are looked up (the default registry if None).
        policy: what the definition may use; refused kinds or executables raise
            :class:`~spindle.PolicyViolation` before anything runs.
        settings: when ``policy`` is None, its ``[policy]`` section is applied
            (``Settings.load_policy()``); without either, nothing is refused.

    Returns:
        The validated workflow.

    Raises:
        ValidationError: the file is missing, unreadable, not valid YAML/JSON or
            not a valid workflow; ``problems`` holds one ``FILE:LINE: message @ path``
            line per problem, all of them at once.
        PolicyViolation: the policy refuses a node (names the node and the kind).

    Example::

        wf = spindle.load_workflow("examples/greet.yaml")
    """
    shown = os.fspath(path)
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise ValidationError(
            f"cannot load workflow file {shown}: unsupported file type "
            f"'{p.suffix or '(none)'}'; use one of {', '.join(SUFFIXES)}"
        )
    text = read_workflow_file(p, shown)
    resolved = p.resolve()
    return load_workflow_text(
        text,
        filename=shown,
        registry=registry,
        policy=policy,
        settings=settings,
        base_dir=resolved.parent,
        source=str(resolved),
        json_only=p.suffix.lower() == ".json",
    )


def load_workflow_text(
    text: str,
    *,
    filename: str = "<string>",
    registry: Registry | None = None,
    policy: LoadPolicy | None = None,
    settings: Settings | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    source: str | None = None,
    json_only: bool = False,
) -> Workflow:
    """Load and validate a workflow from YAML (or JSON) text.

    Args:
        text: the definition.
        filename: how problems name the text (``FILE:LINE: ...``).
        registry: where plugin kinds are looked up (the default registry if None).
        policy: what the definition may use (see :func:`load_workflow`).
        settings: supplies the policy when ``policy`` is None.
        base_dir: where relative references resolve (default: none, the cwd).
        source: recorded as the workflow's ``source`` (default: ``filename``).
        json_only: the text is JSON; when it is JSON that YAML cannot read
            (tabs), it is parsed as JSON, without line numbers.

    Raises:
        ValidationError: see :func:`load_workflow`.
        PolicyViolation: see :func:`load_workflow`.
    """
    check_text_size(text, filename)
    data, lines, duplicates = _parse(text, filename, json_only=json_only)
    if data is None:
        raise ValidationError(
            f"{filename}: the workflow file is empty",
            [f"{filename}:1: expected a mapping with 'name' and 'nodes' @ $"],
        )
    if policy is None and settings is not None:
        policy = settings.load_policy()
    try:
        if not isinstance(data, Mapping):
            raise ValidationError(
                "a workflow definition must be a mapping",
                [f"expected a mapping with 'name' and 'nodes', got {type(data).__name__} @ $"],
            )
        bd = Path(base_dir) if base_dir is not None else None
        wf = Workflow.from_dict(data, registry=registry, base_dir=bd, source=source, policy=policy)
        if duplicates:
            raise ValidationError(f"workflow '{wf.name}' is invalid")
        wf = wf.validate(policy)
        missing = missing_workflow_files(wf)
        if missing:
            raise ValidationError(
                f"workflow '{wf.name}' names workflow files that do not exist", missing
            )
        return wf
    except ValidationError as exc:
        where = lines()
        located = [*duplicates, *(_locate(p, filename, where) for p in exc.problems)]
        raise type(exc)(f"{filename}: {exc.summary}", sorted(located, key=_line_of)) from None


def _parse(
    text: str, filename: str, *, json_only: bool
) -> tuple[Any, Callable[[], dict[str, int]], list[str]]:
    """Return (data, the line per dotted path when called, duplicate-key problems).

    libyaml reads the text when it can (:mod:`~spindle.core.workflow._yaml_fast`);
    the pure-Python loader reads it when libyaml is missing, and whenever the
    text is refused, so every error is worded and placed as that loader does.
    The lines are only wanted to place problems, so libyaml's reading
    composes them only then. A JSON file is read with :mod:`json` when that
    reads it as YAML would (:mod:`~spindle.core.workflow._json_fast`).
    """
    nul = text.find("\0")
    if nul >= 0:  # JSON would call it a control character; say what it is
        raise reader_error(yaml.reader.ReaderError(filename, nul, 0, "unicode", ""), text, filename)
    if json_only:
        ok, data = parse_json_fast(text)
        if ok:  # read as YAML only to place a problem, as it would have been read
            return data, lambda: _yaml_lines(text, filename), []
    return _parse_yaml(text, filename, json_only=json_only)


def _yaml_lines(text: str, filename: str) -> dict[str, int]:
    """The line map of a JSON text read as YAML; none when YAML cannot read it."""
    try:
        return _parse_yaml(text, filename, json_only=True)[1]()
    except ValidationError:
        return {}


def _parse_yaml(
    text: str, filename: str, *, json_only: bool
) -> tuple[Any, Callable[[], dict[str, int]], list[str]]:
    fast = parse_fast(text)
    if fast is not None:
        if fast.node is not None:
            lines, duplicates = _lines(fast.node, filename)
            return fast.data, lambda: lines, duplicates
        # no duplicate keys (else the nodes are composed); lines only for problems
        return fast.data, lambda: _lines(compose(text), filename)[0], []
    try:
        loader = _Loader(text, filename)
    except yaml.reader.ReaderError as exc:
        if json_only:
            return _parse_json(text, filename), dict, []
        raise reader_error(exc, text, filename) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        if json_only:
            return _parse_json(text, filename), dict, []
        raise ValidationError(f"{filename}: invalid YAML", [_yaml_problem(exc, filename)]) from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{filename}: invalid YAML", [f"{filename}: {exc}"]) from None
    except ValidationError:
        raise
    except ValueError as exc:  # a scalar Python cannot convert (an integer of 5,000 digits)
        raise value_error(exc, filename) from None
    finally:
        loader.dispose()
    if node is None:
        return data, dict, []
    lines, duplicates = _lines(node, filename)
    return data, lambda: lines, duplicates


def _lines(node: yaml.Node | None, filename: str) -> tuple[dict[str, int], list[str]]:
    """The line of every dotted path in the document ``node``, and its duplicate keys."""
    if node is None:
        return {}, []
    lines = {"$": node.start_mark.line + 1}
    duplicates: list[str] = []
    _walk(node, "", lines, duplicates, filename, set())
    return lines, duplicates


def _parse_json(text: str, filename: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{filename}: invalid JSON", [f"{filename}:{exc.lineno}:{exc.colno}: {exc.msg}"]
        ) from None
    except RecursionError:
        raise too_deep(filename) from None
    except ValueError as exc:  # an integer of 5,000 digits
        raise value_error(exc, filename) from None
    check_data(data, filename)
    return data


def _yaml_problem(exc: yaml.MarkedYAMLError, filename: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark is not None else filename
    message = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        ctx = exc.context
        if exc.context_mark is not None and exc.context_mark is not exc.problem_mark:
            ctx += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        message = f"{exc.problem} ({ctx})"
    return f"{where}: {message}"


def _walk(
    node: yaml.Node,
    path: str,
    lines: dict[str, int],
    duplicates: list[str],
    filename: str,
    visited: set[int],
) -> None:
    """Record the line of every mapping key and list item below ``node``.

    A node reached again through an alias is not walked again: what is inside
    it was recorded at its anchor, and a problem deeper down points at the
    alias (the deepest recorded part of its path), so the walk costs one visit
    per node of the file, not one per value of the expanded document.
    """
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                duplicates.append(
                    f"{filename}:{line}: duplicate key '{key}' (first defined on line "
                    f"{seen[key]}) @ {child}"
                )
            seen.setdefault(key, line)
            lines[child] = line  # the last occurrence is the one that was loaded
            _walk(value_node, child, lines, duplicates, filename, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}.{i}" if path else str(i)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, duplicates, filename, visited)


def _line_of(problem: str) -> int:
    """The line a located problem is on (problems read in file order; unplaced ones last)."""
    match = _LINE.match(problem)
    return int(match.group(1)) if match else 1 << 31


_LINE = re.compile(r"^.*?:(\d+): ")


def _locate(problem: str, filename: str, lines: Mapping[str, int]) -> str:
    """``"message @ a.b.c"`` → ``"FILE:LINE: message @ a.b.c"`` (line of the deepest known part)."""
    _, sep, path = problem.rpartition(" @ ")
    if not sep:
        return f"{filename}: {problem}"
    parts = path.split(".")
    while parts:
        line = lines.get(".".join(parts))
        if line is not None:
            return f"{filename}:{line}: {problem}"
        parts.pop()
    line = lines.get("$")
    return f"{filename}:{line}: {problem}" if line is not None else f"{filename}: {problem}"
