"""The JSON Schema of workflow files, built from the registered kinds."""

from __future__ import annotations

import enum
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
import yaml

from spindle import Registry, Runtime, Workflow
from spindle.core.errors import PluginLoadError
from spindle.core.workflow import SCHEMA_DIALECT, group_schema, load_workflow_text, workflow_schema
from spindle.core.workflow._loader import _Loader

from .fakes import Ask, Inline

jsonschema = pytest.importorskip("jsonschema")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Limits:
    """Resource limits.

    Attributes:
        cpus: how many CPUs.
    """

    cpus: int = 1


@attrs.define
class Cmd(Runtime[str], kind="cmd"):
    """Run a command line.

    Attributes:
        command: the line to run; it may
            continue on the next line.
        retries: how often to try again.
    """

    command: str
    retries: int = 0
    env: dict[str, str] = attrs.field(factory=dict)
    shell: str = attrs.field(default="/bin/sh", metadata={"description": "the shell (metadata)"})

    async def _setup_runtime(self, task: Any) -> str:
        return self.command


@attrs.define
class Typed(Runtime[Any], kind="typed", description="Every type the schema maps."):
    text: str
    count: int
    ratio: float
    flag: bool
    names: list[str]
    table: dict[str, int]
    maybe: str | None
    either: str | int
    mode: Literal["fast", "slow"]
    anything: Any
    limits: Limits
    pair: tuple[str, int]
    tags: set[str]
    color: Color
    when: datetime
    where: Path
    _private: int = 0

    async def _setup_runtime(self, task: Any) -> Any:
        return None


class BrokenRegistry(Registry):
    """A registry where one listed kind fails to load."""

    def names(self, group: str) -> list[str]:
        extra = ["broken"] if group == "runtime" else []
        return sorted([*super().names(group), *extra])

    def get(self, group: str, kind: str) -> Any:
        if kind == "broken":
            raise PluginLoadError(
                f"{group} 'broken' cannot be loaded: boom", group=group, kind=kind
            )
        return super().get(group, kind)


@pytest.fixture
def registry() -> Registry:
    return Registry.for_testing([Cmd, Typed, Ask, Inline], builtins=False)


@pytest.fixture
def schema(registry: Registry) -> dict[str, Any]:
    return workflow_schema(registry)


def validation_errors(schema: dict[str, Any], text: str) -> list[str]:
    data = yaml.load(textwrap.dedent(text), Loader=_Loader)  # a SafeLoader subclass
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(e.message for e in validator.iter_errors(data))


def test_schema_is_a_valid_draft_2020_12_schema(schema):
    """The workflow schema passes the draft 2020-12 meta-schema."""
    assert schema["$schema"] == SCHEMA_DIALECT
    jsonschema.Draft202012Validator.check_schema(schema)


def test_each_group_is_a_one_of_of_its_kinds(schema):
    """runtime, executor and effect are each a oneOf of their registered kinds."""
    defs = schema["$defs"]
    assert defs["runtime"]["oneOf"] == [
        {"$ref": "#/$defs/runtime.cmd"},
        {"$ref": "#/$defs/runtime.typed"},
    ]
    assert defs["executor"]["oneOf"] == [{"$ref": "#/$defs/executor.inline"}]
    assert defs["effect"]["oneOf"] == [{"$ref": "#/$defs/effect.ask_user"}]
    assert defs["effect"]["description"] == "An effect: `kind` picks one of `ask_user`."


def test_a_kind_is_a_closed_object_with_its_kind_const(schema):
    """A kind's schema pins kind, requires fields without defaults and allows nothing else."""
    cmd = schema["$defs"]["runtime.cmd"]
    assert cmd["title"] == "cmd"
    assert cmd["description"] == "Run a command line."
    assert cmd["properties"]["kind"] == {"const": "cmd"}
    assert cmd["required"] == ["kind", "command"]
    assert cmd["additionalProperties"] is False
    assert list(cmd["properties"]) == ["kind", "command", "retries", "env", "shell"]


def test_field_descriptions_come_from_docstrings_and_metadata(schema):
    """Descriptions come from the Attributes section or field metadata; defaults are shown."""
    props = schema["$defs"]["runtime.cmd"]["properties"]
    assert props["command"] == {
        "type": "string",
        "description": "the line to run; it may continue on the next line.",
    }
    assert props["retries"] == {
        "type": "integer",
        "description": "how often to try again.",
        "default": 0,
    }
    assert props["env"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": {},
    }
    assert props["shell"]["description"] == "the shell (metadata)"


