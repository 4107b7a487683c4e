"""Loading workflow files: YAML/JSON parsing, file:line problems, policies."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest

import spindle
from spindle import (
    LoadPolicy,
    PolicyViolation,
    Registry,
    Runtime,
    Settings,
    ValidationError,
)
from spindle.core.config import PolicySettings
from spindle.core.errors import PluginLoadError
from spindle.core.workflow import (
    current_base_dir,
    load_workflow,
    load_workflow_text,
)

from .fakes import Ask, Cmd, Code, Echo, Inline

# Every test reads its files with libyaml (and json), and again with the pure-Python
# YAML loader alone (see the yaml_reader fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("yaml_reader")


# --- test plugins ------------------------------------------------------------


@attrs.define
class Where(Runtime[str], kind="where"):
    """Remembers the base dir in force while its config was structured."""

    name: str
    seen: Path | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.seen = current_base_dir()

    async def _setup_runtime(self, task: Any) -> str:
        return self.name


@pytest.fixture
def registry() -> Registry:
    return Registry.for_testing([Echo, Cmd, Code, Where, Ask, Inline], builtins=False)


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a file under examples/ (relative to the cwd, a temp dir) and return its path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()

    def write_file(text: str, name: str = "wf.yaml") -> str:
        (tmp_path / "examples" / name).write_text(textwrap.dedent(text).lstrip(), "utf-8")
        return f"examples/{name}"

    return write_file


def problems_of(path: str, registry: Registry, **kwargs: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_workflow(path, registry=registry, **kwargs)
    return info.value.problems


GOOD = """
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
    after: [approve]
output: hello
"""


# --- loading -------------------------------------------------------------------


def test_valid_yaml_file_loads_into_a_workflow(write, registry):
    """A valid YAML file loads into a workflow with its nodes, inputs and output."""
    wf = load_workflow(write(GOOD), registry=registry)
    assert wf.name == "greet"
    assert list(wf.nodes) == ["hello", "approve", "publish"]
    assert wf.inputs["who"].default == "world"
    assert wf.output == "hello"
    assert wf.dependencies("approve") == ["hello"]
    assert wf.nodes["approve"].retry is not None
    assert wf.nodes["approve"].retry.max_attempts == 3


def test_base_dir_and_source_are_the_files_directory_and_path(write, registry, tmp_path):
    """A loaded workflow's base_dir is the file's directory and its source the file."""
    wf = load_workflow(write(GOOD), registry=registry)
    assert wf.base_dir == (tmp_path / "examples").resolve()
    assert wf.source == str((tmp_path / "examples" / "wf.yaml").resolve())


def test_plugins_see_the_files_directory_while_structured(write, registry, tmp_path):
    """current_base_dir() is the file's directory while plugin configs are structured."""
    path = write("""
        name: where
        nodes:
          a: {runtime: {kind: where, name: x}}
    """)
    wf = load_workflow(path, registry=registry)
    runtime = wf.nodes["a"].runtime
    assert isinstance(runtime, Where)
    assert runtime.seen == (tmp_path / "examples").resolve()
    assert current_base_dir() is None


def test_json_file_loads_like_its_yaml_twin(write, registry):
    """A JSON file loads into the same definition as the equivalent YAML file."""
    from_yaml = load_workflow(write(GOOD), registry=registry)
    data = {k: v for k, v in from_yaml.to_dict().items() if k not in ("source", "node_hashes")}
    from_json = load_workflow(write(json.dumps(data, indent=2), "wf.json"), registry=registry)
    assert from_json.node_hashes() == from_yaml.node_hashes()
    assert from_json.definition_id() == from_yaml.definition_id()


def test_json_indented_with_tabs_still_loads(write, registry):
    """JSON that YAML cannot read (tab indentation) is parsed as JSON."""
    text = '{\n\t"name": "t",\n\t"nodes": {"a": {"runtime": {"kind": "echo", "text": "x"}}}\n}\n'
    wf = load_workflow(write(text, "tabs.json"), registry=registry)
    assert list(wf.nodes) == ["a"]


def test_invalid_json_names_file_line_and_column(write, registry):
    """A JSON syntax error names the file, line and column."""
    path = write('{\n\t"name": "t",\n\t"nodes": }\n', "bad.json")
    assert problems_of(path, registry) == ["examples/bad.json:3:11: Expecting value"]


