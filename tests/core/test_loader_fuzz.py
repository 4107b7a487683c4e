"""Fuzzing the workflow loader: whatever the text or bytes, only spindle's own errors escape.

Random documents (workflow-shaped and not) written as YAML or JSON, YAML
assembled from risky fragments (anchors, aliases, merge keys, tags, NUL,
escapes, deep brackets), alias bombs of random shape, and random bytes in a
file: each must load or raise a :class:`~spindle.SpindleError`, within 1 s
and 100 MB (``tests/bounded.py``). Derandomized and database-free, so CI
sees the same examples every time.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle import load_workflow, load_workflow_text
from spindle.core.errors import SpindleError
from tests.bounded import check_bounds, tracing


def fuzz(examples: int) -> settings:
    """Deterministic settings: fixed examples, no example database, no deadline."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Text with the characters that have broken loaders: NUL, control characters,
# surrogates are left out (they cannot be written as UTF-8), YAML indicators.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from("\x00\t\n{}[]&*!|>'\"%@`#:-?,"),
    max_size=12,
)
_SCALARS = (
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False) | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=25,
)

# Kinds that exist and kinds that do not; "python" only with functions that are
# safe to import, because loading a python node imports its module.
_RUNTIME = st.one_of(
    st.fixed_dictionaries({"kind": st.just("command"), "command": _TEXT | _VALUES}),
    st.fixed_dictionaries({"kind": st.just("python_code"), "code": _TEXT | _VALUES}),
    st.fixed_dictionaries(
        {"kind": st.just("python"), "function": st.sampled_from(["json:dumps", "no_such_mod:f", 3])}
    ),
    st.fixed_dictionaries({"kind": st.sampled_from(["x-nope", "", None])}, optional={"a": _VALUES}),
    _VALUES,
)
_EFFECT = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("ask_user")}, optional={"prompt": _VALUES, "choices": _VALUES}
    ),
    st.fixed_dictionaries({"kind": st.just("wait_event")}, optional={"key": _VALUES}),
    st.fixed_dictionaries(
        {"kind": st.just("subworkflow"), "workflow": _TEXT.map(lambda t: t + ".yaml") | _VALUES}
    ),
    st.fixed_dictionaries({"kind": st.just("handoff"), "target": _TEXT | _VALUES}),
    _VALUES,
)
_NODE = st.fixed_dictionaries(
    {},
    optional={
        "runtime": _RUNTIME,
        "effect": _EFFECT,
        "inputs": _VALUES,
        "outputs": _VALUES,
        "after": _VALUES,
        "retry": _VALUES,
        "timeout": _VALUES,
    },
)
_WORKFLOW = st.fixed_dictionaries(
    {"name": _TEXT | _VALUES, "nodes": st.dictionaries(_TEXT, _NODE | _VALUES, max_size=4)},
    optional={"inputs": _VALUES, "output": _TEXT | _VALUES, "max_steps": _VALUES},
)


