"""The ``cache:`` field (loading, checks, round trip) and the fingerprint it leads to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from spindle import ValidationError, Workflow
from spindle.core.engine._caching import fingerprint
from spindle.core.workflow import CacheSpec, effective_cache, load_workflow_text


def load(text: str) -> Workflow:
    return load_workflow_text(text, filename="wf.yaml")


def problems(text: str) -> str:
    with pytest.raises(ValidationError) as info:
        load(text)
    return str(info.value)


BASE = """\
name: w
inputs: {data: in.txt, level: 1}
nodes:
  a:
    runtime: {kind: command, command: "cat {inputs.data}"}
    cache: {key: "v1", ttl: 7d, files: ["{inputs.data}"]}
"""


def test_a_node_cache_loads_and_round_trips() -> None:
    wf = load(BASE)
    spec = wf.nodes["a"].cache
    assert spec == CacheSpec(key="v1", ttl="7d", files=("{inputs.data}",))
    again = Workflow.from_dict(wf.to_dict())
    assert again.nodes["a"].cache == spec
    assert again.definition_id() == wf.definition_id()


def test_cache_true_false_and_the_workflow_default() -> None:
    wf = load(
        """\
name: w
cache: {ttl: 1d}
nodes:
  a: {runtime: {kind: command, command: "true"}}
  b: {runtime: {kind: command, command: "true"}, cache: false}
  c: {runtime: {kind: command, command: "true"}, cache: {key: k}}
  d: {effect: {kind: wait_event, key: e}}
"""
    )
    assert wf.cache == CacheSpec(ttl="1d")
    assert effective_cache(wf, wf.nodes["a"]) == CacheSpec(ttl="1d")
    assert effective_cache(wf, wf.nodes["b"]) is None
    assert effective_cache(wf, wf.nodes["c"]) == CacheSpec(key="k", ttl="1d")
    assert effective_cache(wf, wf.nodes["d"]) is None  # the default skips effects
    assert Workflow.from_dict(wf.to_dict()).cache == wf.cache


def test_caching_is_off_by_default() -> None:
    wf = load("name: w\nnodes:\n  a: {runtime: {kind: command, command: 'true'}}\n")
    assert wf.cache is None and effective_cache(wf, wf.nodes["a"]) is None
    assert "cache" not in wf.to_dict()


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("cache: 3", r"wf.yaml:6: cache must be true, false or a mapping"),
        ("cache: {tll: 7d}", r"unknown field 'tll' in cache; known fields: key, ttl, files"),
        ("cache: {ttl: 7 days}", r"cache ttl: '7 days'"),
        ("cache: {ttl: 7}", r"cache ttl must be a duration such as 7d"),
        ("cache: {key: 1}", r"cache key must be a string"),
        ("cache: {files: a.txt}", r"cache files must be a list of paths"),
        ("cache: {key: '{nope}'}", r"\{nope\} is neither a declared workflow input"),
        ("cache: {key: '{inputs.token}'}", r"\{inputs.token\} is a secret input"),
        ("cache: {files: ['{']}", r"unmatched '\{'"),
    ],
)
def test_a_bad_cache_field_is_reported_with_its_line(field: str, expected: str) -> None:
    text = f"""\
name: w
inputs: {{token: {{secret: true}}}}
nodes:
  a:
    runtime: {{kind: command, command: "true"}}
    {field}
"""
    message = problems(text)
    assert "@ nodes.a.cache" in message
    assert re.search(expected, message), message


def test_nodes_that_cannot_be_cached_are_refused() -> None:
    message = problems(
        """\
name: w
inputs: {token: {secret: true}}
nodes:
  wait: {effect: {kind: wait_event, key: e}, cache: true}
  dir:
    runtime: {kind: command, command: "mkdir -p {outputs.d.path}"}
    outputs: {d: {kind: folder, path: d}}
    cache: true
  secret:
    runtime: {kind: python_code, code: "result = 1"}
    inputs: {t: inputs.token}
    cache: true
  command:
    runtime: {kind: command, command: "login {secrets.token}"}
    cache: true