def test_python_types_map_to_json_schema_types(schema):
    """Each field type maps to the JSON Schema that accepts what the loader accepts."""
    typed = schema["$defs"]["runtime.typed"]
    props = typed["properties"]
    assert typed["description"] == "Every type the schema maps."
    assert props["text"] == {"type": "string"}
    assert props["count"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number"}
    assert props["flag"] == {"type": "boolean"}
    assert props["names"] == {"type": "array", "items": {"type": "string"}}
    assert props["table"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["maybe"] == {"type": ["string", "null"]}
    assert props["either"] == {"type": ["string", "integer"]}
    assert props["mode"] == {"enum": ["fast", "slow"]}
    assert props["anything"] == {}
    assert props["limits"] == {"$ref": "#/$defs/Limits"}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
    }
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert props["color"] == {"enum": ["red", "blue"]}
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["where"] == {"type": "string"}
    assert "_private" not in props and "private" not in props
    assert schema["$defs"]["Limits"]["properties"]["cpus"] == {
        "type": "integer",
        "description": "how many CPUs.",
        "default": 1,
    }


def test_node_retry_and_output_schemas_are_included(schema):
    """The node, retry, output and input objects are described too."""
    defs = schema["$defs"]
    node = defs["node"]
    assert node["properties"]["runtime"]["$ref"] == "#/$defs/runtime"
    assert node["properties"]["outputs"]["additionalProperties"] == {"$ref": "#/$defs/output"}
    # A node is a task, an effect, or (since control flow) a sub-workflow, branch, map or loop.
    assert node["oneOf"] == [
        {"required": [k]} for k in ("runtime", "effect", "workflow", "branch", "map", "loop")
    ]
    assert defs["retry"]["properties"]["max_attempts"]["minimum"] == 1
    assert defs["output"]["properties"]["kind"]["enum"] == ["file", "folder", "json", "value"]
    assert set(defs["input"]["properties"]) == {"default", "required", "secret", "description"}
    assert schema["required"] == ["name", "nodes"]


def test_a_kind_that_fails_to_load_is_left_out_with_a_comment():
    """A broken kind is left out of the union with a $comment saying why."""
    reg = BrokenRegistry(entry_points=False)
    for plugin in (Cmd, Ask, Inline):
        reg.register(plugin)
    schema = workflow_schema(reg)
    runtime = schema["$defs"]["runtime"]
    assert runtime["oneOf"] == [{"$ref": "#/$defs/runtime.cmd"}]
    assert (
        runtime["$comment"] == "runtime 'broken' left out: runtime 'broken' cannot be loaded: boom"
    )
    assert "runtime.broken" not in schema["$defs"]


def test_a_group_without_kinds_matches_nothing():
    """A group with no kinds installed is a union that no value satisfies."""
    schema = workflow_schema(Registry.for_testing([Cmd], builtins=False))
    assert schema["$defs"]["effect"]["oneOf"] == [{"not": {}}]
    jsonschema.Draft202012Validator.check_schema(schema)


def test_group_schema_holds_one_union_and_only_its_kinds(registry):
    """group_schema() is a self-contained schema of one group's kinds."""
    schema = group_schema(registry, "effect")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["oneOf"] == [{"$ref": "#/$defs/effect.ask_user"}]
    assert list(schema["$defs"]) == ["effect.ask_user"]
    runtime = group_schema(registry, "runtime")
    assert list(runtime["$defs"]) == ["Limits", "runtime.cmd", "runtime.typed"]


def test_group_schema_refuses_a_group_files_do_not_configure(registry):
    """Only runtime, executor and effect have a schema."""
    with pytest.raises(ValueError, match="unknown group 'store'"):
        group_schema(registry, "store")


VALID = """
name: greet
inputs: {who: world}
nodes:
  hello:
    runtime: {kind: cmd, command: "echo hello"}
    executor: {kind: inline}
    outputs: {out: {kind: file, path: hello.txt}}
    retry: {max_attempts: 3, backoff: 0.5}
    timeout: 10
  approve:
    effect: {kind: ask_user, prompt: "Publish?", choices: [yes, no]}
    inputs: {text: hello.out, n: {value: 3}}
    after: [hello]
output: hello
"""


def test_a_valid_file_validates(schema):
    """A valid workflow file passes the schema."""
    assert validation_errors(schema, VALID) == []


def test_what_the_loader_refuses_the_schema_refuses_too(schema):
    """Unknown fields, wrong types, unknown kinds and runtime+effect fail the schema."""
    bad = """
    name: bad
    nodes:
      a:
        runtime: {kind: cmd, command: 3}
      b:
        runtime: {kind: nope}
      c:
        runtime: {kind: cmd, command: x}
        effect: {kind: ask_user, prompt: "?"}
      d:
        runtime: {kind: cmd, command: x}
        retires: 2
      e:
        runtime: {kind: cmd, command: x}
        retry: {max_attempts: 0}
    """
    errors = validation_errors(schema, bad)
    assert len(errors) == 5
    assert "Additional properties are not allowed ('retires' was unexpected)" in errors
    assert "0 is less than the minimum of 1" in errors


def test_to_dict_output_validates(registry, schema):
    """What Workflow.to_dict() writes is a valid workflow file."""
    wf = load_workflow_text(textwrap.dedent(VALID), registry=registry, base_dir="/x")
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(wf.to_dict())] == []
    assert isinstance(Workflow.from_dict(wf.to_dict(), registry=registry), Workflow)


def test_control_flow_nodes_validate_against_the_schema():
    """Editors see branch, map, loop and workflow nodes as valid, and a node with two as not."""
    import jsonschema

    from spindle.core.workflow import workflow_schema

    schema = workflow_schema()

    def ok(node):
        doc = {"name": "w", "nodes": {"n": node}}
        return not list(jsonschema.Draft202012Validator(schema).iter_errors(doc))

    code = {"kind": "python_code", "code": "result = 1"}
    assert ok({"map": {"over": {"range": 3}, "node": {"runtime": code}}})
    assert ok({"workflow": "child.yaml", "inputs": {"x": "inputs.x"}})
    assert ok({"workflow": {"path": "child.yaml", "output": {"a": "b.c"}, "max_depth": 2}})
    assert not ok({"workflow": {"path": "child.yaml", "depth": 2}})
    assert not ok({"workflow": "child.yaml", "runtime": code})
    assert ok({"branch": {"on": "a", "cases": {"x": "b", "y": ["c"]}, "default": "d"}})
    assert ok({"loop": {"body": [{"id": "b", "runtime": code}], "until": {"exists": "b"}}})
    assert not ok({"loop": {"body": [{"runtime": code}]}})
