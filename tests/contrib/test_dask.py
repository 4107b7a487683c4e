"""The Dask executor against real ``distributed`` clusters on loopback.

One LocalCluster (two worker processes offering ``cpu: 4, memory: 8GiB``) is
shared by the module and reached by its address; the tests of the cluster
the executor starts on demand start their own. Task functions live in
``tests/contrib/dask_tasks.py``, which the workers import.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed", reason="the Dask tests need dask.distributed")

from spindle import Settings, Workflow  # noqa: E402 - after the skip
from spindle.contrib.dask import DaskExecutor, _cluster  # noqa: E402
from spindle.contrib.dask._worker import run_request  # noqa: E402
from spindle.core.engine import Engine  # noqa: E402
from spindle.core.errors import TaskError, ValidationError  # noqa: E402
from spindle.core.model import RunStatus, StepKind  # noqa: E402
from spindle.core.plugin import Registry  # noqa: E402
from spindle.core.workflow import load_workflow_text  # noqa: E402
from tests.contrib import dask_tasks  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GiB = 2**30


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A LocalCluster of two worker processes, each offering cpu=4 and memory=8GiB."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        resources={"cpu": 4, "memory": 8 * GiB},
    ) as c:
        yield c


@pytest.fixture
def address(cluster: Any) -> str:
    return str(cluster.scheduler_address)


def engine(tmp_path: Path, **settings: Any) -> Engine:
    return Engine("memory://", settings=Settings(runs_dir=str(tmp_path / "runs"), **settings))


def one_node(
    fn: Any, executor: dict[str, Any], inputs: dict[str, Any] | None = None, **options: Any
) -> Workflow:
    """A workflow of one node ``n`` calling ``fn`` on the dask executor; ``inputs`` its
    workflow inputs (their defaults), which ``fn``'s parameters of the same name take."""
    wf = Workflow("dask", inputs=inputs or {})
    wf.node(fn, name="n", executor={"kind": "dask", **executor}, **options)
    wf.output = "n"
    return wf


async def run_once(tmp_path: Path, wf: Workflow, inputs: dict[str, Any], **settings: Any) -> Any:
    async with engine(tmp_path, **settings) as e:
        state = await e.run(wf, inputs)
        return state, await e.ledger(state.run_id)


async def until(check: Any, what: str, tries: int = 400) -> None:
    """Poll ``check()`` (sync or async) until it is true; fail naming ``what`` otherwise."""
    for _ in range(tries):
        done = check()
        if asyncio.iscoroutine(done):
            done = await done
        if done:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def spindle_tasks(cluster: Any, run_id: str) -> list[str]:
    """The keys of this run's tasks the scheduler still knows."""
    return [k for k in list(cluster.scheduler.tasks) if str(k).startswith(f"spindle-{run_id}-")]


# --- running nodes ------------------------------------------------------------------------


def test_a_yaml_workflow_runs_on_a_local_cluster_started_on_demand(tmp_path):
    """A python node with executor dask and no address runs in a worker process of a
    LocalCluster the executor starts, which closes with the engine."""
    text = textwrap.dedent(
        """
        name: on-demand
        inputs: {who: ada}
        nodes:
          hello:
            runtime: {kind: python, function: "tests.contrib.dask_tasks:where"}
            executor: {kind: dask, n_workers: 1, threads_per_worker: 1}
            inputs: {text: inputs.who}
        output: hello
        """
    )
    wf = load_workflow_text(text, filename=str(tmp_path / "flow.yaml"))

    async def main() -> Any:
        async with engine(tmp_path) as e:
            state = await e.run(wf, {})
            held = dict(_cluster._clusters)
        return state, held

    state, held = asyncio.run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output["text"] == "ADA"
    assert state.output["pid"] != os.getpid()
    assert state.output["worker"].startswith("tcp://127.0.0.1:")
    (started,) = held.values()
    assert started.address.startswith("tcp://127.0.0.1:")
    assert _cluster._clusters == {}  # closed with the engine