def test_yaml_one_point_two_scalars_keep_yes_no_and_times_as_strings(write, registry):
    """yes/no/on/off, 12:30 and dates stay strings; only true/false are booleans."""
    wf = load_workflow_text(
        textwrap.dedent("""
            name: s
            inputs: {at: 12:30, day: 2024-01-01, flag: on, real: true, n: 010, e: 1e3}
            nodes:
              a: {effect: {kind: ask_user, prompt: "ok?", choices: [yes, no, on, off]}}
        """),
        registry=registry,
    )
    effect = wf.nodes["a"].effect
    assert isinstance(effect, Ask)
    assert effect.choices == ["yes", "no", "on", "off"]
    defaults = {k: v.default for k, v in wf.inputs.items()}
    assert defaults == {
        "at": "12:30",
        "day": "2024-01-01",
        "flag": "on",
        "real": True,
        "n": "010",
        "e": 1000.0,
    }


def test_a_lone_point_is_a_string_not_a_broken_number(registry):
    """ "." and "-." are strings (YAML 1.2 floats need a digit); ".5" and "1." are floats."""
    wf = load_workflow_text(
        textwrap.dedent("""
            name: s
            inputs: {here: ., minus: -., half: .5, one: 1., big: 1_000.5}
            nodes:
              a: {effect: {kind: ask_user, prompt: "ok?"}}
        """),
        registry=registry,
    )
    defaults = {k: v.default for k, v in wf.inputs.items()}
    assert defaults == {"here": ".", "minus": "-.", "half": 0.5, "one": 1.0, "big": 1000.5}


def test_load_workflow_is_exported_from_spindle():
    """spindle.load_workflow is the loader."""
    assert spindle.load_workflow is load_workflow


def test_load_workflow_text_names_the_given_filename(registry):
    """Problems in text name the filename given."""
    with pytest.raises(ValidationError) as info:
        load_workflow_text("name: x\nnodes:\n  a: {}\n", filename="api:42", registry=registry)
    assert info.value.problems == [
        "api:42:3: node 'a' needs exactly one of 'runtime' or 'effect' @ nodes.a"
    ]


# --- the bad-input table ---------------------------------------------------------------


def test_yaml_syntax_error_names_file_line_and_column(write, registry):
    """A YAML syntax error names the file, line and column of the problem."""
    path = write(
        """
        name: greet
        nodes:
          hello:
            runtime: kind: cmd
    """,
        "bad.yaml",
    )
    with pytest.raises(ValidationError) as info:
        load_workflow(path, registry=registry)
    assert info.value.problems == ["examples/bad.yaml:4:18: mapping values are not allowed here"]
    assert "examples/bad.yaml:4:18: mapping values are not allowed here" in str(info.value)


def test_yaml_error_with_context_says_where_the_construct_began(write, registry):
    """A YAML error with context names where the unclosed construct started."""
    path = write('name: "greet\nnodes: {}\n', "bad.yaml")
    (problem,) = problems_of(path, registry)
    assert problem.startswith("examples/bad.yaml:3:1: found unexpected end of stream")
    assert "(while scanning a quoted scalar at line 1, column 7)" in problem


def test_missing_file_names_the_path(write, registry):
    """Loading a file that does not exist names the path."""
    write(GOOD)
    with pytest.raises(ValidationError, match=r"^workflow file not found: examples/nope\.yaml$"):
        load_workflow("examples/nope.yaml", registry=registry)


def test_directory_is_reported_not_raised_raw(write, registry):
    """Loading a directory is a ValidationError naming the path."""
    write(GOOD)
    Path("examples/dir.yaml").mkdir()
    with pytest.raises(ValidationError, match=r"^cannot read workflow file examples/dir\.yaml: "):
        load_workflow("examples/dir.yaml", registry=registry)


def test_unsupported_suffix_is_refused(write, registry):
    """A file that is not .yaml/.yml/.json is refused with the suffixes that work."""
    path = write(GOOD, "wf.txt")
    with pytest.raises(ValidationError) as info:
        load_workflow(path, registry=registry)
    assert str(info.value) == (
        "cannot load workflow file examples/wf.txt: unsupported file type '.txt'; "
        "use one of .yaml, .yml, .json"
    )


def test_empty_file_says_it_is_empty(write, registry):
    """An empty file is reported as empty."""
    path = write("# nothing yet\n")
    with pytest.raises(ValidationError) as info:
        load_workflow(path, registry=registry)
    assert info.value.summary == "examples/wf.yaml: the workflow file is empty"


