"""The plugin kit in ``spindle.testing``: registries, run_workflow, contexts, hook isolation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from attrs import define

from spindle import (
    Effect,
    EffectStatus,
    Engine,
    Registry,
    RunState,
    Runtime,
    Settings,
    TaskContext,
    TaskError,
    WaitReason,
)
from spindle.plugins.payloads import PythonCall
from spindle.testing import (
    NoRunLinks,
    WorkflowResult,
    make_effect_context,
    make_task_context,
)

HOOKS_SOURCE = """
from spindle import hookimpl

@hookimpl
def spindle_on_finish(run, output, unsettled):
    pass
"""


def twice(value: int) -> int:
    return value * 2


@define
class TwiceRuntime(Runtime[PythonCall], kind="twice"):
    """Doubles the node input ``value``."""

    offset: int = 0

    async def _setup_runtime(self, task: TaskContext) -> PythonCall:
        if "value" not in task.inputs:
            raise TaskError(f"node '{task.node_id}': twice needs an input 'value'")
        return PythonCall(function=twice, kwargs={"value": task.inputs["value"] + self.offset})


TWICE = {
    "name": "double",
    "inputs": {"n": 1},
    "nodes": {"d": {"runtime": {"kind": "twice", "offset": 1}, "inputs": {"value": "inputs.n"}}},
    "output": "d",
}


# --- Registry.for_testing ------------------------------------------------------------


def test_for_testing_holds_spindles_own_kinds():
    """Registry.for_testing() has the built-in stores, runtimes, executors, effects and more."""
    registry = Registry.for_testing()

    assert {"memory", "sqlite"} <= set(registry.names("store"))
    assert {"python", "command"} <= set(registry.names("runtime"))
    assert "inline" in registry.names("executor")
    assert "wait_event" in registry.names("effect")
    assert "jsonl" in registry.names("observer")
    assert "timing" in registry.names("middleware")


def test_for_testing_registry_runs_a_workflow_on_memory(tmp_path):
    """Engine("memory://", registry=Registry.for_testing([...])) runs the plugin's kind."""
    registry = Registry.for_testing([TwiceRuntime])
    workflow_registry = registry

    async def main() -> RunState:
        from spindle import Workflow

        workflow = Workflow.from_dict(TWICE, registry=workflow_registry)
        async with Engine(
            "memory://", registry=registry, settings=Settings(runs_dir=str(tmp_path))
        ) as engine:
            return await engine.run(workflow, {"n": 4})

    state = asyncio.run(main())

    assert state.status == "completed"
    assert state.output == 10


def test_for_testing_leaves_other_distributions_out(installed_distribution):
    """Another installed package's kinds and hook modules are not in a test registry."""
    installed_distribution(
        "spindle-other",
        entry_points={
            "spindle.runtime": {"other": "other_kit_mod:Other"},
            "spindle.hooks": {"other": "other_kit_hooks"},
        },
        modules={"other_kit_mod.py": "Other = None\n", "other_kit_hooks.py": HOOKS_SOURCE},
    )

    assert "other" not in Registry.for_testing().names("runtime")
    assert Registry.for_testing().names("hooks") == []
    assert "other" in Registry.for_testing(entry_points=True).names("runtime")
    assert Registry.for_testing(entry_points=True).names("hooks") == []
    assert Registry.for_testing(entry_points=True, hooks=True).names("hooks") == ["other"]
    assert Registry.for_testing(builtins=False).names("store") == []


# --- hook isolation ---------------------------------------------------------------------


def test_the_fixture_keeps_installed_hook_modules_out(installed_distribution, request):
    """spindle_no_installed_hooks leaves installed hook modules out of Registry()."""
    installed_distribution(
        "spindle-hooky",
        entry_points={"spindle.hooks": {"hooky": "hooky_kit_hooks"}},
        modules={"hooky_kit_hooks.py": HOOKS_SOURCE},
    )
    assert Registry().names("hooks") == ["hooky"]

    request.getfixturevalue("spindle_no_installed_hooks")

    assert Registry().names("hooks") == []
    assert Registry().names("store")  # everything else is still installed


@pytest.mark.spindle_no_installed_hooks
def test_the_marker_turns_the_switch_on():
    """A test marked spindle_no_installed_hooks runs with the switch set for subprocesses too."""
    assert os.environ["SPINDLE_NO_INSTALLED_HOOKS"] == "1"


def test_the_switch_is_off_without_the_marker():
    """An unmarked test sees installed hook modules as usual."""
    assert "SPINDLE_NO_INSTALLED_HOOKS" not in os.environ


# --- run_workflow -------------------------------------------------------------------------


def test_run_workflow_runs_a_definition_with_the_plugin(run_workflow):
    """run_workflow registers the plugins, runs on memory:// and gives each node's result."""
    result = run_workflow(TWICE, {"n": 2}, plugins=[TwiceRuntime])

    assert isinstance(result, WorkflowResult)
    assert result.status == "completed"
    assert result.output == 6
    assert result["d"] == 6
    assert result.outputs == {"d": 6}
    assert [r.node_id for r in result.records if r.node_id == "d"]


