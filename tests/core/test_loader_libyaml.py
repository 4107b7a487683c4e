"""libyaml (and json) and the pure-Python loader read every text alike: data, lines, errors.

The loader reads YAML with libyaml's C parser when PyYAML has it
(``spindle.core.workflow._yaml_fast``) and falls back to the pure-Python
loader otherwise. These tests read random documents, risky fragments, alias
bombs and deep nesting both ways and require the same outcome: equal data,
equal line map and duplicate-key problems, or the same error with the same
problems. Derandomized and database-free, like the loader fuzz.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from spindle import load_workflow_text
from spindle.core.errors import SpindleError
from spindle.core.workflow import _json_fast, _loader, _yaml_fast
from tests.core.test_loader_fuzz import _VALUES, _WORKFLOW, _YAMLISH, _bomb, fuzz

pytestmark = pytest.mark.skipif(not _yaml_fast.HAS_LIBYAML, reason="PyYAML without libyaml")


def _outcome(text: str, *, libyaml: bool, json_only: bool = False) -> Any:
    """What ``_parse`` makes of ``text``: (data, lines, duplicates) or the error it raises.

    ``libyaml=False`` is the reading before libyaml and json were used: the
    pure-Python YAML loader, for JSON files too.
    """
    saved = _yaml_fast.USE_LIBYAML, _json_fast.USE_JSON
    _yaml_fast.USE_LIBYAML = _json_fast.USE_JSON = libyaml
    try:
        filename = "doc.json" if json_only else "doc.yaml"
        data, lines, duplicates = _loader._parse(text, filename, json_only=json_only)
        return ("data", repr(data), lines(), duplicates)
    except SpindleError as exc:
        return ("error", type(exc).__name__, str(exc), getattr(exc, "problems", None))
    finally:
        _yaml_fast.USE_LIBYAML, _json_fast.USE_JSON = saved


def _same(text: str, *, json_only: bool = False) -> None:
    c = _outcome(text, libyaml=True, json_only=json_only)
    python = _outcome(text, libyaml=False, json_only=json_only)
    assert c == python, text[:2000]


@fuzz(300)
@given(data=_WORKFLOW | _VALUES, as_json=st.booleans(), flow=st.sampled_from([None, True, False]))
def test_random_documents_read_alike(data, as_json, flow):
    """A random document, dumped as YAML (block or flow) or JSON, reads the same both ways."""
    text = (
        json.dumps(data)
        if as_json
        else yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    )
    _same(text, json_only=as_json)


@fuzz(600)
@given(text=_YAMLISH, as_json=st.booleans())
def test_risky_fragments_read_alike(text, as_json):
    """Anchors, aliases, merge keys, tags, NULs and brackets: the same data or the same error."""
    _same(text, json_only=as_json)


@fuzz(150)
@given(
    levels=st.integers(1, 14),
    width=st.integers(1, 14),
    leaf=st.sampled_from(['"x"', "1", "{k: v}", '"' + "y" * 300 + '"', "[]"]),
    place=st.sampled_from(["inputs", "output", "nodes", "name", "merge"]),
)
def test_alias_bombs_read_alike(levels, width, leaf, place):
    """Nested aliases are refused (or read) the same way, with the same message."""
    _same(_bomb(levels, width, leaf, place))


@pytest.mark.parametrize("depth", [97, 98, 99, 100, 101, 150, 5000])
@pytest.mark.parametrize("opener", [("[", "]"), ("{a: ", "}"), ("- ", "")])
def test_nesting_around_the_limit_reads_alike(depth, opener):
    """Flow and block nesting at, under and over the depth limit: the same outcome."""
    open_, close = opener
    if open_ == "- ":
        depth = min(depth, 300)
        inner = "\n" + "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "x"
    else:
        inner = open_ * depth + "1" + close * depth
    _same(f"name: x\nnodes: {inner}\n")


ANCHORS = [
    # an alias used where its anchor's depth counts
    "a: &a [[[1]]]\nb: " + "[" * 95 + "*a" + "]" * 95 + "\n",
    "a: &a [[[1]]]\nb: " + "[" * 96 + "*a" + "]" * 96 + "\n",
    "a: &a [[[]]]\nb: " + "[" * 96 + "*a" + "]" * 96 + "\n",
    "a: &a {k: [x]}\nb: " + "[" * 96 + "*a" + "]" * 96 + "\n",
    # nested anchors
    "a: &a [&b [1, [2]], *b]\nc: [*a, *b]\n",
    "a: &s text\nb: *s\n*s : again\n",
    # merge keys, with and without an override (reported as a duplicate today)
    "b: &b {kind: command, command: echo}\nn: {<<: *b, x: 1}\n",
    "b: &b {kind: command, command: echo}\nn: {<<: *b, command: ls}\n",
    "b: &b {x: 1}\nc: &c {y: 2}\nn: {<<: [*b, *c], z: 3}\n",
    "n: {<<: 3}\n",
    # keys that are not strings, or equal once built
    "1: a\n0x1: b\n",
    "1: a\n'1': b\n",
    "null: a\n~: b\n",
    "true: a\nTrue: b\n",
    ".nan: a\n.nan: b\n",
    "a: 1\na: 2\n",
    "a: {b: 1, b: 2}\n'a': 3\n",
    "? [1, 2]\n: x\n",
    "? {a: 1}\n: x\n",
    "=: 1\n",
    "a: =\n",
    "a: !!set {x, y}\n",
    "a: !!omap [{x: 1}]\n",
    "a: !!binary aGk=\n",
    "a: !!timestamp 2024-01-01\n",
    "a: !custom x\n",
    "a: !!str 12\nb: ! 12\nc: !!int '7'\n",
    "a: 12:30\nb: 2024-01-01\nc: yes\nd: 010\ne: 0x_\n",
    "a: &a 1\nb: &a 2\n",
    "a: *nowhere\n",
    "a: &a [1, *a]\n",
    "a: 1\n---\nb: 2\n",
    "--- a\n...\n",
    "",
    "# only a comment\n",
    "---\n",
    '"a\\0b": 1\n',
    'a: "\\x00"\n',
    "a: 1\r\nb:\r\n  - 2\r\n  - 3\r\n",
    "\ufeffa: 1\n",
    "a: 1\n\ufeffb: 2\n",
    "a: \u2028b\n",
    "a:\t1\n",
    "a: [1,\t2]\n",
    "a: 1" + "1" * 5000 + "\n",
    "a: " + "x" * 100 + "\n",
    "[1, 2]\n",
    "just a string\n",
    "a: b: c\n",
    'a: "unclosed\n',
    "a: [1, 2\n",
]


@pytest.mark.parametrize("text", ANCHORS)
def test_hand_picked_documents_read_alike(text):
    """Anchors, merges, odd keys, tags, errors, line ends and marks: the same outcome."""
    _same(text)
    _same(text, json_only=True)


def test_a_workflow_error_is_placed_on_the_same_line_both_ways():
    """A problem found after parsing is placed from the line map, which libyaml composes too."""
    text = "name: x\nnodes:\n  a:\n    runtime: {kind: command, command: 3}\n"
    errors = []
    for libyaml in (True, False):
        _yaml_fast.USE_LIBYAML = libyaml
        try:
            with pytest.raises(SpindleError) as caught:
                load_workflow_text(text)
            errors.append(caught.value.problems)
        finally:
            _yaml_fast.USE_LIBYAML = _yaml_fast.HAS_LIBYAML
    assert errors[0] == errors[1]
    assert errors[0][0].startswith("<string>:4: ")


def test_a_plain_workflow_is_built_from_libyaml_events():
    """An ordinary file is read by libyaml and built from its events, nodes composed lazily."""
    parsed = _yaml_fast.parse_fast("name: x\nnodes:\n  a: {runtime: {kind: command}}\n")
    assert parsed is not None
    assert parsed.node is None
    assert parsed.data == {"name": "x", "nodes": {"a": {"runtime": {"kind": "command"}}}}


def test_a_merge_key_is_built_by_the_constructor_from_libyaml_nodes():
    """Merge keys are composed by libyaml and built by PyYAML's constructor, not the events."""
    parsed = _yaml_fast.parse_fast("b: &b {x: 1}\nn: {<<: *b, y: 2}\n")
    assert parsed is not None
    assert parsed.node is not None
    assert parsed.data == {"b": {"x": 1}, "n": {"x": 1, "y": 2}}


