"""The workflow model: from_dict validation, the Python API, round-trips and hashes."""

from __future__ import annotations

import enum
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle import (
    Registry,
    Runtime,
    ValidationError,
    Workflow,
)
from spindle.core.workflow import Reference, load_workflow_text

from .fakes import Ask, Cmd, Code, Echo, Inline

# --- test plugins ------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Tune(Runtime[str], kind="tune"):
    """Fields of the less common types."""

    color: Color = Color.RED
    level: str | int = 1

    async def _setup_runtime(self, task: Any) -> str:
        return self.color.value


REGISTRY = Registry.for_testing([Echo, Cmd, Code, Ask, Inline, Tune], builtins=False)


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(data, registry=REGISTRY)
    return info.value.problems


def echo(text: str = "hi", **node: Any) -> dict[str, Any]:
    return {"runtime": {"kind": "echo", "text": text}, **node}


# --- Python API and files agree ---------------------------------------------------

GREET = """
name: greet
inputs: {who: world}
nodes:
  hello:
    runtime: {kind: cmd, command: "echo hello {inputs.who}"}
    outputs: {out: {kind: file, path: hello.txt}}
  approve:
    effect: {kind: ask_user, prompt: "Publish?", choices: [yes, no]}
    inputs: {text: hello.out}
    retry: {max_attempts: 3, backoff: 0.5}
  publish:
    runtime: {kind: python_code, code: "result = 'published'"}
    executor: {kind: inline}
    after: [approve]
    timeout: 30
output: hello
"""


def greet_in_python(base_dir: Path | None = None, source: str | None = None) -> Workflow:
    wf = Workflow(
        "greet", inputs={"who": "world"}, base_dir=base_dir, source=source, registry=REGISTRY
    )
    wf.task(
        "hello",
        {"kind": "cmd", "command": "echo hello {inputs.who}"},
        outputs={"out": {"kind": "file", "path": "hello.txt"}},
    )
    wf.effect(
        "approve",
        {"kind": "ask_user", "prompt": "Publish?", "choices": ["yes", "no"]},
        inputs={"text": "hello.out"},
        retry={"max_attempts": 3, "backoff": 0.5},
    )
    wf.task(
        "publish",
        Code(code="result = 'published'"),
        executor=Inline(),
        after=["approve"],
        timeout=30.0,
    )
    wf.output = "hello"
    return wf


def test_python_api_and_yaml_file_build_the_same_definition():
    """A workflow built in Python and the same one loaded from YAML have equal to_dict()."""
    from_file = load_workflow_text(
        textwrap.dedent(GREET), registry=REGISTRY, base_dir="/wf", source="/wf/greet.yaml"
    )
    in_python = greet_in_python(Path("/wf"), "/wf/greet.yaml")
    assert in_python.to_dict() == from_file.to_dict()
    assert in_python.node_hashes() == from_file.node_hashes()
    assert in_python.definition_id() == from_file.definition_id()


def test_definition_id_ignores_where_the_definition_came_from():
    """definition_id() is the same whatever the source and base_dir."""
    a = greet_in_python(Path("/a"), "/a/greet.yaml")
    b = greet_in_python()
    assert a.definition_id() == b.definition_id()
    assert a.to_dict() != b.to_dict()


def test_to_dict_withholds_a_secret_default_and_the_id_does_not_depend_on_it():
    """A secret input's default is not in to_dict() (what a store keeps) nor in the id."""
    text = (
        "name: s\ninputs:\n  token: {secret: true, default: %s}\n  who: {default: Ada}\n"
        "nodes:\n  a: {runtime: {kind: python_code, code: 'result = 1'}}\n"
    )
    one = load_workflow_text(text % "s3cr3t", registry=REGISTRY)
    other = load_workflow_text(text % "another", registry=REGISTRY)
    assert one.inputs["token"].default == "s3cr3t"  # the loaded workflow keeps it in memory
    assert "s3cr3t" not in repr(one.to_dict())
    assert one.to_dict()["inputs"]["token"]["default"] is None
    assert one.to_dict()["inputs"]["who"]["default"] == "Ada"
    assert one.definition_id() == other.definition_id()


