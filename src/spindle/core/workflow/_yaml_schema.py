"""The YAML 1.2 core schema spindle reads workflow files with, for both parsers.

PyYAML resolves plain scalars by the YAML 1.1 rules: ``yes``/``no``/``on``/
``off`` are booleans, ``12:30`` is the sexagesimal integer 750,
``2024-01-01`` a date. A workflow file should mean what it looks like and
what its JSON twin means, so spindle replaces those resolvers with the YAML
1.2 core schema ones: only ``true``/``false`` are booleans, integers are
decimal, ``0x`` or ``0b`` (``010`` is a string), floats need a digit, and
no timestamps. The same table serves the pure-Python loader and the libyaml
one (:mod:`spindle.core.workflow._yaml_fast`), so both resolve alike.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["CORE_RESOLVERS", "HAS_LIBYAML", "CParser"]

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Schema(yaml.resolver.Resolver):
    """Collects the core-schema implicit resolvers (never instantiated)."""


_Schema.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Schema.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Schema.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0b[01_]+)$"),
    list("-+0123456789"),
)
_Schema.add_implicit_resolver(
    _FLOAT,
    re.compile(
        # A digit on at least one side of the point: "." and "-." are strings.
        r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)

#: first character of a plain scalar -> [(tag, pattern)], the YAML 1.2 core schema.
CORE_RESOLVERS: dict[Any, list[tuple[str, re.Pattern[str]]]] = _Schema.yaml_implicit_resolvers

#: PyYAML was built with libyaml, so its C parser can be used.
HAS_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))

CParser: Any = None
if HAS_LIBYAML:  # pragma: no branch - the C extension ships in PyYAML's wheels
    try:
        from yaml._yaml import CParser
    except ImportError:  # pragma: no cover - a PyYAML built without the extension
        HAS_LIBYAML = False
