"""Reading YAML with libyaml's C parser, with the same result as the pure-Python loader.

The pure-Python loader (:class:`~spindle.core.workflow._limits.BoundedLoader`)
costs about 0.3 ms per node of a workflow file, nearly all of it in PyYAML's
scanner and parser. Here libyaml parses, and Python builds the data straight
from its events in one pass that also applies the limits as
``BoundedLoader`` counts them: depth, values and characters with every
alias counted as what it stands for (each anchor measured once, so a
"billion laughs" costs one pass over the file), an alias inside what it
names, a NUL character from an escape.

It never reports an error itself. Whatever it would refuse — a syntax error,
a limit, a tag no constructor knows, an integer too long to convert — makes
:func:`parse_fast` return ``None``, and the caller reads the text again with
the pure-Python loader, which reports it with its usual message and line:
messages stay what they were, and refusing costs at most what it always did.
Texts where libyaml and PyYAML are known to read characters differently (a
tab, which libyaml takes as white space where PyYAML refuses it; a
byte-order mark after the start; NEL and the Unicode line separators;
characters PyYAML's reader refuses) go to the pure-Python loader at once.

A document the events cannot build exactly as PyYAML's constructor would —
merge keys ``<<``, a ``=`` key, a ``!!set`` or other tagged collection, a
key that is not a plain string, a key given twice (its problem is worded
from the nodes) — is composed by libyaml into nodes and built by the
constructor itself, once the event pass has checked its limits (composing
recurses in C, so the depth must be bounded first). The line of each key
and list item, used only to place a problem, comes from nodes libyaml
composes when a problem is to be placed (:func:`compose`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from spindle.core.workflow._limits import MAX_DEPTH, MAX_TEXT, MAX_VALUES
from spindle.core.workflow._yaml_schema import CORE_RESOLVERS, HAS_LIBYAML, CParser

__all__ = ["USE_LIBYAML", "Parsed", "parse_fast"]

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
# Scalars SafeConstructor builds at once (the others build in steps, or fail).
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "binary", "timestamp")
)

# Characters libyaml reads otherwise than PyYAML: a tab (libyaml takes one as
# white space where PyYAML refuses it, as in JSON indented with tabs), a BOM
# past the start (libyaml skips one at the start of any line), the Unicode
# line and paragraph separators and NEL (line counting), and whatever
# PyYAML's reader refuses.
_DIFFERENT = yaml.reader.Reader.NON_PRINTABLE.pattern + "|[\t\ufeff\x85\u2028\u2029]"


#: Read YAML with libyaml when PyYAML has it; tests set it False to force the fallback.
USE_LIBYAML: bool = HAS_LIBYAML


class Parsed(NamedTuple):
    """A document libyaml read: its data, and its composed nodes when they were needed.

    ``node`` is None when the data was built from the events; the nodes are
    then composed only if line numbers are wanted (:func:`compose`).
    """

    data: Any
    node: yaml.Node | None


class _Refuse(Exception):
    """The pure-Python loader must read this text (it reports the error)."""


if HAS_LIBYAML:
    import functools
    import re

    @functools.cache
    def _different_rx() -> re.Pattern[str]:
        # compiled on first need (non-ASCII text): the full class takes ~4 ms to build
        return re.compile(_DIFFERENT)

    # the same for ASCII text (most files): the control characters, DEL and tab;
    # a class of few ranges is searched several times faster than the full one
    _DIFFERENT_ASCII = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")

    class _CLoader(CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
        """libyaml's parser and composer with spindle's core schema and PyYAML's constructor."""

        yaml_implicit_resolvers = CORE_RESOLVERS

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


_ERRORS = (_Refuse, yaml.YAMLError, ValueError, TypeError, OverflowError)


def parse_fast(text: str) -> Parsed | None:
    """Parse ``text`` with libyaml; ``None``: read it with the pure-Python loader instead.

    ``None`` means libyaml is missing or not to be used, the text holds
    characters the two parsers read differently, or the document is refused
    (any error at all: the pure-Python loader reports it exactly as before).
    """
    # a byte-order mark at the very start both parsers skip alike
    if not USE_LIBYAML:
        return None
    if text.isascii():
        if _DIFFERENT_ASCII.search(text):
            return None
    elif _different_rx().search(text, 1 if text[:1] == "\ufeff" else 0):
        return None
    loader = _CLoader(text)
    try:
        data, exact = _build(loader, text)
    except _ERRORS:
        return None
    finally:
        loader.dispose()
    if exact:
        return Parsed(data, None)
    # The events cannot build this document exactly: let libyaml compose the
    # nodes (the limits are checked) and PyYAML's constructor build them.
    loader = _CLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _ERRORS:
        return None
    finally:
        loader.dispose()
    return Parsed(data, node)


def compose(text: str) -> yaml.Node | None:
    """libyaml's composed document of a text :func:`parse_fast` read (for its line numbers)."""
    loader = _CLoader(text)
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    except yaml.YAMLError:  # not expected (the events were read): place problems without lines
        return None
    finally:
        loader.dispose()


_MISSING: Any = object()  # a mapping waiting for its next key