def test_task_with_a_bad_mapping_names_the_field_path():
    """wf.task() with a bad runtime mapping raises ValidationError naming the path."""
    wf = Workflow("w", registry=REGISTRY)
    with pytest.raises(ValidationError) as info:
        wf.task("hello", {"kind": "cmd", "command": 3})
    assert info.value.problems == ["expected a string, got int 3 @ nodes.hello.runtime.command"]


def test_task_with_a_bad_output_mapping_names_the_output():
    """wf.task() with a bad output mapping raises ValidationError naming the output."""
    wf = Workflow("w", registry=REGISTRY)
    with pytest.raises(ValidationError) as info:
        wf.task("hello", Echo(text="x"), outputs={"out": {"kind": "files"}})
    assert info.value.problems == [
        "expected one of 'file', 'folder', 'json', 'value', got 'files' "
        "@ nodes.hello.outputs.out.kind"
    ]


def test_adding_a_node_id_twice_is_refused():
    """A node id can be added only once."""
    wf = Workflow("w", registry=REGISTRY)
    wf.task("a", Echo(text="x"))
    with pytest.raises(ValidationError, match="workflow 'w' already has a node 'a'"):
        wf.task("a", Echo(text="y"))


# --- from_dict problems -----------------------------------------------------------


def test_non_mapping_definition_is_refused():
    """A definition that is not a mapping is refused at $."""
    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(["a"], registry=REGISTRY)  # type: ignore[arg-type]
    assert info.value.problems == ["expected a mapping, got list @ $"]


def test_missing_name_and_nodes_are_both_reported():
    """A definition without name and nodes reports both."""
    assert problems({}) == [
        "required field 'name' missing or not a string @ name",
        "required field 'nodes' missing or not a mapping of node id to node @ nodes",
        "workflow '<unnamed>' has no nodes @ nodes",
    ]


def test_node_that_is_not_a_mapping_is_reported_once():
    """A node written as a scalar is reported, and references to it are not."""
    assert problems({"name": "w", "nodes": {"a": "echo", "b": echo(inputs={"x": "a.out"})}}) == [
        "expected a mapping for node 'a', got str 'echo' @ nodes.a"
    ]


def test_output_naming_an_unknown_node_is_reported():
    """The workflow output must name a node."""
    assert problems({"name": "w", "nodes": {"a": echo()}, "output": "b"}) == [
        "workflow output refers to unknown node 'b' @ output"
    ]


def test_output_naming_an_undeclared_output_is_reported():
    """output NODE.OUTPUT must name an output the node declares."""
    data = {"name": "w", "nodes": {"a": echo(outputs={"x": {}})}, "output": "a.y"}
    assert problems(data) == [
        "workflow output refers to output 'y' which node 'a' does not declare (its outputs: x) "
        "@ output"
    ]


def test_output_and_max_steps_of_the_wrong_type_are_reported():
    """output must be a string and max_steps a positive integer."""
    assert problems({"name": "w", "nodes": {"a": echo()}, "output": 3, "max_steps": 0}) == [
        # (an output may also be a mapping of name to reference, since sub-workflow nodes)
        "expected a string naming a node (NODE or NODE.OUTPUT), or a mapping of name to "
        "such a reference, got int 3 @ output",
        "expected a positive integer, got int 0 @ max_steps",
    ]


@pytest.mark.parametrize("node_id", ["a.b", "inputs"])
def test_node_ids_that_references_cannot_name_are_refused(node_id):
    """Node ids with a dot, or named 'inputs', are refused."""
    (problem,) = problems({"name": "w", "nodes": {node_id: echo()}})
    assert problem.startswith(f"node id '{node_id}' is not allowed")


def test_node_referring_to_itself_is_reported():
    """A node using its own result is reported (and is a cycle)."""
    assert problems({"name": "w", "nodes": {"a": echo(inputs={"x": "a"})}}) == [
        "node 'a' refers to itself @ nodes.a.inputs.x",
        "dependency cycle: a -> a @ nodes.a",
    ]


