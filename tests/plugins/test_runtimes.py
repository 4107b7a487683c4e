"""The built-in runtimes: command, python, python_code, python_script."""

from __future__ import annotations

import asyncio
import json
import shlex
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spindle import converter
from spindle.core.errors import TaskError, ValidationError
from spindle.core.plugin import TaskContext
from spindle.core.workflow import ArtifactSpec, InputSpec, NodeSpec, Workflow
from spindle.core.workflow._nodes import _base_dir_context
from spindle.plugins.executors.inline import InlineExecutor
from spindle.plugins.executors.subprocess import SubprocessExecutor
from spindle.plugins.payloads import CommandPayload, PythonCall
from spindle.plugins.runtimes.command import CommandRuntime
from spindle.plugins.runtimes.python import PythonRuntime
from spindle.plugins.runtimes.python_code import PythonCodeRuntime
from spindle.plugins.runtimes.python_script import PythonScriptRuntime

FILE = ArtifactSpec(kind="file", path="out.txt")


def command_task(make_task, command, **kw):
    rt = CommandRuntime(command=command)
    return rt, make_task(rt, SubprocessExecutor(), **kw)


def setup(rt, task):
    return asyncio.run(rt.setup_runtime(task))


# --- command -------------------------------------------------------------------------


def test_input_with_shell_syntax_stays_one_argument(make_task, run_node):
    """An input containing shell syntax stays one quoted argument."""
    evil = "x; rm -rf ~ && echo $(whoami) `id` 'q' \"d\""
    rt, task = command_task(make_task, "printf '%s|' {inputs.x}", inputs={"x": evil})
    payload = setup(rt, task)
    assert payload.command == f"printf '%s|' {shlex.quote(evil)}"
    assert run_node(task).value == evil + "|"


def test_every_placeholder_kind_is_substituted(make_task, run_dir):
    """Node and workflow inputs, output and input paths, task and run placeholders fill in."""
    rt, task = command_task(
        make_task,
        "echo {inputs.a} {inputs.w} {outputs.out.path} {raw.path} {task.name} {run.id} {run.dir}",
        node_id="hello",
        inputs={"a": "A", "raw": run_dir / "raw.csv"},
        outputs={"out": FILE},
        workflow_inputs={"w": "W"},
    )
    words = shlex.split(setup(rt, task).command)
    assert words == [
        "echo",
        "A",
        "W",
        str(run_dir / "out.txt"),
        str(run_dir / "raw.csv"),
        "hello",
        "run-1",
        str(run_dir),
    ]


def test_node_input_wins_over_workflow_input(make_task):
    """{inputs.x} takes the node's input before the workflow input of the same name."""
    rt, task = command_task(
        make_task, "echo {inputs.x}", inputs={"x": "node"}, workflow_inputs={"x": "workflow"}
    )
    assert setup(rt, task).command == "echo node"


def test_double_braces_are_literal_braces(make_task, run_node):
    """{{ and }} produce literal braces, so shell ${VAR} is written ${{VAR}}."""
    _, task = command_task(make_task, "X=1; echo {{a}} ${{X}}")
    assert run_node(task).value == "{a} 1"


def test_non_string_values_are_quoted_as_one_word(make_task):
    """Lists and mappings become compact JSON, booleans true/false, None an empty word."""
    rt, task = command_task(
        make_task,
        "cmd {inputs.l} {inputs.b} {inputs.n} {inputs.i}",
        inputs={"l": [1, "a b"], "b": True, "n": None, "i": 3},
    )
    assert shlex.split(setup(rt, task).command) == ["cmd", '[1,"a b"]', "true", "", "3"]


def test_unknown_placeholder_is_reported_before_running(make_task):
    """check() names an unknown placeholder and lists every available one."""
    rt = CommandRuntime(command="echo hello {inputs.nme} > {outputs.out.path}")
    node = NodeSpec(id="hello", runtime=rt, outputs={"out": FILE})
    assert rt.check(node, {"inputs.who", "ctx", "out"}) == [
        "unknown placeholder '{inputs.nme}' in command; available: inputs.who, "
        "outputs.out.path, task.name, run.id, run.dir"
    ]


