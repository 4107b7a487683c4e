"""The tests ``spindle new-plugin`` writes: ``tests/test_KIND.py`` for each kind.

They use spindle's pytest plugin (:mod:`spindle.testing`): ``run_workflow``,
``make_task_context`` / ``make_effect_context`` and, for a store, the store
contract suite ``StoreContract``. Tokens as in :mod:`spindle._cli._scaffold_src`.
"""

from __future__ import annotations

__all__ = ["TESTS"]

RUNTIME = '''"""Tests of the @@name@@ runtime, with spindle's pytest plugin (spindle.testing)."""

from __future__ import annotations

import asyncio

import pytest
from spindle import PythonCall, Registry, TaskError, ValidationError, Workflow
from spindle.testing import make_task_context

from spindle_@@name@@.runtime import @@Camel@@Runtime

FLOW = {
    "name": "greet",
    "inputs": {"who": "world"},
    "nodes": {
        "hello": {
            "runtime": {"kind": "@@name@@", "greeting": "hi"},
            "inputs": {"text": "inputs.who"},
        }
    },
    "output": "hello",
}


def test_a_workflow_runs_through_the_runtime(run_workflow):
    """A workflow using kind '@@name@@' completes with the greeting."""
    result = run_workflow(FLOW, {"who": "ada"}, plugins=[@@Camel@@Runtime])

    assert result.status == "completed"
    assert result.output == "hi, ada"
    assert result["hello"] == "hi, ada"


def test_setup_runtime_prepares_the_call(tmp_path):
    """_setup_runtime turns the node's inputs and options into a PythonCall."""
    runtime = @@Camel@@Runtime(shout=True)
    task = make_task_context(runtime, node_id="hello", inputs={"text": "ada"}, run_dir=tmp_path)

    payload = asyncio.run(runtime.setup_runtime(task))

    assert isinstance(payload, PythonCall)
    assert payload.function(**payload.kwargs) == "HELLO, ADA"


def test_a_text_that_is_not_a_string_fails_the_node(tmp_path):
    """A non-string 'text' raises TaskError naming the node."""
    runtime = @@Camel@@Runtime()
    task = make_task_context(runtime, node_id="hello", inputs={"text": 3}, run_dir=tmp_path)

    with pytest.raises(TaskError, match="node 'hello': @@name@@ needs a string 'text'"):
        asyncio.run(runtime.setup_runtime(task))


def test_a_wrong_option_is_reported_with_its_path():
    """A misspelt option fails when the workflow is loaded, naming the node and the field."""
    bad = {"name": "bad", "nodes": {"hello": {"runtime": {"kind": "@@name@@", "greting": "x"}}}}

    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(bad, registry=Registry.for_testing([@@Camel@@Runtime]))

    assert "unknown field 'greting'" in str(info.value)
    assert "@ nodes.hello.runtime.greting" in str(info.value)


def test_a_node_without_text_is_refused_when_loaded():
    """check() reports a node that gives no 'text' input, before anything runs."""
    bad = {"name": "bad", "nodes": {"hello": {"runtime": {"kind": "@@name@@"}}}}

    with pytest.raises(ValidationError, match="needs a node input named 'text'"):
        Workflow.from_dict(bad, registry=Registry.for_testing([@@Camel@@Runtime]))
'''