def test_executor_without_runtime_is_reported():
    """An effect node cannot have an executor."""
    node = {"effect": {"kind": "ask_user", "prompt": "?"}, "executor": {"kind": "inline"}}
    assert problems({"name": "w", "nodes": {"a": node}}) == [
        "node 'a': 'executor' needs a 'runtime' @ nodes.a.executor"
    ]


def test_non_positive_timeout_and_file_output_without_path_are_reported():
    """timeout must be positive and a file output needs a path."""
    node = echo(timeout=0, outputs={"f": {"kind": "file"}})
    assert problems({"name": "w", "nodes": {"a": node}}) == [
        "node 'a': timeout must be positive @ nodes.a.timeout",
        "node 'a': output 'f' of kind 'file' needs a 'path' @ nodes.a.outputs.f.path",
    ]


def test_input_that_is_neither_reference_nor_literal_is_reported():
    """A node input must be a reference string or {value: ...}."""
    assert problems({"name": "w", "nodes": {"a": echo(inputs={"x": 3})}}) == [
        "input 'x' must be a reference string (inputs.NAME, NODE or NODE.OUTPUT) or "
        "{value: ...} for a literal, got 3 @ nodes.a.inputs.x"
    ]


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (echo(after="b"), "expected a list, got str 'b' @ nodes.a.after"),
        (echo(outputs=["x"]), "expected a mapping, got list ['x'] @ nodes.a.outputs"),
        (echo(retry=3), "expected a mapping of RetryPolicy fields, got int 3 @ nodes.a.retry"),
        (echo(timeout=True), "expected a number, got bool True @ nodes.a.timeout"),
        (
            echo(retry={"max_attempts": "3"}),
            "expected an integer, got str '3' @ nodes.a.retry.max_attempts",
        ),
        (
            echo(retry={"retry_on": ["A", 1]}),
            "expected a string, got int 1 @ nodes.a.retry.retry_on.1",
        ),
        (
            echo(executor={"kind": "inline", "workers": "2"}),
            "expected an integer, got str '2' @ nodes.a.executor.workers",
        ),
        (
            {"effect": {"kind": "ask_user", "prompt": "?", "choices": "yes"}},
            "expected a list, got str 'yes' @ nodes.a.effect.choices",
        ),
        ({"runtime": "echo"}, "expected a mapping with 'kind', got str 'echo' @ nodes.a.runtime"),
        (
            {"runtime": {"kind": "tune", "color": "green"}},
            "expected one of 'red', 'blue', got 'green' @ nodes.a.runtime.color",
        ),
        (
            {"runtime": {"kind": "tune", "level": 1.5}},
            "expected a string or an integer, got float 1.5 @ nodes.a.runtime.level",
        ),
    ],
)
def test_values_of_the_wrong_shape_are_refused_with_what_was_given(node, expected):
    """Strings for lists, lists for mappings and loose scalars are refused, never coerced."""
    assert problems({"name": "w", "nodes": {"a": node}}) == [expected]


def test_enum_and_union_fields_round_trip():
    """Enum and union plugin fields load from plain values and dump back to them."""
    data = {
        "name": "w",
        "nodes": {"a": {"runtime": {"kind": "tune", "color": "blue", "level": "hi"}}},
    }
    wf = Workflow.from_dict(data, registry=REGISTRY)
    runtime = wf.nodes["a"].runtime
    assert isinstance(runtime, Tune)
    assert (runtime.color, runtime.level) == (Color.BLUE, "hi")
    assert wf.to_dict()["nodes"]["a"]["runtime"] == data["nodes"]["a"]["runtime"]


def test_inputs_declared_with_options_are_structured():
    """A workflow input given as {default, required, secret} becomes an InputSpec."""
    wf = Workflow.from_dict(
        {
            "name": "w",
            "inputs": {"token": {"required": True, "secret": True}, "plain": {"a": 1}},
            "nodes": {"a": echo()},
        },
        registry=REGISTRY,
    )
    assert wf.inputs["token"].required and wf.inputs["token"].secret
    assert wf.inputs["plain"].default == {"a": 1}


# --- graph analysis ------------------------------------------------------------------