def test_known_placeholders_pass_the_check():
    """Node inputs, their paths, workflow inputs and path outputs are all accepted."""
    rt = CommandRuntime(
        command="cp {raw.path} {outputs.out.path} && echo {inputs.raw} "
        "{inputs.who} {task.name} {run.id} {run.dir}"
    )
    node = NodeSpec(id="n", runtime=rt, inputs={"raw": "fetch.data"}, outputs={"out": FILE})
    assert rt.check(node, {"inputs.who"}) == []


def test_a_value_output_has_no_path_placeholder():
    """{outputs.x.path} of a value output is refused with the reason."""
    rt = CommandRuntime(command="echo {outputs.v.path}")
    node = NodeSpec(id="n", runtime=rt, outputs={"v": ArtifactSpec(kind="value")})
    (problem,) = rt.check(node, set())
    assert "output 'v' is a value output and has no path" in problem


def test_shell_variable_written_with_single_braces_gets_a_hint():
    """${HOME} is reported with the escaped spelling to use instead."""
    rt = CommandRuntime(command="echo ${HOME}")
    assert rt.check(NodeSpec(id="n", runtime=rt), set()) == [
        "placeholder '{HOME}' in command follows a '$'; drop the '$' for the value, or write "
        "'${{HOME}}' for a shell variable"
    ]


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("echo '{inputs.x}'", "is inside quotes"),
        ('echo "v={inputs.x}"', "is inside quotes"),
        ("echo hi # {inputs.x}", "is inside a comment"),
        ("cat <<EOF\n{inputs.x}\nEOF", "follows a here-document"),
        ("echo `echo {inputs.x}`", "is inside backquotes"),
        ("echo \\{inputs.x}", "follows a backslash"),
    ],
)
def test_placeholders_where_quoting_cannot_protect_them_are_refused(command, reason):
    """A placeholder inside quotes, a comment, a here-doc or backquotes is a load-time error."""
    rt = CommandRuntime(command=command)
    (problem,) = rt.check(NodeSpec(id="n", runtime=rt), {"inputs.x"})
    assert problem.startswith(f"placeholder '{{inputs.x}}' in command {reason}")


@pytest.mark.parametrize(
    "command",
    [
        "echo a#{inputs.x}",
        "X={inputs.x} env",
        "cat <<< {inputs.x}",
        "echo $(cat {inputs.x})",
        "echo 'a' \"b\" `date` {inputs.x}",
        "echo # note\necho {inputs.x}",
    ],
)
def test_placeholders_in_plain_word_positions_are_accepted(command):
    """Placeholders where the shell reads a plain word pass the check."""
    rt = CommandRuntime(command=command)
    assert rt.check(NodeSpec(id="n", runtime=rt), {"inputs.x"}) == []


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_input_renders_as_exactly_one_shell_word(text):
    """Whatever the input text, the rendered command splits back to the same single word."""
    rt = CommandRuntime(command="printf %s {inputs.x} done")
    task = TaskContext(
        run_id="r",
        node_id="n",
        node=NodeSpec(id="n"),
        inputs={"x": text},
        outputs={},
        run_dir=Path("/tmp"),
    )
    payload = asyncio.run(rt.setup_runtime(task))
    assert shlex.split(payload.command) == ["printf", "%s", text, "done"]


def test_a_hostile_input_reaches_the_program_intact(make_task, run_node):
    """Shell metacharacters, quotes and newlines in an input arrive unchanged as one argument."""
    evil = "a'b\"c $(id) `id` ${HOME} \\ ; | & > < \n * ?"
    _, task = command_task(make_task, "printf %s {inputs.x}", inputs={"x": evil})
    assert run_node(task).value == evil


def test_unmatched_brace_is_reported_at_check():
    """A lone brace is a load-time error that says how to write a literal one."""
    rt = CommandRuntime(command="echo }")
    assert rt.check(NodeSpec(id="n", runtime=rt), set()) == [
        "unmatched '}' at position 6 in command; write '}}' for a literal brace"
    ]


def test_executables_are_the_first_word_of_each_segment():
    """executables() lists each simple command's program for load policies."""
    rt = CommandRuntime(
        command="FOO=1 cat {inputs.f} | grep -v x; (cd d && make) || echo "
        "'a;b' & if test -f x; then rm x; fi\nls $(whoami)"
    )
    assert rt.executables() == ["cat", "grep", "cd", "make", "echo", "test", "rm", "ls", "whoami"]


