"""Plugin configuration as a tagged union per group, on the project converter.

Structuring into a group base (``Runtime``) reads ``kind`` and structures
into the class the *active* registry (:func:`~spindle.core.plugin.using_registry`)
has under that name; structuring into a concrete kind refuses unknown
options. Unstructuring writes ``kind`` first, then the kind's options.

Importing this module registers the hooks; the kind bases import it, so a
plugin class never exists without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from cattrs.gen import make_dict_structure_fn

from spindle.core._quote import quote
from spindle.core.errors import KindMissing
from spindle.core.model import converter, structure
from spindle.core.plugin._active import active_registry, using_registry
from spindle.core.plugin._plugin import Plugin

if TYPE_CHECKING:
    from spindle.core.plugin._registry import Registry

__all__ = ["structure_plugin"]


_concrete_fns: dict[type, Any] = {}


def _structure_concrete(data: Any, cls: type[Plugin]) -> Any:
    if not isinstance(data, dict):
        raise TypeError(
            f"expected a mapping of {cls.plugin_group} '{cls.kind_name}' options, "
            f"got {type(data).__name__} {quote(data)}"
        )
    fn = _concrete_fns.get(cls)
    if fn is None:
        fn = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
        _concrete_fns[cls] = fn
    body = {k: v for k, v in data.items() if k != "kind"}
    return fn(body, cls)


def _structure_plugin_hook(data: Any, cls: type[Plugin]) -> Any:
    if not cls.is_group_base():
        return _structure_concrete(data, cls)
    if not isinstance(data, dict):
        raise TypeError(f"expected a mapping with 'kind', got {type(data).__name__} {quote(data)}")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise KindMissing(cls.plugin_group)
    concrete = active_registry().get(cls.plugin_group, kind)
    return _structure_concrete(data, concrete)


converter.register_structure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, Plugin), _structure_plugin_hook
)


def _unstructure_plugin(obj: Plugin) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": obj.kind_name}
    cls: Any = type(obj)
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if a.init and not a.name.startswith("_"):
                body[a.name] = converter.unstructure(getattr(obj, a.name))
    return body


converter.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, Plugin), _unstructure_plugin
)


def structure_plugin(group: str, data: Any, registry: Registry, *, path: str = "$") -> Plugin:
    """Structure a ``{"kind": ..., **options}`` mapping into the group's plugin class."""
    base = registry.base(group)
    with using_registry(registry):
        return structure(data, base, path=path, what=f"{group} configuration")