def test_order_puts_dependencies_first_and_keeps_definition_order_among_peers():
    """order() lists every node after its dependencies, peers in definition order."""
    wf = Workflow.from_dict(
        {
            "name": "w",
            "nodes": {
                "c": echo(inputs={"x": "b"}),
                "a": echo(),
                "b": echo(after=["a"]),
                "d": echo(),
            },
        },
        registry=REGISTRY,
    )
    order = wf.order()
    assert sorted(order) == ["a", "b", "c", "d"]
    assert order.index("a") < order.index("b") < order.index("c")
    assert order.index("a") < order.index("d")


def test_a_long_chain_is_checked_without_recursion():
    """Cycle detection handles a chain deeper than the recursion limit."""
    n = 3000
    nodes = {f"n{i}": echo(after=[f"n{i - 1}"] if i else []) for i in range(n)}
    wf = Workflow.from_dict({"name": "chain", "nodes": nodes}, registry=REGISTRY)
    assert wf.order()[-1] == f"n{n - 1}"
    nodes["n0"] = echo(after=[f"n{n - 1}"])
    (problem,) = problems({"name": "chain", "nodes": nodes})
    assert problem.startswith("dependency cycle: n0 -> n2999 -> n2998")
    assert problem.endswith("n1 -> n0 @ nodes.n0")


def test_reference_parses_node_output_and_workflow_inputs():
    """A reference splits into target and member at its first dot."""
    assert Reference.parse("hello.out", "text") == Reference("hello.out", "hello", "out", "text")
    assert Reference.parse("inputs.who", "w").is_workflow_input
    assert Reference.parse("hello", "h").member is None


# --- properties ---------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid workflow definition: a DAG of test-plugin nodes."""
    inputs = draw(st.dictionaries(st.sampled_from(["who", "n", "flag"]), _json, max_size=3))
    count = draw(st.integers(1, 7))
    nodes: dict[str, Any] = {}
    for i in range(count):
        earlier = list(nodes)
        kind = draw(st.sampled_from(["echo", "cmd", "ask"]))
        node: dict[str, Any]
        if kind == "echo":
            node = {"runtime": {"kind": "echo", "text": draw(st.text(max_size=8))}}
        elif kind == "cmd":
            node = {
                "runtime": {
                    "kind": "cmd",
                    "command": draw(st.text(min_size=1, max_size=8)),
                    "retries": draw(st.integers(0, 5)),
                }
            }
            if draw(st.booleans()):
                node["executor"] = {"kind": "inline", "workers": draw(st.integers(1, 4))}
        else:
            node = {
                "effect": {
                    "kind": "ask_user",
                    "prompt": draw(st.text(max_size=8)),
                    "choices": draw(st.none() | st.lists(st.text(max_size=3), max_size=3)),
                }
            }
        refs: dict[str, Any] = {}
        for p in draw(st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=3)):
            choices = [*earlier, *(f"{n}.out" for n in earlier if "outputs" in nodes[n])]
            choices += [f"inputs.{k}" for k in inputs]
            if choices and draw(st.booleans()):
                refs[p] = draw(st.sampled_from(choices))
            else:
                refs[p] = {"value": draw(_json)}
        if refs:
            node["inputs"] = refs
        if draw(st.booleans()):
            node["outputs"] = {"out": {"kind": "value", "key": draw(st.text(max_size=3))}}
        if earlier and draw(st.booleans()):
            node["after"] = draw(st.lists(st.sampled_from(earlier), unique=True, min_size=1))
        if draw(st.booleans()):
            node["retry"] = {
                "max_attempts": draw(st.integers(1, 5)),
                "backoff": draw(st.floats(0, 10)),
            }
        if draw(st.booleans()):
            node["timeout"] = draw(st.floats(0.1, 100))
        if draw(st.booleans()):
            node["continue_on_failure"] = True
        nodes[f"n{i}"] = node
    return {
        "name": draw(st.text(min_size=1, max_size=8)),
        "inputs": inputs,
        "nodes": nodes,
        "output": draw(st.sampled_from(list(nodes))),
    }


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_from_dict_of_to_dict_round_trips(data):
    """Workflow.from_dict(wf.to_dict()) gives back an equal definition."""
    wf = Workflow.from_dict(data, registry=REGISTRY)
    again = Workflow.from_dict(wf.to_dict(), registry=REGISTRY)
    assert again.to_dict() == wf.to_dict()
    assert again.node_hashes() == wf.node_hashes()
    assert again.order() == wf.order()