def test_nodes_run_on_the_cluster_given_by_its_scheduler_address(tmp_path, cluster, address):
    """With address set, the node runs on one of that cluster's workers."""
    wf = one_node(dask_tasks.where, {"address": address}, {"text": ""})
    state, _ = asyncio.run(run_once(tmp_path, wf, {"text": "x"}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output["worker"] in cluster.scheduler.workers


def test_node_resources_become_the_dask_task_resources(tmp_path, address):
    """resources: {cpu: 2, memory: 4GiB} is asked of the scheduler as cpu=2, memory=4*2**30."""
    wf = one_node(dask_tasks.granted, {"address": address}, resources={"cpu": 2, "memory": "4GiB"})
    state, _ = asyncio.run(run_once(tmp_path, wf, {}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == {"cpu": 2, "memory": 4 * GiB}


def test_resources_no_worker_offers_fail_the_node_naming_what_workers_offer(tmp_path, address):
    """A node asking for a gpu of a cluster without one fails at once, saying what is offered."""
    wf = one_node(dask_tasks.granted, {"address": address}, resources={"gpu": 1})
    state, _ = asyncio.run(run_once(tmp_path, wf, {}))
    assert state.status == RunStatus.FAILED
    assert "no worker of the Dask cluster" in state.error
    assert "(gpu=1)" in state.error
    assert f"cpu=4, memory={8 * GiB}" in state.error


def test_a_large_result_comes_back_through_the_artifact_store(tmp_path, address):
    """A result over result_inline_limit is kept as an artifact; the ledger holds its reference."""
    wf = one_node(dask_tasks.big, {"address": address}, {"size": 0})

    async def main() -> Any:
        async with engine(tmp_path, result_inline_limit=1000) as e:
            state = await e.run(wf, {"size": 200_000})
            return state, await e.ledger(state.run_id), await e.store.run_artifacts(state.run_id)

    state, records, artifacts = asyncio.run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == "x" * 200_000
    (done,) = [r for r in records if r.node_id == "n" and r.kind == StepKind.NODE and r.result]
    assert set(done.result) == {"$artifact"}
    assert [a.name for a in artifacts] == ["n.result"]


def test_durable_sub_steps_on_a_worker_are_recorded_and_replayed(tmp_path, address):
    """ctx.step on a worker of the engine's machine is committed by the engine; the retried
    node replays it instead of running it again."""
    log = str(tmp_path / "steps.log")
    wf = one_node(
        dask_tasks.steps_then_fail, {"address": address}, {"log": ""}, retry={"max_attempts": 2}
    )
    state, records = asyncio.run(run_once(tmp_path, wf, {"log": log}))
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output == ["a", "b"]
    assert [r.name for r in records if r.kind == StepKind.CALL] == ["first", "second"]
    assert Path(log).read_text().splitlines() == ["a", "b"]  # each ran once


def test_a_cluster_factory_is_started_once_and_closed_with_the_engine(tmp_path):
    """cluster: "module:function" runs nodes on the cluster the function returns (as a
    dask-jobqueue SLURMCluster would be), closed when the engine closes."""
    wf = one_node(
        dask_tasks.where, {"cluster": "tests.contrib.dask_tasks:small_cluster"}, {"text": ""}
    )

    async def main() -> Any:
        async with engine(tmp_path) as e:
            first = await e.run(wf, {"text": "a"})
            second = await e.run(wf, {"text": "b"})
            held = list(_cluster._clusters)
        return first, second, held

    first, second, held = asyncio.run(main())
    assert first.status == second.status == RunStatus.COMPLETED, first.error
    assert first.output["worker"] == second.output["worker"]  # one cluster, started once
    assert held == ["factory:tests.contrib.dask_tasks:small_cluster"]
    assert _cluster._clusters == {}


def test_a_cluster_factory_returning_no_cluster_fails_the_node_saying_so(tmp_path):
    """A factory whose result has no scheduler_address fails the node with what to return."""
    wf = one_node(
        dask_tasks.big, {"cluster": "tests.contrib.dask_tasks:not_a_cluster"}, {"size": 0}
    )
    state, _ = asyncio.run(run_once(tmp_path, wf, {}))
    assert state.status == RunStatus.FAILED
    assert "the cluster factory returned str, which has no scheduler_address" in state.error


def test_sub_steps_on_a_worker_of_another_machine_fail_saying_why(tmp_path):
    """A worker that cannot open the engine's sub-step socket refuses the call up front."""
    with pytest.raises(TaskError, match=r"durable sub-steps .* cannot open; run such nodes"):
        run_request(
            b"",
            node_id="n",
            parent_path=[],
            channel=str(tmp_path / "elsewhere" / "steps"),
            engine_host="engine-host",
        )


# --- cancelling and losing workers ----------------------------------------------------------


def test_cancelling_a_run_cancels_its_dask_future(tmp_path, cluster, address):
    """A cancel of the run while its node runs on a worker removes the task from the
    scheduler and ends the run cancelled."""
    started, release = tmp_path / "started", tmp_path / "release"
    wf = one_node(dask_tasks.wait_for_release, {"address": address}, {"started": "", "release": ""})

    async def main() -> Any:
        async with engine(tmp_path) as e:
            driving = asyncio.ensure_future(
                e.run(wf, {"started": str(started), "release": str(release)}, run_id="r1")
            )
            await until(started.exists, "the task to start on a worker")
            assert spindle_tasks(cluster, "r1")
            cancelled = await e.cancel("r1", "not needed")
            driven = await driving
            await until(lambda: not spindle_tasks(cluster, "r1"), "the scheduler to drop it")
            return cancelled, driven

    try:
        cancelled, driven = asyncio.run(main())
    finally:
        release.touch()  # the worker thread runs on until released: free it
    assert cancelled.status == driven.status == RunStatus.CANCELLED


def test_a_node_timeout_cancels_its_dask_future(tmp_path, cluster, address):
    """A node past its timeout fails, and the scheduler forgets its task."""
    started, release = tmp_path / "started", tmp_path / "release"
    wf = one_node(
        dask_tasks.wait_for_release,
        {"address": address},
        {"started": "", "release": ""},
        timeout=0.5,
    )

    async def main() -> Any:
        async with engine(tmp_path) as e:
            state = await e.run(wf, {"started": str(started), "release": str(release)}, run_id="t1")
            await until(lambda: not spindle_tasks(cluster, "t1"), "the scheduler to drop it")
            return state

    try:
        state = asyncio.run(main())
    finally:
        release.touch()
    assert state.status == RunStatus.FAILED
    assert "timeout" in state.error or "timed out" in state.error


def test_a_worker_lost_mid_task_is_retried_by_the_node_retry_policy(tmp_path):
    """Killing the worker process running a node fails the attempt with WorkerLost; the
    retry policy runs it again, on a worker that is alive."""
    started = tmp_path / "started"
    wf = one_node(
        dask_tasks.dies_once,
        {"n_workers": 2, "threads_per_worker": 1},
        {"started": ""},
        retry={"max_attempts": 2, "backoff": 0},
    )

    async def main() -> Any:
        async with engine(tmp_path) as e:
            driving = asyncio.ensure_future(e.run(wf, {"started": str(started)}))
            await until(started.exists, "the task to start on a worker")
            killed = int(started.read_text())
            os.kill(killed, signal.SIGKILL)
            state = await driving
            return killed, state, await e.ledger(state.run_id)

    killed, state, records = asyncio.run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert state.output not in (killed, -1)
    (retry,) = [r for r in records if r.kind == StepKind.RETRY]
    assert "the Dask worker running 'dies_once' died" in (retry.error or "")


# --- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"address": "http://127.0.0.1:8786"}, "unknown protocol 'http'"),
        ({"address": "two words"}, "is not a Dask scheduler address"),
        ({"worker_resources": {"memory": "4Gx"}}, "resource 'memory': '4Gx' is not a size"),
        ({"address": "tcp://127.0.0.1:8786", "n_workers": 2}, "n_workers is an option of the"),
        ({"address": "tcp://127.0.0.1:8786", "cluster": "m:f"}, "not both"),
    ],
)
def test_bad_executor_options_are_refused_when_the_workflow_loads(tmp_path, options, message):
    """A malformed address, a bad size or LocalCluster options with an address are errors
    naming the node's executor."""
    text = textwrap.dedent(
        f"""
        name: bad
        nodes:
          n:
            runtime: {{kind: python, function: "tests.contrib.dask_tasks:big"}}
            executor: {json.dumps({"kind": "dask", **options})}
            inputs: {{size: {{value: 1}}}}
        """
    )
    with pytest.raises(ValidationError) as info:
        load_workflow_text(text, filename=str(tmp_path / "flow.yaml"))
    assert message in str(info.value)
    assert "@ nodes.n.executor" in str(info.value)


def test_a_bad_memory_size_in_node_resources_is_refused_when_the_workflow_loads(tmp_path):
    """resources: {memory: 4 gigs} is reported with its path before anything runs."""
    wf = Workflow("bad", inputs={"size": 0})
    with pytest.raises(ValidationError) as info:
        wf.node(dask_tasks.big, name="n", executor={"kind": "dask"}, resources={"memory": "4 gigs"})
        wf.validate()
    assert "resource 'memory': '4 gigs' is not a size" in str(info.value)
    assert "@ nodes.n.resources.memory" in str(info.value)


def test_an_unreachable_scheduler_fails_the_node_saying_where_it_looked(tmp_path):
    """A scheduler address nothing listens on fails the node with the address and a hint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    wf = one_node(
        dask_tasks.big, {"address": f"tcp://127.0.0.1:{port}", "connect_timeout": 1}, {"size": 0}
    )
    state, _ = asyncio.run(run_once(tmp_path, wf, {"size": 1}))
    assert state.status == RunStatus.FAILED
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in state.error
    assert "is `dask scheduler` running there" in state.error


def test_the_executor_is_registered_under_the_executor_entry_point_group():
    """kind: dask is found through the spindle.executor entry points, like a third party's."""
    executor = Registry().create("executor", {"kind": "dask", "n_workers": 1})
    assert isinstance(executor, DaskExecutor)


# --- the command line -------------------------------------------------------------------------


def test_spindle_run_drives_a_workflow_on_the_dask_executor(tmp_path):
    """`spindle run` in a subprocess runs a dask node on a LocalCluster it starts, and exits."""
    (tmp_path / "tasks.py").write_text(
        "import os\n\ndef pid(text):\n    return {'text': text, 'pid': os.getpid()}\n"
    )
    (tmp_path / "flow.yaml").write_text(
        textwrap.dedent(
            """
            name: cli
            nodes:
              n:
                runtime: {kind: python, function: "tasks:pid"}
                executor:
                  kind: dask
                  n_workers: 1
                  threads_per_worker: 1
                  worker_resources: {memory: 1GiB}
                inputs: {text: {value: hi}}
                resources: {memory: 1MB}
            output: n
            """
        )
    )
    (tmp_path / "spindle.toml").write_text('store = "sqlite:///runs.db"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "run", "flow.yaml", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed"
    assert doc["output"]["text"] == "hi"