@pytest.fixture(autouse=True, scope="module")
def _traced() -> Iterator[None]:
    """Trace allocations through the module; each example is measured from a reset peak."""
    with tracing():
        yield


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Import the plugin kinds once, so the first example is not charged for it."""
    kinds = "runtime: {kind: command, command: echo}", "effect: {kind: ask_user, prompt: p}"
    for kind in (
        *kinds,
        "effect: {kind: subworkflow, workflow: c}",
        "runtime: {kind: python_code, code: x}",
    ):
        load_workflow_text(f"name: w\nnodes: {{a: {{{kind}}}}}")
    with contextlib.suppress(SpindleError):
        load_workflow_text("name: w\nnodes: {a: {runtime: {kind: python, function: 'json:dumps'}}}")


def _dump(data: Any, as_json: bool, flow: bool | None) -> str:
    if as_json:
        return json.dumps(data)
    return yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)


def _load(text: str, *, as_json: bool) -> None:
    def load() -> None:
        with contextlib.suppress(SpindleError):
            load_workflow_text(
                text, filename="fuzz.json" if as_json else "fuzz.yaml", json_only=as_json
            )

    check_bounds(load, text)


@fuzz(500)
@given(data=_WORKFLOW | _VALUES, as_json=st.booleans(), flow=st.sampled_from([None, True, False]))
def test_random_documents_load_or_raise_spindle_errors(data, as_json, flow):
    """A random document, workflow-shaped or not, as YAML or JSON, loads or is refused."""
    _load(_dump(data, as_json, flow), as_json=as_json)


_FRAGMENTS = st.sampled_from(
    [
        "name: x\n",
        "nodes:\n",
        "  a: ",
        "  b:\n    ",
        "runtime: {kind: command, command: echo}",
        "effect: {kind: subworkflow, workflow: missing.yaml}",
        "effect: {kind: ask_user, prompt: p, choices: [yes, no]}",
        "inputs: ",
        "output: ",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        "- ",
        "? ",
        "<<: ",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "[*a, *a, *a, *a, *a, *a, *a, *a]",
        "!!str ",
        "!!binary ",
        "!!python/object/apply:os.system ['true'] ",
        "!!set ",
        "!custom ",
        "%YAML 1.2\n",
        "---\n",
        "...\n",
        '"',
        "'",
        "\\0",
        "\\u0000",
        "\x00",
        "\x07",
        "\t",
        "\n",
        "  ",
        "#",
        "|\n  ",
        ">-\n  ",
        "1" * 5000,
        "0x" + "f" * 100,
        ".inf",
        "~",
        "12:30",
        "2024-01-01",
        "[" * 200,
        "]" * 200,
        "{a: " * 150,
        "\ufeff",
    ]
)
_YAMLISH = st.lists(_FRAGMENTS | _TEXT, max_size=40).map("".join)


@fuzz(500)
@given(text=_YAMLISH, as_json=st.booleans())
def test_yaml_from_risky_fragments_loads_or_raises_spindle_errors(text, as_json):
    """Text assembled from anchors, aliases, tags, NULs and brackets loads or is refused."""
    _load(text, as_json=as_json)


def _bomb(levels: int, width: int, leaf: str, place: str) -> str:
    anchors = [f"  a0: &a0 [{', '.join([leaf] * width)}]"]
    for i in range(1, levels):
        anchors.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    top = f"*a{levels - 1}"
    body = "\n".join(anchors)
    uses = {
        "inputs": f"name: b\ninputs:\n{body}\nnodes: {{n: {{runtime: {{kind: command}}}}}}\n",
        "output": f"name: b\nx:\n{body}\noutput: {top}\nnodes: {{}}\n",
        "nodes": f"name: b\nx:\n{body}\nnodes: {{n: {{runtime: {top}}}}}\n",
        "name": f"name: {top}\nx:\n{body}\n",
        "merge": f"name: b\nm: &m {{p: {top}}}\nx:\n{body}\nnodes: {{n: {{<<: *m}}}}\n",
    }
    return uses[place]


@fuzz(250)
@given(
    levels=st.integers(1, 14),
    width=st.integers(1, 14),
    leaf=st.sampled_from(['"x"', "1", "{k: v}", '"' + "y" * 300 + '"', "[]"]),
    place=st.sampled_from(["inputs", "output", "nodes", "name", "merge"]),
)
def test_alias_bombs_are_bounded(levels, width, leaf, place):
    """Nested aliases of any shape load or are refused, cheaply, wherever they are used."""
    _load(_bomb(levels, width, leaf, place), as_json=False)


@fuzz(250)
@given(
    depth=st.integers(1, 5000),
    opener=st.sampled_from([("[", "]"), ("{a: ", "}"), ('{"a": ', "}"), ("- ", "")]),
    as_json=st.booleans(),
)
def test_deep_nesting_is_bounded(depth, opener, as_json):
    """Lists and mappings nested to any depth load or are refused; no RecursionError."""
    open_, close = opener
    if open_ == "- ":  # block nesting: the text grows with depth squared, so fewer levels
        depth = depth % 400
        inner = "\n" + "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "x"
    else:
        inner = open_ * depth + "1" + close * depth
    _load(
        f'{{"name": "x", "nodes": {inner}}}' if as_json else f"name: x\nnodes: {inner}\n",
        as_json=as_json,
    )


_BYTES = st.one_of(
    st.binary(max_size=600),
    _YAMLISH.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.tuples(_YAMLISH, st.binary(max_size=8), _YAMLISH).map(
        lambda p: p[0].encode() + p[1] + p[2].encode()
    ),
)


@fuzz(500)
@given(content=_BYTES, suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_random_bytes_in_a_file_load_or_raise_spindle_errors(content, suffix):
    """Any bytes in a workflow file (invalid UTF-8, NUL, BOMs) load or are refused."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(content)

        def load() -> None:
            with contextlib.suppress(SpindleError):
                load_workflow(path)

        check_bounds(load, content)