def test_run_workflow_takes_yaml_text_a_path_and_a_function(run_workflow, tmp_path):
    """YAML text, a workflow file and a plain function all run."""
    text = textwrap.dedent(
        """
        name: code
        inputs: {x: 3}
        nodes:
          a: {runtime: {kind: python_code, code: "result = 7"}}
        output: a
        """
    )
    path = tmp_path / "flow.yaml"
    path.write_text(text)

    def greet(who: str) -> str:
        return f"hello {who}"

    assert run_workflow(text).output == 7
    assert run_workflow(path).output == 7
    assert run_workflow(str(path)).output == 7
    assert run_workflow(greet, {"who": "ada"})["greet"] == "hello ada"


def test_run_workflow_reports_a_failed_run(run_workflow):
    """A failing node gives a failed result with the error; its result is not there."""
    bad = {"name": "bad", "nodes": {"d": {"runtime": {"kind": "twice"}}}, "output": "d"}

    result = run_workflow(bad, plugins=[TwiceRuntime])

    assert result.status == "failed"
    assert "twice needs an input 'value'" in (result.error or "")
    with pytest.raises(KeyError, match=r"node 'd' has no completed result.*status failed"):
        result["d"]


def test_run_workflow_on_sqlite(run_workflow, tmp_path):
    """store= picks another store URL."""
    result = run_workflow(
        TWICE, {"n": 1}, plugins=[TwiceRuntime], store=f"sqlite:///{tmp_path}/s.db"
    )

    assert result.output == 4
    assert (tmp_path / "s.db").exists()


def test_run_workflow_refuses_what_is_no_workflow(run_workflow):
    """Something that is not a workflow is refused with what it accepts."""
    with pytest.raises(TypeError, match="give a Workflow, a definition dict, YAML"):
        run_workflow(42)


def test_run_workflow_says_to_use_arun_inside_a_loop(run_workflow):
    """Called inside a running loop, run_workflow says to await run_workflow.arun."""

    async def in_a_loop() -> WorkflowResult:
        with pytest.raises(RuntimeError, match=r"await run_workflow\.arun"):
            run_workflow(TWICE, plugins=[TwiceRuntime])
        return await run_workflow.arun(TWICE, {"n": 0}, plugins=[TwiceRuntime])

    assert asyncio.run(in_a_loop()).output == 2


# --- contexts ---------------------------------------------------------------------------------


def test_a_task_context_feeds_setup_runtime(tmp_path):
    """make_task_context builds a real TaskContext a runtime prepares its payload from."""
    runtime = TwiceRuntime(offset=1)
    task = make_task_context(
        runtime, node_id="d", inputs={"value": 2}, outputs={"out": "out.txt"}, run_dir=tmp_path
    )

    payload = asyncio.run(runtime.setup_runtime(task))

    assert isinstance(task, TaskContext)
    assert payload.kwargs == {"value": 3}
    assert task.outputs == {"out": tmp_path / "out.txt"}
    assert task.idempotency_key == "run-test:d"
    assert task.node.runtime is runtime


def test_a_task_context_without_the_input_fails_the_runtime(tmp_path):
    """The runtime's own error comes through, as the engine would see it."""
    task = make_task_context(TwiceRuntime(), node_id="d", run_dir=tmp_path)

    with pytest.raises(TaskError, match="twice needs an input 'value'"):
        asyncio.run(TwiceRuntime().setup_runtime(task))


def test_an_effect_context_feeds_handle(tmp_path):
    """make_effect_context builds a real EffectContext; a built-in handler waits on it."""
    handler_cls = Registry.for_testing().get("effect", "wait_event")
    handler = handler_cls(key="payment")
    ctx = make_effect_context(run_dir=tmp_path, node_id="pay")
    run = RunState(run_id="r1", workflow="wf")

    outcome = asyncio.run(handler.handle(run, Effect("wait_event"), ctx))

    assert outcome.status == EffectStatus.WAITING
    assert outcome.wait is not None
    assert outcome.wait.reason == WaitReason.EVENT
    assert ctx.wait_key == "pay"


def test_an_effect_context_without_runs_says_what_to_pass(tmp_path):
    """ctx.runs of a context made without an engine refuses, naming runs=."""
    ctx = make_effect_context(run_dir=tmp_path)

    assert isinstance(ctx.runs, NoRunLinks)
    with pytest.raises(RuntimeError, match=r"ctx\.runs\.hand_off needs an engine.*pass runs="):
        asyncio.run(ctx.runs.hand_off("next"))


# --- the store contract ----------------------------------------------------------------------


def test_a_store_contract_without_make_store_says_what_to_define(tmp_path):
    """A StoreContract subclass with no make_store fixture fails with how to write one."""
    (tmp_path / "test_mine.py").write_text(
        "from spindle.testing import StoreContract\n\n\nclass TestMine(StoreContract):\n    pass\n"
    )

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )

    assert run.returncode != 0
    assert "TestMine needs a make_store fixture" in run.stdout