def _change(node: dict[str, Any]) -> dict[str, Any]:
    changed = {**node}
    if "runtime" in node and node["runtime"]["kind"] == "echo":
        changed["runtime"] = {**node["runtime"], "text": node["runtime"]["text"] + "!"}
    elif "runtime" in node:
        changed["runtime"] = {**node["runtime"], "retries": node["runtime"]["retries"] + 1}
    else:
        changed["effect"] = {**node["effect"], "prompt": node["effect"]["prompt"] + "?"}
    return changed


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions(), st.data())
def test_node_hash_changes_iff_that_nodes_definition_changes(data, draw):
    """Changing one node's definition changes its hash and no other node's."""
    before = Workflow.from_dict(data, registry=REGISTRY).node_hashes()
    assert Workflow.from_dict(data, registry=REGISTRY).node_hashes() == before
    target = draw.draw(st.sampled_from(list(data["nodes"])))
    field = draw.draw(st.sampled_from(["plugin", "description", "continue_on_failure"]))
    nodes = dict(data["nodes"])
    if field == "plugin":
        nodes[target] = _change(nodes[target])
    elif field == "description":
        nodes[target] = {**nodes[target], "description": "changed"}
    else:
        nodes[target] = {
            **nodes[target],
            "continue_on_failure": not nodes[target].get("continue_on_failure"),
        }
    after = Workflow.from_dict({**data, "nodes": nodes}, registry=REGISTRY).node_hashes()
    assert [n for n in before if before[n] != after[n]] == [target]


def test_validate_after_from_dict_checks_again_once_the_workflow_changed():
    """validate() reuses from_dict's clean structural check only until the workflow changes."""
    wf = Workflow.from_dict(
        {"name": "w", "nodes": {"a": {"runtime": {"kind": "python_code", "code": "pass"}}}}
    )
    assert wf.validate() is wf
    wf.output = "nobody"
    with pytest.raises(ValidationError, match="workflow output refers to unknown node 'nobody'"):
        wf.validate()


@pytest.mark.parametrize(
    "text",
    [
        "name: w\nnodes:\n  a: {runtime: {kind: python_code, code: pass}}\n",
        "name: w\ninputs:\n  cfg: {nodes: null, x: [1, 'é']}\n"
        "  token: {default: s3cret, secret: true}\n"
        "nodes:\n  zé: {runtime: {kind: python_code, code: pass}}\n"
        "  a: {runtime: {kind: command, command: 'echo {inputs.cfg}'}, after: [zé]}\n"
        "  '\"q\"': {effect: {kind: ask_user, prompt: ok?}, after: [a]}\n"
        "output: a\nmax_steps: 9\n",
    ],
)
def test_the_definition_id_is_the_hash_of_the_canonical_definition(text):
    """definition_id() is sha256 of canonical_json(to_dict() without source and base_dir)."""
    import hashlib

    from spindle.core.workflow import canonical_json

    wf = load_workflow_text(text)
    d = {k: v for k, v in wf.to_dict().items() if k not in ("source", "base_dir")}
    expected = hashlib.sha256(canonical_json(d).encode()).hexdigest()[:32]
    assert wf.definition_id() == expected
    hashes = {
        n: hashlib.sha256(canonical_json(v).encode()).hexdigest() for n, v in d["nodes"].items()
    }
    assert wf.node_hashes() == hashes


def test_the_definition_id_of_a_python_workflow_is_the_hash_of_its_canonical_definition():
    """A workflow built in Python (callables, retry, outputs) hashes as its canonical JSON does."""
    import hashlib

    from spindle.core.workflow import canonical_json

    wf = Workflow("py", inputs={"who": "world"})

    @wf.node(retry={"max_attempts": 2}, outputs={"o": {"kind": "value"}})
    def hello(who: str) -> str:
        return who

    wf.output = "hello"
    d = {k: v for k, v in wf.to_dict().items() if k not in ("source", "base_dir")}
    assert wf.definition_id() == hashlib.sha256(canonical_json(d).encode()).hexdigest()[:32]