@pytest.mark.parametrize(
    "text",
    ["a: [1, *a]\n", "a: 1\na: 2\n", "a: \x07\n", "a: [1,\t2]\n", "n: " + "[" * 101 + "]" * 101],
)
def test_what_libyaml_would_refuse_or_read_otherwise_goes_to_the_python_loader(text):
    """Errors, duplicate keys' wording, tabs and control characters: the fallback decides."""
    parsed = _yaml_fast.parse_fast(text)
    assert parsed is None or parsed.node is not None


def test_without_libyaml_the_python_loader_reads_everything(monkeypatch):
    """With the flag off (PyYAML built without libyaml) nothing is read by the C parser."""
    monkeypatch.setattr(_yaml_fast, "USE_LIBYAML", False)
    assert _yaml_fast.parse_fast("name: x\n") is None
    text = "name: x\nnodes:\n  a: {runtime: {kind: command, command: echo}}\n"
    assert load_workflow_text(text).name == "x"


JSON = [
    '{"name": "x", "nodes": {"a": {"runtime": {"kind": "command", "command": "echo"}}}}',
    '{"a": 1, "a": 2}',
    '{"a": {"b": 1, "b": 2}}',
    '{"a": NaN, "b": Infinity, "c": -Infinity}',
    '{"a": "\\ud83d\\ude00"}',
    '{"a": "\\u00e9\\n\\t\\/\\b"}',
    '{"a": "x\u2028y", "b": "\x85"}',
    '{\n\t"a": 1\n}',
    '{"' + "k" * 1100 + '": 1}',
    "\ufeff{}",
    '{"a": "\\u0000"}',
    '{"a": 1' + "1" * 5000 + "}",
    '{"a": 1e400, "b": -0, "c": 1.5E+3, "d": 0.0}',
    "[" * 99 + "]" * 99,
    "[" * 100 + "]" * 100,
    '{"a": ' * 99 + "1" + "}" * 99,
    '{"a": ' * 100 + "1" + "}" * 100,
    "[" * 3000 + "]" * 3000,
    "[" + ", ".join(["1"] * 49_999) + "]",
    "[" + ", ".join(["1"] * 50_000) + "]",
    '{"a": 1,}',
    '{"a": 1} # comment',
    "",
    "null",
    '"text"',
    '{"a": [1, 2], "<<": {"b": 3}, "=": 4}',
]


@pytest.mark.parametrize("text", JSON)
def test_json_texts_read_as_they_were_read_as_yaml(text):
    """json reads a JSON file only where it gives what reading it as YAML gave."""
    _same(text, json_only=True)


def test_a_plain_json_file_is_read_with_json():
    """A JSON workflow is read by json.loads; YAML composes its lines only for a problem."""
    assert _json_fast.parse_json_fast('{"name": "x", "nodes": {}}') == (
        True,
        {"name": "x", "nodes": {}},
    )
    assert _json_fast.parse_json_fast('{"a": 1, "a": 2}') == (False, None)


def test_the_ascii_character_check_refuses_what_the_full_one_refuses():
    """For ASCII text the short character class finds exactly what the full one finds."""
    for code in range(128):
        char = chr(code)
        full = _yaml_fast._different_rx().search(f"a{char}") is not None
        assert (_yaml_fast._DIFFERENT_ASCII.search(f"a{char}") is not None) == full, code