def test_a_placeholder_in_program_position_is_listed_as_written():
    """A program chosen by an input is reported verbatim, so an allow list refuses it."""
    assert CommandRuntime(command="{inputs.prog} -x").executables() == ["{inputs.prog}"]


def test_command_config_is_structured_strictly(registry):
    """A YAML mapping builds the runtime; a non-string command is refused with its path."""
    rt = registry.create("runtime", {"kind": "command", "command": "echo hi", "env": {"A": "1"}})
    assert isinstance(rt, CommandRuntime) and rt.env == {"A": "1"}
    assert CommandRuntime.default_executor == "subprocess"
    with pytest.raises(ValidationError) as info:
        registry.create("runtime", {"kind": "command", "command": 3})
    assert info.value.problems == ["expected a string, got int 3 @ $.command"]


def test_command_payload_has_cwd_env_and_shell(make_task, run_dir):
    """cwd is relative to the run dir; env adds to SPINDLE_* variables; shell is passed on."""
    rt = CommandRuntime(command="pwd", cwd="work", env={"GREETING": "hi"}, shell="/bin/bash")
    task = make_task(rt, SubprocessExecutor(), node_id="n")
    payload = setup(rt, task)
    assert isinstance(payload, CommandPayload)
    assert payload.cwd == run_dir / "work"
    assert payload.shell == "/bin/bash"
    assert payload.env["GREETING"] == "hi"
    assert payload.env["SPINDLE_NODE_ID"] == "n" and payload.env["SPINDLE_RUN_ID"] == "run-1"


def test_output_directories_are_created_before_the_command(make_task, run_node, run_dir):
    """A command can write {outputs.x.path} under a directory that did not exist."""
    _, task = command_task(
        make_task,
        "echo hi > {outputs.out.path}",
        outputs={"out": ArtifactSpec(kind="file", path="deep/er/out.txt")},
    )
    run_node(task)
    assert (run_dir / "deep/er/out.txt").read_text() == "hi\n"


def test_a_path_placeholder_of_a_non_path_input_fails_the_node(make_task):
    """{x.path} where input x holds a number raises TaskError naming the input."""
    rt, task = command_task(make_task, "cat {x.path}", inputs={"x": 3})
    with pytest.raises(TaskError, match="input 'x' is not a path"):
        setup(rt, task)


# --- python --------------------------------------------------------------------------