"""
    )
    assert "node 'command': its runtime uses a secret ({secrets.NAME})" in message
    assert "node 'wait': only a task node (one with a runtime) can be cached" in message
    assert "node 'dir': its folder output 'd' cannot be cached" in message
    assert "node 'secret': input 't' is the secret input 'inputs.token'" in message


def test_a_runtime_that_failed_to_load_is_reported_once_not_as_a_cache_problem() -> None:
    message = problems(
        """\
name: w
nodes:
  a:
    runtime: {kind: shell, command: "true"}
    cache: true
"""
    )
    assert "unknown runtime kind 'shell'" in message
    assert "cached" not in message, message


def test_a_bad_workflow_cache_is_reported() -> None:
    message = problems("name: w\ncache: yes\nnodes:\n  a: {runtime: {kind: command, command: x}}\n")
    assert "cache must be true, false or a mapping" in message and "@ cache" in message


# --- the fingerprint -------------------------------------------------------------------


def _fp(wf: Workflow, node: str = "a", inputs: dict[str, Any] | None = None, **wi: Any) -> str:
    n = wf.nodes[node]
    spec = effective_cache(wf, n)
    assert spec is not None
    return fingerprint(wf, n, spec, inputs or {}, wi)


def _wf(command: str = "cat x", cache: str = "true", **extra: str) -> Workflow:
    fields = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    return load(
        f"name: w\ninputs: {{data: in.txt}}\nnodes:\n  a:\n"
        f"    runtime: {{kind: command, command: {command!r}}}\n    cache: {cache}\n{fields}"
    )


def test_the_fingerprint_follows_the_runtime_config_key_and_inputs() -> None:
    base = _fp(_wf())
    assert _fp(_wf()) == base
    assert _fp(_wf(command="cat y")) != base
    assert _fp(_wf(cache="{key: v2}")) != _fp(_wf(cache="{key: v1}"))
    wf = _wf()
    assert _fp(wf, inputs={"x": 1}) != _fp(wf, inputs={"x": 2})


def test_the_fingerprint_ignores_what_does_not_change_the_result() -> None:
    base = _fp(_wf())
    assert _fp(_wf(description="'other words'", timeout="30")) == base
    assert _fp(_wf(retry="{max_attempts: 3}")) == base
    assert _fp(_wf(cache="{ttl: 1d}")) == base
    renamed = Workflow.from_dict({**_wf().to_dict(), "name": "other"})
    assert _fp(renamed) == base


def test_the_fingerprint_follows_the_content_of_listed_files(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    wf = Workflow.from_dict(
        {**_wf(cache="{files: ['{inputs.data}']}").to_dict(), "base_dir": str(tmp_path)}
    )
    missing = _fp(wf, data="in.txt")
    data.write_text("one")
    first = _fp(wf, data="in.txt")
    assert first != missing
    assert _fp(wf, data="in.txt") == first  # unchanged: the same
    data.touch()  # a new modification time, the same content
    assert _fp(wf, data="in.txt") == first
    data.write_text("two")
    assert _fp(wf, data="in.txt") != first


def test_the_json_schema_takes_what_the_loader_takes_and_refuses_the_rest() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from spindle.core.workflow import workflow_schema

    validator = jsonschema.Draft202012Validator(workflow_schema())
    good = load(BASE).to_dict()
    good["cache"] = {"ttl": "1d12h"}
    assert list(validator.iter_errors(good)) == []
    for bad in ({"ttl": "7 days"}, {"tll": "7d"}, 3, {"files": "a.txt"}):
        data = {**good, "nodes": {"a": {**good["nodes"]["a"], "cache": bad}}}
        assert list(validator.iter_errors(data)), bad
        assert list(validator.iter_errors({**good, "cache": bad})), bad


def test_a_python_script_node_is_fingerprinted_by_its_script_content(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    (tmp_path / "wf.yaml").write_text(
        "name: w\nnodes:\n  a:\n    runtime: {kind: python_script, path: job.py}\n    cache: true\n"
    )
    from spindle.core.workflow import load_workflow

    wf = load_workflow(tmp_path / "wf.yaml")
    first = _fp(wf)
    assert _fp(load_workflow(tmp_path / "wf.yaml")) == first
    script.write_text("print(2)\n")
    assert _fp(wf) != first