EXECUTOR = '''"""Tests of the @@name@@ executor, with spindle's pytest plugin (spindle.testing)."""

from __future__ import annotations

import asyncio

from spindle import PythonCall, Registry, Workflow
from spindle.testing import make_task_context

from spindle_@@name@@.executor import @@Camel@@Executor


def test_a_python_node_runs_on_the_executor(run_workflow):
    """A node that names executor '@@name@@' runs its function there."""
    registry = Registry.for_testing([@@Camel@@Executor])
    workflow = Workflow("square", inputs={"n": 2}, registry=registry)

    @workflow.node(executor={"kind": "@@name@@"})
    def square(n: int) -> int:
        return n * n

    workflow.output = "square"

    result = run_workflow(workflow, {"n": 3}, registry=registry)

    assert result.status == "completed"
    assert result.output == 9


def test_execute_reports_the_value_and_the_details(tmp_path):
    """_execute returns the function's value in an Outcome, sync or async."""

    def double(n: int) -> int:
        return n * 2

    async def add(a: int, b: int) -> int:
        return a + b

    executor = @@Camel@@Executor(threads=False)
    task = make_task_context(node_id="sum", run_dir=tmp_path, executor=executor)

    sync = asyncio.run(executor.execute(PythonCall(function=double, kwargs={"n": 4}), task))
    both = asyncio.run(
        executor.execute(PythonCall(function=add, kwargs={"a": 1, "b": 2}, is_async=True), task)
    )

    assert (sync.value, sync.details) == (8, {"executor": "@@name@@", "attempt": 1})
    assert both.value == 3
'''

EFFECT = '''"""Tests of the @@name@@ effect, with spindle's pytest plugin (spindle.testing)."""

from __future__ import annotations

import asyncio

import pytest
from spindle import Effect, EffectStatus, InvalidAnswer, RunState
from spindle.testing import make_effect_context

from spindle_@@name@@.effect import @@Camel@@Handler


def flow(**options):
    effect = {"kind": "@@name@@", **options}
    return {"name": "ask", "nodes": {"ok": {"effect": effect}}, "output": "ok"}


def test_a_run_waits_for_the_answer(run_workflow):
    """A node of kind '@@name@@' makes the run wait, with the prompt and the choices."""
    result = run_workflow(flow(prompt="ship it?"), plugins=[@@Camel@@Handler])

    assert result.status == "waiting"
    assert result.waits[0].prompt == "ship it?"
    assert result.waits[0].choices == ["yes", "no"]


def test_auto_approve_completes_at_once(run_workflow):
    """auto_approve resolves the effect now."""
    result = run_workflow(flow(auto_approve=True), plugins=[@@Camel@@Handler])

    assert result.status == "completed"
    assert result.output == {"approved": True}


def test_handle_waits_under_the_context_key(tmp_path):
    """handle() returns a waiting outcome keyed by ctx.wait_key."""
    ctx = make_effect_context(run_dir=tmp_path, node_id="ok")
    run = RunState(run_id="r1", workflow="ask")

    outcome = asyncio.run(@@Camel@@Handler().handle(run, Effect("@@name@@"), ctx))

    assert outcome.status == EffectStatus.WAITING
    assert outcome.wait is not None and outcome.wait.key == "ok"


def test_accept_takes_yes_or_no_and_refuses_the_rest(tmp_path):
    """accept() records yes/no and refuses any other answer with how to answer."""
    ctx = make_effect_context(run_dir=tmp_path, node_id="ok")
    run = RunState(run_id="r1", workflow="ask")
    outcome = asyncio.run(@@Camel@@Handler().handle(run, Effect("@@name@@"), ctx))
    wait = outcome.wait
    assert wait is not None

    assert @@Camel@@Handler.accept(wait, "yes") == {"approved": True}
    with pytest.raises(InvalidAnswer, match="answer 'ok' with 'yes' or 'no'"):
        @@Camel@@Handler.accept(wait, "maybe")
'''