def test_top_level_list_is_refused(write, registry):
    """A file whose top level is not a mapping says what it should be."""
    path = write("- a\n- b\n")
    assert problems_of(path, registry) == [
        "examples/wf.yaml:1: expected a mapping with 'name' and 'nodes', got list @ $"
    ]


def test_unknown_kind_lists_the_installed_kinds(write, registry):
    """An unknown kind names the file line and lists the installed kinds of its group."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime:
              kind: shell
              command: hi
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:5: unknown runtime kind 'shell'; installed runtime kinds: cmd, echo, "
        "python_code, where. @ nodes.hello.runtime.kind"
    ]


def test_unknown_kind_of_a_contrib_integration_names_its_extra(write, registry):
    """A contrib kind that is not installed (dask) names the extra that adds it."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime: {kind: echo, text: hi}
            executor: {kind: dask}
    """)
    (problem,) = problems_of(path, registry)
    assert problem.startswith("examples/wf.yaml:5: unknown executor kind 'dask'; ")
    assert "installed executor kinds: inline." in problem
    assert "The Dask executor comes with the 'dask' extra: pip install 'spindle[dask]'." in problem
    assert problem.endswith(" @ nodes.hello.executor.kind")


def test_missing_kind_says_to_name_one(write, registry):
    """A plugin mapping without kind says which group needs one."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime: {command: hi}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:4: missing 'kind': say which runtime to use @ nodes.hello.runtime"
    ]


def test_missing_required_field_names_path_and_line(write, registry):
    """A missing required plugin field names its path and the line of its mapping."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime:
              kind: cmd
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:4: required field missing @ nodes.hello.runtime.command"
    ]


def test_wrong_type_says_what_was_expected_and_given(write, registry):
    """A wrong type names the field, what was expected and what was given."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime:
              kind: cmd
              command: 3
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:6: expected a string, got int 3 @ nodes.hello.runtime.command"
    ]


def test_string_for_a_list_is_refused_not_split_into_letters(write, registry):
    """choices: yes is refused as not a list instead of becoming ['y', 'e', 's']."""
    path = write("""
        name: greet
        nodes:
          ask:
            effect: {kind: ask_user, prompt: "ok?", choices: yes}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:4: expected a list, got str 'yes' @ nodes.ask.effect.choices"
    ]


def test_unknown_field_in_a_node_lists_the_known_fields(write, registry):
    """An unknown node field names its line and lists the node fields."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime: {kind: echo, text: hi}
            retires: 3
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:5: unknown field 'retires' in node 'hello'; known fields: runtime, "
        "executor, effect, inputs, outputs, after, retry, timeout, continue_on_failure, "
        "description, allow_outside_paths, when, join, branch, map, loop, workflow, "
        "resources, cache @ nodes.hello.retires"
    ]


def test_unknown_field_in_a_plugin_config_lists_the_plugins_fields(write, registry):
    """An unknown plugin option names its line and lists the plugin's fields."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime:
              kind: cmd
              command: hi
              retry: 2
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:7: unknown field 'retry'; known fields: kind, command, retries "
        "@ nodes.hello.runtime.retry"
    ]


def test_unknown_top_level_field_lists_the_workflow_fields(write, registry):
    """An unknown top-level key names its line and the workflow fields."""
    path = write("""
        name: greet
        node: {}
        nodes:
          a: {runtime: {kind: echo, text: hi}}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:2: unknown field 'node'; known fields: name, inputs, nodes, output, "
        "max_steps, description @ node"
    ]


def test_reference_to_an_unknown_node_is_reported(write, registry):
    """An input referring to a node that does not exist names the input and the node."""
    path = write("""
        name: greet
        nodes:
          hello:
            runtime: {kind: echo, text: hi}
            inputs:
              text: helo
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:6: node 'hello': input 'text' refers to unknown node 'helo' "
        "@ nodes.hello.inputs.text"
    ]


def test_reference_to_an_undeclared_output_lists_the_declared_ones(write, registry):
    """An input naming an output its node does not declare lists the declared outputs."""
    path = write("""
        name: greet
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            outputs: {out: {kind: value}}
          b:
            runtime: {kind: echo, text: hi}
            inputs: {text: a.result}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:8: node 'b': input 'text' refers to output 'result' which node 'a' "
        "does not declare (its outputs: out) @ nodes.b.inputs.text"
    ]