def write_module(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


def test_kwargs_come_from_inputs_outputs_ctx_then_workflow_inputs(make_task, run_dir):
    """Each parameter is filled by name: node input, output path, ctx, workflow input."""

    def fn(text, out, ctx, who, unused="default"):
        return text, out, ctx, who, unused

    rt = PythonRuntime(function=fn)
    task = make_task(
        rt,
        InlineExecutor(),
        inputs={"text": "t"},
        outputs={"out": FILE},
        workflow_inputs={"who": "w", "text": "shadowed"},
    )
    call = setup(rt, task)
    assert isinstance(call, PythonCall)
    assert call.kwargs == {"text": "t", "out": run_dir / "out.txt", "ctx": task, "who": "w"}


def test_var_keyword_functions_also_receive_every_node_input(make_task):
    """A function with **kwargs gets the node inputs its named parameters did not take."""

    def fn(a, **rest):
        return a, rest

    rt = PythonRuntime(function=fn)
    call = setup(rt, make_task(rt, InlineExecutor(), inputs={"a": 1, "b": 2}))
    assert call.kwargs == {"a": 1, "b": 2}


def test_unsatisfiable_parameter_is_rejected_before_running(tmp_path, clean_imports):
    """A parameter without a default that nothing provides is a load-time problem."""
    write_module(tmp_path, "mymod", "def upper(txt):\n    return txt.upper()\n")
    with _base_dir_context(tmp_path):
        rt = PythonRuntime(function="mymod:upper")
    node = NodeSpec(id="upper", runtime=rt, inputs={"text": "hello.out"})
    assert rt.check(node, {"text", "ctx"}) == [
        "function 'mymod:upper' has parameter 'txt' that nothing provides; available: text, ctx"
    ]


def test_workflow_inputs_can_satisfy_parameters_at_check(tmp_path, clean_imports):
    """An 'inputs.NAME' entry in available satisfies a parameter named NAME."""
    write_module(tmp_path, "mymod_wf", "def greet(who):\n    return who\n")
    with _base_dir_context(tmp_path):
        rt = PythonRuntime(function="mymod_wf:greet")
    assert rt.check(NodeSpec(id="g", runtime=rt), {"ctx", "inputs.who"}) == []


def test_missing_module_gives_an_import_message(clean_imports):
    """A module that cannot be imported is reported with the fix."""
    rt = PythonRuntime(function="mymod:upper")
    assert rt.check(NodeSpec(id="upper", runtime=rt), {"ctx"}) == [
        "runtime 'python' cannot import 'mymod:upper' (No module named 'mymod'); is the module "
        "on PYTHONPATH or next to the workflow file?"
    ]


def test_missing_function_names_the_module(tmp_path, clean_imports):
    """A module without the function is reported with the attribute."""
    write_module(tmp_path, "mymod_nofn", "x = 1\n")
    with _base_dir_context(tmp_path):
        rt = PythonRuntime(function="mymod_nofn:upper")
    (problem,) = rt.check(NodeSpec(id="n", runtime=rt), {"ctx"})
    assert problem.startswith(
        "runtime 'python' cannot import 'mymod_nofn:upper' (module 'mymod_nofn' has no "
        "attribute 'upper')"
    )


def test_a_dotted_reference_without_colon_suggests_the_colon():
    """'mod.fn' is refused with the 'mod:fn' spelling."""
    rt = PythonRuntime(function="mymod.upper")
    (problem,) = rt.check(NodeSpec(id="n", runtime=rt), {"ctx"})
    assert "did you mean 'mymod:upper'?" in problem


def test_import_failure_at_run_time_is_a_task_error(make_task):
    """A function that cannot be imported fails the node with the same message."""
    rt = PythonRuntime(function="no_such_module_xyz:f")
    with pytest.raises(TaskError, match=r"node 'n': runtime 'python' cannot import"):
        setup(rt, make_task(rt, InlineExecutor()))


def test_a_workflow_file_imports_modules_next_to_it(tmp_path, clean_imports, run_node, make_task):
    """A 'module:function' string resolves against the workflow file's directory."""
    write_module(tmp_path, "nextdoor", "def upper(text):\n    return text.upper()\n")
    node = {
        "runtime": {"kind": "python", "function": "nextdoor:upper"},
        "inputs": {"text": "inputs.text"},
    }
    wf = Workflow.from_dict(
        {"name": "w", "inputs": {"text": "hi"}, "nodes": {"up": node}}, base_dir=tmp_path
    )
    rt = wf.nodes["up"].runtime
    assert isinstance(rt, PythonRuntime) and rt.base_dir == str(tmp_path)
    assert run_node(make_task(rt, InlineExecutor(), inputs={"text": "hi"})).value == "HI"


def test_stored_definition_names_functions_by_reference():
    """Unstructuring gives 'module:qualname' for importable callables and leaves base_dir out."""
    data = converter.unstructure(PythonRuntime(function=shlex.quote))
    assert data == {"kind": "python", "function": "shlex:quote"}
    assert converter.unstructure(PythonRuntime(function="a.b:c")) == {
        "kind": "python",
        "function": "a.b:c",
    }


def test_stored_definition_marks_a_lambda_as_not_importable():
    """A lambda is stored as a clear marker, and importing that marker explains the fix."""
    rt = PythonRuntime(function=lambda: 1)
    marker = converter.unstructure(rt)["function"]
    assert marker.startswith("<not importable: ") and "<lambda>" in marker
    (problem,) = PythonRuntime(function=marker).check(NodeSpec(id="n"), {"ctx"})
    assert "pass the Workflow object itself to resume it" in problem


def test_function_field_refuses_a_number(registry):
    """A YAML function that is neither a string nor a callable is refused."""
    with pytest.raises(ValidationError, match="expected a 'module:function' string or a callable"):
        registry.create("runtime", {"kind": "python", "function": 3})


def test_positional_only_parameter_is_reported():
    """A positional-only parameter without a default cannot be passed by name."""

    def fn(a, /):
        return a

    rt = PythonRuntime(function=fn)
    (problem,) = rt.check(NodeSpec(id="n", runtime=rt, inputs={"a": "x.y"}), {"a", "ctx"})
    assert "positional-only parameter 'a'" in problem


def test_sync_and_async_functions_both_return_results(make_task, run_node):
    """A sync and an async function each give their return value as the node result."""

    def sync_fn(x):
        return x + 1

    async def async_fn(x):
        await asyncio.sleep(0)
        return x * 2

    for fn, expected in ((sync_fn, 4), (async_fn, 6)):
        rt = PythonRuntime(function=fn)
        call = setup(rt, make_task(rt, InlineExecutor(), inputs={"x": 3}))
        assert call.is_async is (fn is async_fn)
        assert run_node(make_task(rt, InlineExecutor(), inputs={"x": 3})).value == expected


# --- python_code ---------------------------------------------------------------------


def test_python_code_result_variable_is_the_result(make_task, run_node, run_dir):
    """The code sees inputs, outputs and ctx; its `result` variable is the node result."""
    code = "result = (inputs['a'], inputs['w'], str(outputs['out']), ctx.node_id)"
    rt = PythonCodeRuntime(code=code)
    task = make_task(
        rt, InlineExecutor(), inputs={"a": 1}, outputs={"out": FILE}, workflow_inputs={"w": 2}
    )
    assert run_node(task).value == (1, 2, str(run_dir / "out.txt"), "n")


def test_python_code_without_result_gives_none(make_task, run_node):
    """Code that never sets `result` yields None."""
    rt = PythonCodeRuntime(code="x = 1")
    assert run_node(make_task(rt, InlineExecutor())).value is None


def test_python_code_syntax_error_names_the_line():
    """A syntax error is reported at load time with its line inside the code string."""
    rt = PythonCodeRuntime(code="x = 1\ny = = 2\n")
    assert rt.check(NodeSpec(id="n", runtime=rt), set()) == [
        "python_code has a syntax error at line 2 of its code: invalid syntax"
    ]


def test_python_code_with_a_lone_surrogate_is_a_load_error():
    """A JSON file can spell a lone surrogate ("\\ud800"), which Python cannot compile:
    the definition is refused as invalid, not with a UnicodeEncodeError (a fuzz find)."""
    data = json.loads(
        '{"name": "x", "nodes": {"a": {"runtime": {"kind": "python_code", "code": "x = \\ud800"}}}}'
    )
    with pytest.raises(ValidationError, match=r"node 'a': .*lone surrogate.*remove it"):
        Workflow.from_dict(data)


def test_python_code_tracebacks_show_the_failing_line(make_task, run_node):
    """An exception's traceback names the node and shows the code line."""
    import traceback

    rt = PythonCodeRuntime(code="a = 1\nraise ValueError('boom')\n")
    with pytest.raises(ValueError, match="boom") as info:
        run_node(make_task(rt, InlineExecutor(), node_id="pub"))
    text = "".join(traceback.format_exception(info.value))
    assert "<python_code node 'pub'>\", line 2" in text
    assert "raise ValueError('boom')" in text


# --- python_script -------------------------------------------------------------------

SCRIPT = """
import json, os, sys
inputs = json.load(open(os.environ["SPINDLE_INPUTS"]))
outputs = json.load(open(os.environ["SPINDLE_OUTPUTS"]))
with open(outputs["out"], "w") as f:
    f.write(inputs["text"].upper())
print("to the log")
json.dump({"n": len(inputs["text"]), "inputs": sorted(inputs), "argv": sys.argv[1:],
           "node": os.environ["SPINDLE_NODE_ID"], "inputs_file": os.environ["SPINDLE_INPUTS"]},
          open(os.environ["SPINDLE_RESULT"], "w"))
"""


def script_workflow(secret: bool) -> Workflow:
    wf = Workflow("w")
    wf.inputs = {
        "token": InputSpec(default="s3cret", secret=secret),
        "plain": InputSpec(default="p"),
    }
    return wf


def test_python_script_reads_inputs_and_writes_a_result(tmp_path, make_task, run_node, run_dir):
    """A script gets inputs and outputs as JSON files; the JSON it writes is the result."""
    (tmp_path / "job.py").write_text(SCRIPT)
    with _base_dir_context(tmp_path):
        rt = PythonScriptRuntime(path="job.py", args=["--fast"])
    assert rt.check(NodeSpec(id="n", runtime=rt), set()) == []
    task = make_task(
        rt,
        SubprocessExecutor(),
        inputs={"text": "abc"},
        outputs={"out": FILE},
        workflow_inputs={"token": "s3cret", "plain": "p"},
        workflow=script_workflow(secret=True),
    )
    outcome = run_node(task)
    result = outcome.value
    assert result["n"] == 3 and result["argv"] == ["--fast"] and result["node"] == "n"
    assert result["inputs"] == ["plain", "text"]  # the secret input was not handed over
    assert (run_dir / "out.txt").read_text() == "ABC"
    assert outcome.stdout == "to the log\n"
    assert not Path(result["inputs_file"]).exists()  # removed when the script ended


def test_python_script_without_result_gives_none(tmp_path, make_task, run_node):
    """A script that writes nothing to SPINDLE_RESULT yields None."""
    (tmp_path / "quiet.py").write_text("print('hi')\n")
    rt = PythonScriptRuntime(path=str(tmp_path / "quiet.py"))
    assert run_node(make_task(rt, SubprocessExecutor())).value is None


def test_python_script_failure_reports_exit_code(tmp_path, make_task, run_node):
    """A script that exits non-zero fails the node with its stderr tail."""
    (tmp_path / "bad.py").write_text("import sys\nsys.exit('no input given')\n")
    rt = PythonScriptRuntime(path=str(tmp_path / "bad.py"))
    with pytest.raises(TaskError, match="node 'n': script exited with code 1: no input given"):
        run_node(make_task(rt, SubprocessExecutor()))


def test_python_script_missing_file_is_reported_at_check(tmp_path):
    """check() reports a script path that does not exist, and where it looked."""
    with _base_dir_context(tmp_path):
        rt = PythonScriptRuntime(path="nope.py")
    assert rt.check(NodeSpec(id="n", runtime=rt), set()) == [
        f"python_script file 'nope.py' does not exist (looked for {tmp_path / 'nope.py'})"
    ]


def test_python_script_inputs_file_is_private(tmp_path, make_task, run_node):
    """The inputs file is readable by the owner only."""
    (tmp_path / "mode.py").write_text(
        "import json, os, stat\n"
        "mode = stat.S_IMODE(os.stat(os.environ['SPINDLE_INPUTS']).st_mode)\n"
        "json.dump(oct(mode), open(os.environ['SPINDLE_RESULT'], 'w'))\n"
    )
    rt = PythonScriptRuntime(path=str(tmp_path / "mode.py"))
    assert run_node(make_task(rt, SubprocessExecutor())).value == "0o600"


def test_defaults_pick_the_expected_executors():
    """Each runtime names its default executor kind."""
    assert PythonRuntime.default_executor == "inline"
    assert PythonCodeRuntime.default_executor == "inline"
    assert PythonScriptRuntime.default_executor == "subprocess"
    assert json.dumps(CommandRuntime.default_executor) == '"subprocess"'


def test_python_code_shared_by_map_items_is_named_for_the_template(make_task, run_node):
    """One compiled code serves every item, so its traceback names the template
    (``measure[i]``), not whichever item compiled it first."""
    import traceback

    rt = PythonCodeRuntime(code="raise ValueError('boom')\n")
    texts = []
    for node_id in ("measure[0]", "measure[7]", "grow#3/step"):
        with pytest.raises(ValueError) as info:
            run_node(make_task(rt, InlineExecutor(), node_id=node_id))
        texts.append("".join(traceback.format_exception(info.value)))
    assert all("<python_code node 'measure[i]'>" in t for t in texts[:2])
    assert "measure[0]" not in texts[1]
    loop = PythonCodeRuntime(code="raise ValueError('boom')\n")
    with pytest.raises(ValueError) as info:
        run_node(make_task(loop, InlineExecutor(), node_id="grow#3/step"))
    assert "<python_code node 'grow#k/step'>" in "".join(traceback.format_exception(info.value))