STORE = '''"""Tests of the @@name@@ store: spindle's whole store contract suite, and a run on it."""

from __future__ import annotations

import pytest
from spindle import ConfigError
from spindle.testing import StoreContract

from spindle_@@name@@.store import @@Camel@@Store


class Test@@Camel@@Store(StoreContract):
    """The @@name@@ store passes every test of the store contract."""

    # Everything lives in this process's memory, so a second store built from
    # the same URL sees nothing; make it True once the store keeps a file or a
    # server, and the tests that reopen the medium run too.
    shared_medium = False

    @pytest.fixture
    def make_store(self):
        """A new, unopened store each call (for a store on disk: a new file under tmp_path)."""
        return lambda: @@Camel@@Store.from_url("@@name@@://")


def test_a_workflow_runs_on_the_store(run_workflow):
    """An engine built on '@@name@@://' runs a workflow to the end."""

    def hello(who: str) -> str:
        return f"hello {who}"

    result = run_workflow(hello, {"who": "ada"}, store="@@name@@://", plugins=[@@Camel@@Store])

    assert result.status == "completed"
    assert result.output == "hello ada"


def test_an_unknown_url_option_is_refused():
    """A URL option the store does not know raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        @@Camel@@Store.from_url("@@name@@://?colour=red")
'''

OBSERVER = '''"""Tests of the @@name@@ observer, with spindle's pytest plugin (spindle.testing)."""

from __future__ import annotations

import json

import pytest
from spindle import Registry, ValidationError

from spindle_@@name@@.observer import @@Camel@@Observer


def test_selected_events_are_written(run_workflow, tmp_path):
    """Only the selected event types reach the file, one JSON line each."""
    path = tmp_path / "events.jsonl"
    observer = @@Camel@@Observer(path=str(path), events=["run_completed"])

    def hello() -> str:
        return "hi"

    result = run_workflow(hello, observers=[observer])

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"run_id": result.run_id, "type": "run_completed"}]


def test_a_missing_path_is_reported():
    """Configured without its required option, the observer is refused with the field."""
    registry = Registry.for_testing([@@Camel@@Observer])

    with pytest.raises(ValidationError, match="path"):
        registry.create("observer", {"kind": "@@name@@"})
'''

MIDDLEWARE = '''"""Tests of the @@name@@ middleware, with spindle's pytest plugin."""

from __future__ import annotations

import pytest
from spindle import Registry, ValidationError

from spindle_@@name@@.middleware import @@Camel@@Middleware


def test_string_results_get_the_prefix(run_workflow):
    """The layer changes what call_next returned: the node's result."""

    def hello() -> str:
        return "hi"

    result = run_workflow(hello, middleware=[@@Camel@@Middleware(prefix="> ")])

    assert result.output == "> hi"


def test_other_results_pass_through(run_workflow):
    """A result that is not a string comes back unchanged."""

    def number() -> int:
        return 7

    assert run_workflow(number, middleware=[@@Camel@@Middleware(prefix="> ")]).output == 7


def test_the_prefix_is_required():
    """Configured without 'prefix' (a kw_only field), the layer is refused."""
    registry = Registry.for_testing([@@Camel@@Middleware])

    with pytest.raises(ValidationError, match="prefix"):
        registry.create("middleware", {"kind": "@@name@@"})
'''

HOOKS = '''"""Tests of the @@name@@ hook module, with spindle's pytest plugin (spindle.testing)."""

from __future__ import annotations

from spindle_@@name@@ import hooks


def test_a_finished_run_is_labelled_settled(run_workflow):
    """spindle_on_finish sets the disposition of a run that left nothing behind."""

    def hello() -> str:
        return "hi"

    result = run_workflow(hello, hooks=[hooks])

    assert result.status == "completed"
    assert result.state.disposition == "@@name@@: settled"


def test_without_the_module_nothing_is_labelled(run_workflow):
    """Installed hook modules are kept out of run_workflow unless given: no label."""

    def hello() -> str:
        return "hi"

    assert run_workflow(hello).state.disposition is None
'''

#: kind -> the source of ``tests/test_KIND.py``.
TESTS: dict[str, str] = {
    "runtime": RUNTIME,
    "executor": EXECUTOR,
    "effect": EFFECT,
    "store": STORE,
    "observer": OBSERVER,
    "middleware": MIDDLEWARE,
    "hooks": HOOKS,
}