def test_reference_to_an_unknown_workflow_input_lists_the_declared_inputs(write, registry):
    """inputs.NAME for an undeclared input lists the declared inputs."""
    path = write("""
        name: greet
        inputs: {who: world}
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            inputs: {text: inputs.whom}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:6: node 'a': input 'text' refers to unknown workflow input "
        "'inputs.whom'; declared inputs: who @ nodes.a.inputs.text"
    ]


def test_dependency_cycle_names_the_cycle(write, registry):
    """A dependency cycle is reported as the path around it."""
    path = write("""
        name: loop
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            inputs: {x: b}
          b:
            runtime: {kind: echo, text: hi}
            after: [a]
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:3: dependency cycle: a -> b -> a @ nodes.a"
    ]


def test_after_an_unknown_node_points_at_the_list_item(write, registry):
    """after: naming an unknown node points at that item's line."""
    path = write("""
        name: greet
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            after:
              - a2
              - nobody
          a2: {runtime: {kind: echo, text: hi}}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:7: node 'a' runs after unknown node 'nobody' @ nodes.a.after.1"
    ]


def test_node_with_both_runtime_and_effect_is_refused(write, registry):
    """A node with both a runtime and an effect is refused."""
    path = write("""
        name: greet
        nodes:
          both:
            runtime: {kind: echo, text: hi}
            effect: {kind: ask_user, prompt: "ok?"}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:3: node 'both' needs exactly one of 'runtime' or 'effect' @ nodes.both"
    ]


def test_node_with_neither_runtime_nor_effect_is_refused(write, registry):
    """A node with neither a runtime nor an effect is refused."""
    path = write("""
        name: greet
        nodes:
          neither:
            after: []
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:3: node 'neither' needs exactly one of 'runtime' or 'effect' "
        "@ nodes.neither"
    ]


def test_retry_with_zero_attempts_is_refused(write, registry):
    """retry.max_attempts of 0 is refused at its line."""
    path = write("""
        name: greet
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            retry:
              max_attempts: 0
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:6: node 'a': retry.max_attempts must be at least 1 "
        "@ nodes.a.retry.max_attempts"
    ]


def test_bad_output_kind_lists_the_kinds(write, registry):
    """An output kind outside the literal lists the allowed kinds."""
    path = write("""
        name: greet
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            outputs:
              out: {kind: fil, path: x}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:6: expected one of 'file', 'folder', 'json', 'value', got 'fil' "
        "@ nodes.a.outputs.out.kind"
    ]


def test_duplicate_keys_are_reported(write, registry):
    """A key given twice in one mapping is an error naming both lines."""
    path = write("""
        name: greet
        nodes:
          a: {runtime: {kind: echo, text: one}}
          a: {runtime: {kind: echo, text: two}}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:4: duplicate key 'a' (first defined on line 3) @ nodes.a"
    ]