def _build(loader: Any, text: str) -> tuple[Any, bool]:
    """Build the document from libyaml's events, checking the limits as it goes.

    Returns the data and whether it is exact: False when the document is
    within the limits but PyYAML's constructor must build it (see the module
    docstring), or when a mapping may hold a duplicate key (its problem is
    worded from the composed nodes). Raises :class:`_Refuse` (or a YAML
    error) when the pure-Python loader must report something.

    Sizes are counted as ``BoundedLoader`` counts them, with every alias
    counted as what its anchor stands for: an anchored list or mapping's size
    is what the running totals grew by while it was open. Only whether the
    limits are kept matters here (the pure-Python loader words the refusal),
    and the document's totals are the largest of any of its nodes.
    """
    get = loader.get_event
    resolve = loader.resolve
    construct = loader.construct_object
    get()  # StreamStartEvent
    event = get()
    if type(event) is StreamEndEvent:
        return None, True
    may_hold_nul = "\\" in text  # a NUL can only come from an escape ("\0", "\x00")
    tags: dict[str, str] = {}  # plain scalar text -> resolved tag
    # anchor -> (value, values, characters, depth, is_string); None while its
    # list or mapping is open: an alias to it would be inside what it names
    anchors: dict[str, Any] = {}
    exact = True
    values = chars = 0  # running totals, aliases expanded
    level = deepest = 0  # open lists and mappings; the most open at once
    # the innermost open list or mapping, and what is saved of the ones around it
    current: Any = None
    is_map = False
    key: Any = _MISSING
    pairs = 0
    stack: list[tuple[Any, ...]] = []
    root: Any = None
    event = get()  # the node after DocumentStartEvent
    while True:
        kind = type(event)
        if kind is ScalarEvent:
            scalar = event.value
            tag = event.tag
            if tag is None or tag == "!":
                if event.implicit[0]:
                    tag = tags.get(scalar)
                    if tag is None:
                        tag = tags[scalar] = resolve(ScalarNode, scalar, (True, False))
                else:
                    tag = _STR
            if tag == _STR:
                value: Any = scalar
            else:
                if is_map and key is _MISSING:
                    exact = False  # a key that is not a string: the walk compares texts
                if tag == _NULL:
                    value = None
                elif tag in _SCALAR_TAGS:
                    node = ScalarNode(tag, scalar, event.start_mark, event.end_mark, event.style)
                    value = construct(node)
                else:  # a collection's tag on a scalar, an unknown one: the constructor's error
                    exact = False
                    value = None
            if may_hold_nul and "\0" in scalar:
                raise _Refuse
            values += 1
            chars += len(scalar)
            if values > MAX_VALUES:  # refuse a long flat list early, not after reading it all
                raise _Refuse
            if level >= deepest:  # a scalar is one level below the lists around it
                if level >= MAX_DEPTH:
                    raise _Refuse
                deepest = level + 1
            if event.anchor is not None:
                if event.anchor in anchors:
                    raise _Refuse  # a duplicate anchor
                anchors[event.anchor] = (value, 1, len(scalar), 1, tag == _STR)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            level += 1
            if level > MAX_DEPTH:
                raise _Refuse
            tag = event.tag
            is_new_map = kind is MappingStartEvent
            if tag is not None and tag != "!" and tag != (_MAP if is_new_map else _SEQ):
                exact = False  # !!set, !!omap, a custom tag: the constructor decides
            if is_map and key is _MISSING:
                exact = False  # a list or mapping as a key
            anchor = event.anchor
            if anchor is not None:
                if anchor in anchors:
                    raise _Refuse
                anchors[anchor] = None
                saved: tuple[Any, ...] = (
                    current,
                    is_map,
                    key,
                    pairs,
                    anchor,
                    values,
                    chars,
                    deepest,
                )
                deepest = level
            else:
                saved = (current, is_map, key, pairs, None)
            stack.append(saved)
            current = {} if is_new_map else []
            is_map = is_new_map
            key = _MISSING
            pairs = 0
            values += 1
            if level > deepest:
                deepest = level
            event = get()
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            if is_map and len(current) != pairs:
                exact = False  # a key given twice: the walk words it
            value = current
            saved = stack.pop()
            current, is_map, key, pairs, anchor = saved[:5]
            if anchor is not None:
                start_level = level
                anchors[anchor] = (
                    value,
                    values - saved[5],
                    chars - saved[6],
                    deepest - start_level + 1,
                    False,
                )
                deepest = max(deepest, saved[7])
            level -= 1
        elif kind is AliasEvent:
            found = anchors.get(event.anchor, _MISSING)
            if found is _MISSING or found is None:
                raise _Refuse  # undefined, or inside the list or mapping it names
            value, size, length, depth, is_string = found
            if is_map and key is _MISSING and not is_string:
                exact = False
            values += size
            chars += length
            if values > MAX_VALUES or chars > MAX_TEXT or level + depth > MAX_DEPTH:
                raise _Refuse
            if level + depth > deepest:
                deepest = level + depth
        else:  # DocumentEndEvent: the document is complete
            break
        event = get()
        # a complete value (scalar, alias, closed list or mapping): into its parent
        if is_map:
            if key is _MISSING:
                key = value
            else:
                current[key] = value
                pairs += 1
                key = _MISSING
        elif current is not None:
            current.append(value)
        else:
            root = value
    if values > MAX_VALUES or chars > MAX_TEXT:
        raise _Refuse
    if type(get()) is not StreamEndEvent:
        raise _Refuse  # a second document: the composer's error
    return root, exact
