"""The ``cache:`` field of a node (and of a workflow): reuse a completed node's result.

Written ``cache: true``, ``cache: false`` or ``cache: {key, ttl, files}`` on a
node, or at the top of a workflow file for every task node. Caching is off
unless one of them turns it on. A cached node whose fingerprint -- its
runtime's configuration, its resolved inputs (the content of the files its
file inputs name), the content of the ``files`` it lists and its ``key`` --
matches a completed node of any run reuses that node's result and output
files instead of running (see ``docs/caching.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from attrs import define, field

from spindle.core._quote import quote
from spindle.core.model import converter, parse_duration
from spindle.core.model._templates import TemplateError, parse_template

__all__ = [
    "CACHE_SCHEMA",
    "CacheSpec",
    "as_cache_spec",
    "cache_problems",
    "effective_cache",
    "workflow_cache",
]

_FIELDS = ("key", "ttl", "files")

_DURATION = r"^\s*(\d+[wdhms])+\s*$"

#: The JSON Schema of a ``cache:`` value (a node's or a workflow's).
CACHE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "boolean"},
        {
            "type": "object",
            "properties": {
                "key": {
                    "type": "string",
                    "description": "Mixed into the fingerprint; `{inputs.NAME}` and `{NAME}` "
                    "(a node input) are filled in.",
                },
                "ttl": {
                    "type": "string",
                    "pattern": _DURATION,
                    "description": "How long a result is reused: `7d`, `12h`, `90m`, `1d12h`.",
                },
                "files": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Files whose content is part of the fingerprint, relative "
                    "to the workflow file's directory; templates like `key`.",
                },
            },
            "additionalProperties": False,
        },
    ]
}


def _ttl_check(_: Any, __: Any, value: str | None) -> None:
    if value is not None:
        parse_duration(value, what="cache ttl")


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value)


@define(frozen=True)
class CacheSpec:
    """Whether and how a node's result is reused (see the module docstring).

    Attributes:
        enabled: False (``cache: false``) turns caching off for a node even when the
            workflow's ``cache:`` turns it on.
        key: extra text mixed into the fingerprint (bump it to drop old results); a
            template: ``{inputs.NAME}`` and ``{NAME}`` (one of the node's inputs).
        ttl: how long a result may be reused, a duration (``7d``, ``12h``, ``1d12h``);
            None: as long as it is kept (``spindle cache clear`` removes it).
        files: files the node reads whose content is part of the fingerprint (paths
            relative to the workflow file's directory, or absolute; templates like
            ``key``): a changed file misses the cache, an unchanged one hits.
    """

    enabled: bool = True
    key: str | None = None
    ttl: str | None = field(default=None, validator=_ttl_check)
    files: tuple[str, ...] = field(default=(), converter=_as_tuple)

    @property
    def ttl_delta(self) -> timedelta | None:
        """``ttl`` as a :class:`~datetime.timedelta` (None: no expiry)."""
        return None if self.ttl is None else parse_duration(self.ttl, what="cache ttl")

    def to_dict(self) -> bool | dict[str, Any]:
        """The field as written in a workflow file (``true``/``false`` when that is all)."""
        data: dict[str, Any] = {}
        if self.key is not None:
            data["key"] = self.key
        if self.ttl is not None:
            data["ttl"] = self.ttl
        if self.files:
            data["files"] = list(self.files)
        return data or self.enabled

    def over(self, default: CacheSpec | None) -> CacheSpec:
        """This node's spec with what it leaves unset taken from the workflow's ``default``."""
        if default is None or not self.enabled:
            return self
        return CacheSpec(
            key=self.key if self.key is not None else default.key,
            ttl=self.ttl if self.ttl is not None else default.ttl,
            files=self.files or default.files,
        )


def as_cache_spec(value: Any) -> CacheSpec | None:
    """A ``cache:`` value as written (a boolean, a mapping, a :class:`CacheSpec`) as a spec.

    Raises:
        ValueError: what is wrong with the value and how to write it.
    """
    if value is None or isinstance(value, CacheSpec):
        return value
    if isinstance(value, bool):
        return CacheSpec(enabled=value)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"cache must be true, false or a mapping {{key, ttl, files}}, got "
            f"{type(value).__name__} {quote(value)}"
        )
    unknown = [str(k) for k in value if k not in _FIELDS]
    if unknown:
        raise ValueError(
            f"unknown field {', '.join(map(repr, unknown))} in cache; known fields: "
            f"{', '.join(_FIELDS)}"
        )
    key, ttl, files = value.get("key"), value.get("ttl"), value.get("files", [])
    if key is not None and not isinstance(key, str):
        raise ValueError(f"cache key must be a string, got {type(key).__name__} {quote(key)}")
    if isinstance(ttl, timedelta):
        from spindle.core.model import format_duration

        ttl = format_duration(ttl)
    if ttl is not None and not isinstance(ttl, str):
        raise ValueError(
            f"cache ttl must be a duration such as 7d, 12h or 90m, got "
            f"{type(ttl).__name__} {quote(ttl)}"
        )
    if not isinstance(files, list | tuple) or not all(isinstance(f, str) for f in files):
        raise ValueError(f"cache files must be a list of paths (strings), got {quote(files)}")
    return CacheSpec(key=key, ttl=ttl, files=tuple(files))


def workflow_cache(value: Any, problems: list[str]) -> CacheSpec | None:
    """A workflow's top-level ``cache:`` (the default of its task nodes); a bad value adds
    a ``problem @ cache`` line to ``problems`` and gives None."""
    try:
        return as_cache_spec(value)
    except ValueError as exc:
        problems.append(f"{exc} @ cache")
        return None


converter.register_structure_hook(CacheSpec, lambda value, _: as_cache_spec(value))
converter.register_unstructure_hook(CacheSpec, lambda spec: spec.to_dict())


def effective_cache(wf: Any, node: Any, default: CacheSpec | None = None) -> CacheSpec | None:
    """The cache spec in force for ``node`` (a NodeSpec) under its workflow's ``cache:``,
    or None when its result is not cached (off, or a node the workflow's default cannot
    cover: not a task, a folder output, a secret input).

    ``default`` is the engine's own (the ``cache`` middleware's): it stands for the
    workflow's ``cache:`` when the workflow has none.
    """
    spec: CacheSpec | None = node.cache
    own: CacheSpec | None = getattr(wf, "cache", None)
    default = own if own is not None else default
    if spec is None:
        if default is None or not default.enabled or _why_not(node, default):
            return None
        if any(_secret_input(wf, ref) for ref in node.inputs.values()):
            return None
        return default
    if not spec.enabled:
        return None
    return spec.over(default)


def _why_not(node: Any, spec: CacheSpec) -> str | None:
    """Why ``node`` cannot be cached, or None when it can."""
    if node.runtime is None:
        return "only a task node (one with a runtime) can be cached"
    if "{secrets." in str(converter.unstructure(node.runtime)):
        return (
            "its runtime uses a secret ({secrets.NAME}), whose value a fingerprint may not "
            "hold, so a cached result could not tell one secret from another; remove 'cache'"
        )
    folders = [n for n, o in node.outputs.items() if o.kind == "folder"]
    if folders:
        return (
            f"its folder output '{folders[0]}' cannot be cached (only file, json and "
            "value outputs are kept); remove 'cache' or write a file output instead"
        )
    return None


def _template_problems(wf: Any, nid: str, node: Any, spec: CacheSpec) -> list[str]:
    """Bad placeholders in a cache key or file: each names a workflow input or a node input."""
    out: list[str] = []
    texts = [("key", spec.key), *((f"files.{i}", f) for i, f in enumerate(spec.files))]
    for where, text in texts:
        if text is None:
            continue
        try:
            items = parse_template(text, f"cache {where} {text!r}")
        except TemplateError as exc:
            out.append(f"node '{nid}': {exc} @ nodes.{nid}.cache.{where}")
            continue
        for item in items:
            if isinstance(item, str):
                continue
            parts = item.parts
            known = (len(parts) == 2 and parts[0] == "inputs" and parts[1] in wf.inputs) or (
                len(parts) == 1 and parts[0] in node.inputs
            )
            if known and parts[0] == "inputs" and wf.inputs[parts[1]].secret:
                out.append(
                    f"node '{nid}': cache {where} {text!r}: {item.text} is a secret input, "
                    f"which a cache fingerprint may not hold @ nodes.{nid}.cache.{where}"
                )
            elif not known:
                out.append(
                    f"node '{nid}': cache {where} {text!r}: {item.text} is neither a declared "
                    f"workflow input ({{inputs.NAME}}) nor one of the node's inputs ({{NAME}}) "
                    f"@ nodes.{nid}.cache.{where}"
                )
    return out


def _secret_input(wf: Any, ref: Any) -> bool:
    if not isinstance(ref, str) or not ref.startswith("inputs."):
        return False
    spec = wf.inputs.get(ref.partition(".")[2])
    return spec is not None and bool(spec.secret)


def cache_problems(wf: Any, broken: Mapping[str, set[str]] | None = None) -> list[str]:
    """One ``problem @ path`` line for each node whose own ``cache:`` cannot be honoured,
    or whose cached fingerprint would hold a secret input.

    A node whose ``runtime`` or ``outputs`` failed to load (``broken``, as for
    ``structural_problems``) is skipped: that failure is its problem, not its cache.
    """
    out: list[str] = []
    for nid, node in wf.nodes.items():
        spec = node.cache
        if spec is None or not spec.enabled:
            continue
        if (broken or {}).get(nid, set()) & {"*", "runtime", "outputs"}:
            continue
        why = _why_not(node, spec)
        if why is not None:
            out.append(f"node '{nid}': {why} @ nodes.{nid}.cache")
            continue
        out.extend(_template_problems(wf, nid, node, spec))
        for name, ref in node.inputs.items():
            if _secret_input(wf, ref):
                out.append(
                    f"node '{nid}': input '{name}' is the secret input '{ref}', which a cache "
                    f"fingerprint may not hold; remove 'cache' from the node @ nodes.{nid}.cache"
                )
    return out