def test_every_problem_is_reported_at_once_in_file_order(write, registry):
    """Structural and graph problems of different nodes are all reported, in file order."""
    path = write("""
        name: many
        nodes:
          a:
            runtime: {kind: cmd, command: 3}
            outputs: {out: {kind: value}}
          b:
            runtime: {kind: echo, text: hi}
            inputs: {x: a.missing, y: nobody}
            retry: {max_attempts: 0}
          c:
            effect: {kind: ask_user}
            after: [ghost]
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:4: expected a string, got int 3 @ nodes.a.runtime.command",
        "examples/wf.yaml:8: node 'b': input 'x' refers to output 'missing' which node 'a' "
        "does not declare (its outputs: out) @ nodes.b.inputs.x",
        "examples/wf.yaml:8: node 'b': input 'y' refers to unknown node 'nobody' "
        "@ nodes.b.inputs.y",
        "examples/wf.yaml:9: node 'b': retry.max_attempts must be at least 1 "
        "@ nodes.b.retry.max_attempts",
        "examples/wf.yaml:11: required field missing @ nodes.c.effect.prompt",
        "examples/wf.yaml:12: node 'c' runs after unknown node 'ghost' @ nodes.c.after.0",
    ]


def test_a_field_that_failed_is_not_reported_again_by_graph_checks(write, registry):
    """References to outputs of a node whose outputs failed to load add no second problem."""
    path = write("""
        name: once
        nodes:
          a:
            runtime: {kind: echo, text: hi}
            outputs: [out]
          b:
            runtime: {kind: echo, text: hi}
            inputs: {x: a.out}
    """)
    assert problems_of(path, registry) == [
        "examples/wf.yaml:5: expected a mapping, got list ['out'] @ nodes.a.outputs"
    ]


# --- policies --------------------------------------------------------------------


def test_denied_kind_raises_policy_violation_naming_node_and_kind(write, registry):
    """A policy denying runtime.python_code refuses the node that uses it."""
    path = write(GOOD)
    policy = LoadPolicy(deny_kinds=["runtime.python_code"])
    with pytest.raises(PolicyViolation) as info:
        load_workflow(path, registry=registry, policy=policy)
    assert info.value.problems == [
        "examples/wf.yaml:12: node 'publish': runtime kind 'python_code' is not allowed by the "
        "load policy @ nodes.publish.runtime.kind"
    ]
    assert info.value.summary == "examples/wf.yaml: workflow 'greet' is refused by the load policy"
    assert isinstance(info.value, PermissionError)
    assert isinstance(info.value, ValidationError)


def test_allow_list_refuses_every_kind_not_on_it(write, registry):
    """A policy with allow_kinds refuses each node using another kind."""
    path = write(GOOD)
    policy = LoadPolicy(allow_kinds=["runtime.cmd"])
    with pytest.raises(PolicyViolation) as info:
        load_workflow(path, registry=registry, policy=policy)
    assert [p.rsplit(" @ ", 1)[1] for p in info.value.problems] == [
        "nodes.approve.effect.kind",
        "nodes.publish.runtime.kind",
    ]


def test_executable_outside_the_allow_list_is_refused(write, registry):
    """allowed_executables refuses a command runtime that starts another program."""
    path = write("""
        name: rm
        nodes:
          ok: {runtime: {kind: cmd, command: echo hi}}
          bad:
            runtime: {kind: cmd, command: rm -rf /}
    """)
    policy = LoadPolicy(allowed_executables=["echo", "ls"])
    with pytest.raises(PolicyViolation) as info:
        load_workflow(path, registry=registry, policy=policy)
    assert info.value.problems == [
        "examples/wf.yaml:5: node 'bad': executable 'rm' is not in the policy's allowed "
        "executables (echo, ls) @ nodes.bad.runtime"
    ]


def test_policy_from_settings_is_applied(write, registry):
    """The [policy] section of the settings applies when no policy is given."""
    path = write(GOOD)
    settings = Settings(policy=PolicySettings(deny_kinds=["effect.ask_user"]))
    with pytest.raises(PolicyViolation, match="effect kind 'ask_user' is not allowed"):
        load_workflow(path, registry=registry, settings=settings)


def test_no_policy_refuses_nothing(write, registry):
    """Without a policy every installed kind may be used."""
    assert load_workflow(write(GOOD), registry=registry, settings=Settings()).name == "greet"


def test_problems_in_a_json_file_name_their_lines(write, registry):
    """A JSON file's problems carry line numbers like a YAML file's."""
    text = '{\n  "name": "j",\n  "nodes": {\n    "a": {"runtime": {"kind": "echo", "text": 1}}}}\n'
    assert problems_of(write(text, "wf.json"), registry) == [
        "examples/wf.json:4: expected a string, got int 1 @ nodes.a.runtime.text"
    ]


def test_a_broken_kind_is_reported_at_its_node_and_others_still_load(write):
    """A kind whose plugin cannot be loaded is a problem of the node using it, naming the cause."""

    class BrokenRegistry(Registry):
        def get(self, group: str, kind: str) -> Any:
            if kind == "cmd":
                raise PluginLoadError(
                    "runtime 'cmd' cannot be loaded: entry point spindle.runtime:cmd = bad:Cmd "
                    "from badplug 1.0 failed to import (ImportError: boom). Fix or uninstall "
                    "badplug.",
                    group=group,
                    kind=kind,
                )
            return super().get(group, kind)

    reg = BrokenRegistry(entry_points=False)
    for plugin in (Echo, Cmd):
        reg.register(plugin)
    path = write("""
        name: broken
        nodes:
          ok: {runtime: {kind: echo, text: hi}}
          bad:
            runtime:
              kind: cmd
              command: hi
    """)
    assert problems_of(path, reg) == [
        "examples/wf.yaml:6: runtime 'cmd' cannot be loaded: entry point spindle.runtime:cmd = "
        "bad:Cmd from badplug 1.0 failed to import (ImportError: boom). Fix or uninstall badplug. "
        "@ nodes.bad.runtime.kind"
    ]
