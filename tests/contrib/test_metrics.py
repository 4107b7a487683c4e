"""Prometheus metrics: the ``prometheus`` observer's counters and histograms after real
engine runs, serving them over HTTP, and ``spindle worker --metrics-port`` scraped as
Prometheus would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="the metrics tests need prometheus_client (spindle[metrics])"
)

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from spindle import ConfigError, RetryPolicy, Settings, Workflow  # noqa: E402
from spindle.contrib.metrics import PrometheusObserver, serve  # noqa: E402
from spindle.core.engine import Engine  # noqa: E402
from spindle.core.errors import SpindleError  # noqa: E402
from spindle.plugins.stores.memory import MemoryStore  # noqa: E402


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def value(obs: PrometheusObserver, name: str, **labels: str) -> float | None:
    return obs.collectors.get_sample_value(name, labels)


def drive(obs: PrometheusObserver, wf: Workflow, answer: Any = None) -> Any:
    """Run ``wf`` on a memory store with ``obs``; answer its wait with ``answer`` if given."""

    async def scenario() -> Any:
        async with Engine(MemoryStore(), observers=[obs]) as engine:
            state = await engine.run(wf)
            if answer is not None:
                state = await engine.resume(state.run_id, payload=answer)
            return state

    return run(scenario())


def two_nodes() -> Workflow:
    wf = Workflow("pair")

    @wf.node
    def first() -> int:
        return 1

    wf.task("second", {"kind": "python_code", "code": "result = 2"}, after=["first"])
    wf.output = "second"
    return wf


# --- the observer after engine runs --------------------------------------------------


def test_a_completed_run_is_counted_and_timed_by_workflow_status_and_node_kind():
    """A run of two nodes counts one run started and completed, each node by its kind,
    and observes one run duration and one duration per node."""
    obs = PrometheusObserver()
    assert drive(obs, two_nodes()).status.value == "completed"
    assert value(obs, "spindle_runs_started_total", workflow="pair") == 1
    assert value(obs, "spindle_runs_finished_total", workflow="pair", status="completed") == 1
    assert (
        value(obs, "spindle_run_duration_seconds_count", workflow="pair", status="completed") == 1
    )
    assert value(obs, "spindle_run_duration_seconds_sum", workflow="pair", status="completed") >= 0
    for kind in ("python", "python_code"):
        assert value(obs, "spindle_nodes_started_total", workflow="pair", kind=kind) == 1
        node = {"workflow": "pair", "kind": kind, "status": "completed"}
        assert value(obs, "spindle_nodes_finished_total", **node) == 1
        assert value(obs, "spindle_node_duration_seconds_count", **node) == 1
    assert value(obs, "spindle_runs_finished_total", workflow="pair", status="failed") is None


def test_a_failing_node_counts_a_failed_node_and_a_failed_run():
    """A node that raises is counted failed by its kind, and its run failed."""
    wf = Workflow("broken")

    @wf.node
    def boom() -> None:
        raise RuntimeError("no")

    obs = PrometheusObserver()
    assert drive(obs, wf).status.value == "failed"
    failed = {"workflow": "broken", "kind": "python", "status": "failed"}
    assert value(obs, "spindle_nodes_finished_total", **failed) == 1
    assert value(obs, "spindle_node_duration_seconds_count", **failed) == 1
    assert value(obs, "spindle_runs_finished_total", workflow="broken", status="failed") == 1
    assert value(obs, "spindle_run_duration_seconds_count", workflow="broken", status="failed") == 1


def test_a_retried_attempt_counts_a_retry_and_the_durable_sub_steps_are_counted():
    """A node failing once and passing on its retry counts one retry, two attempts
    started, one node completed, and the sub-step it commits."""
    wf = Workflow("flaky")
    calls: list[int] = []

    @wf.node(retry=RetryPolicy(max_attempts=2, backoff=0))
    def flaky(ctx: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("once")
        return int(ctx.step(lambda: 2))

    obs = PrometheusObserver()
    assert drive(obs, wf).status.value == "completed"
    node = {"workflow": "flaky", "kind": "python"}
    assert value(obs, "spindle_node_retries_total", **node) == 1
    assert value(obs, "spindle_nodes_started_total", **node) == 2
    assert value(obs, "spindle_nodes_finished_total", **node, status="completed") == 1
    assert value(obs, "spindle_nodes_finished_total", **node, status="failed") is None
    assert value(obs, "spindle_node_duration_seconds_count", **node, status="retrying") == 1
    assert value(obs, "spindle_steps_total", workflow="flaky", status="completed") == 1


def test_a_wait_is_counted_by_its_reason_and_the_resume_after_it():
    """A run asking a user counts one wait with reason user; answering it counts a
    resume, the effect node completed by its kind, and the run completed."""
    wf = Workflow("asking")
    wf.effect("approve", {"kind": "ask_user", "prompt": "ok?", "choices": ["yes", "no"]})
    obs = PrometheusObserver()
    assert drive(obs, wf, answer="yes").status.value == "completed"
    assert value(obs, "spindle_waits_total", workflow="asking", reason="user") == 1
    assert value(obs, "spindle_runs_resumed_total", workflow="asking") == 1
    done = {"workflow": "asking", "kind": "ask_user", "status": "completed"}
    assert value(obs, "spindle_nodes_finished_total", **done) == 1
    assert value(obs, "spindle_runs_finished_total", workflow="asking", status="completed") == 1


def test_node_ids_are_labels_only_when_asked_for():
    """With node_label the node metrics carry the node id; by default they do not."""
    labelled, plain = PrometheusObserver(node_label=True), PrometheusObserver()
    drive(labelled, two_nodes())
    drive(plain, two_nodes())
    ok = {"workflow": "pair", "kind": "python", "status": "completed"}
    assert value(labelled, "spindle_nodes_finished_total", **ok, node="first") == 1
    assert value(labelled, "spindle_nodes_finished_total", **ok) is None
    assert value(plain, "spindle_nodes_finished_total", **ok) == 1
    exposed = prometheus_client.generate_latest(plain.collectors).decode()
    assert 'node="' not in exposed and "run_id" not in exposed


def test_custom_buckets_bound_the_histograms():
    """``buckets`` sets the histogram bounds (sorted), plus +Inf."""
    obs = PrometheusObserver(buckets=[5, 0.5])
    drive(obs, two_nodes())
    run_ok = {"workflow": "pair", "status": "completed"}
    bounds = [
        s.labels["le"]
        for family in obs.collectors.collect()
        if family.name == "spindle_run_duration_seconds"
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["status"] == run_ok["status"]
    ]
    assert bounds == ["0.5", "5.0", "+Inf"]


def test_each_observer_keeps_its_own_registry_by_default():
    """Two observers in one process count into registries of their own."""
    a, b = PrometheusObserver(), PrometheusObserver()
    drive(a, two_nodes())
    assert value(a, "spindle_runs_started_total", workflow="pair") == 1
    assert value(b, "spindle_runs_started_total", workflow="pair") is None


def test_the_global_registry_is_used_when_configured_and_only_once():
    """registry = 'global' counts into prometheus_client's default registry; a second
    such observer is refused with an error saying why; unregister frees the names."""
    obs = PrometheusObserver(registry="global")
    try:
        assert obs.collectors is prometheus_client.REGISTRY
        drive(obs, two_nodes())
        got = prometheus_client.REGISTRY.get_sample_value(
            "spindle_runs_started_total", {"workflow": "pair"}
        )
        assert got == 1
        with pytest.raises(ConfigError, match="only one prometheus observer"):
            PrometheusObserver(registry="global")
    finally:
        obs.unregister()
    PrometheusObserver(registry="global").unregister()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"registry": "shared"}, "registry must be 'own' or 'global', got 'shared'"),
        ({"buckets": []}, "buckets must be a non-empty list of positive seconds"),
        ({"buckets": [1, -2]}, "buckets must be a non-empty list of positive seconds"),
    ],
)
def test_bad_options_are_refused_with_what_to_write(options, message):
    """A wrong registry or bucket list raises ConfigError naming the option."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        PrometheusObserver(**options)


def test_a_configured_observer_with_a_bad_option_is_reported_with_its_entry(tmp_path):
    """An [[observers]] entry of kind prometheus with a bad option fails with its position."""
    settings = Settings(observers=[{"kind": "prometheus", "registry": "shared"}])
    with pytest.raises(SpindleError) as info:
        Engine("memory://", settings=settings)
    text = str(info.value)
    assert "[[observers]] #1 (kind 'prometheus')" in text and "'own' or 'global'" in text


def test_the_observer_kind_is_found_by_its_entry_point(tmp_path):
    """``kind = "prometheus"`` in the settings builds a PrometheusObserver."""
    settings = Settings(
        observers=[{"kind": "prometheus", "node_label": True}], runs_dir=str(tmp_path)
    )
    engine = Engine("memory://", settings=settings)
    (binding,) = engine.observers.bindings
    assert isinstance(binding.observer, PrometheusObserver) and binding.observer.node_label


def test_without_prometheus_client_the_error_says_how_to_install_it(monkeypatch):
    """Building the observer or a server without prometheus_client raises ConfigError
    naming pip install 'spindle[metrics]'."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigError, match=r"pip install 'spindle\[metrics\]'"):
        PrometheusObserver()
    with pytest.raises(ConfigError, match=r"pip install 'spindle\[metrics\]'"):
        serve(0)


# --- serving ---------------------------------------------------------------------------


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_serve_exposes_an_observer_s_metrics_over_http():
    """serve(0) binds a free port and serves the registry's metrics at /metrics."""
    obs = PrometheusObserver()
    drive(obs, two_nodes())
    with serve(0, registry=obs.collectors) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/metrics"
        samples = scrape(server.url)
    key = ("spindle_runs_finished_total", (("status", "completed"), ("workflow", "pair")))
    assert samples[key] == 1


def test_serve_on_a_port_in_use_raises_a_config_error_naming_it():
    """A port another socket holds is refused with the address and how to fix it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}: .*free"):
            serve(port)


def test_serve_on_an_address_not_of_this_machine_raises_a_config_error():
    """A host address this machine does not have (TEST-NET-3) cannot be bound."""
    with pytest.raises(ConfigError, match=r"cannot serve metrics on 203\.0\.113\.7:0: "):
        serve(0, host="203.0.113.7")


def test_serve_refuses_a_port_out_of_range():
    """A port past 65535 raises ConfigError with the range."""
    with pytest.raises(ConfigError, match="0 to 65535, got 70000"):
        serve(70000)


def test_closing_the_server_releases_its_port():
    """After close the port can be bound again."""
    server = serve(0)
    port = server.port
    server.close()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


# --- spindle worker --metrics-port ------------------------------------------------------

GREET = """
name: greet
nodes:
  hello:
    runtime: {kind: python_code, code: "result = 'hi'"}
  shout:
    after: [hello]
    runtime: {kind: command, command: "true"}
output: hello
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
    env["SPINDLE_RUNS_DIR"] = str(tmp_path / "runs")
    return env


def spindle(tmp_path: Path, *args: str, python: str | None = None) -> subprocess.CompletedProcess:
    lead = ["-m", "spindle"] if python is None else ["-c", python]
    return subprocess.run(
        [sys.executable, *lead, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'spindle.db'}"


@pytest.fixture
def worker_log(tmp_path: Path) -> Iterator[list[Any]]:
    """Start a worker with ``start(*args)``; it is stopped (SIGTERM, then killed) at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "worker.log"

    def start(*args: str) -> subprocess.Popen[bytes]:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spindle", "worker", *args],
                cwd=tmp_path,
                env=_env(tmp_path),
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        procs.append(proc)
        return proc

    yield [start, log]
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_line(log: Path, proc: subprocess.Popen[bytes], text: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        content = log.read_text()
        for line in content.splitlines():
            if text in line:
                return line
        assert proc.poll() is None, content
        assert time.monotonic() < deadline, f"no {text!r} in: {content}"
        time.sleep(0.05)


def detach(tmp_path: Path, store: str, text: str = GREET) -> str:
    (tmp_path / "wf.yaml").write_text(text)
    started = spindle(tmp_path, "run", "wf.yaml", "--detach", "--json", "--store", store)
    assert started.returncode == 0, started.stderr
    import json

    return str(json.loads(started.stdout)["run_id"])


def scrape_until(url: str, key: Any, want: float) -> dict[Any, float]:
    deadline = time.monotonic() + 60
    while True:
        samples = scrape(url)
        if samples.get(key) == want:
            return samples
        assert time.monotonic() < deadline, samples
        time.sleep(0.1)


@pytest.mark.slow
def test_a_worker_serves_the_metrics_of_the_runs_it_drives(tmp_path, store, worker_log):
    """spindle worker --metrics-port 0 prints the bound port; scraping it shows the
    detached run it drove counted completed, and its nodes by kind."""
    start, log = worker_log
    run_id = detach(tmp_path, store)
    proc = start("--store", store, "--metrics-port", "0", "--poll", "0.1")
    line = wait_for_line(log, proc, "metrics on http://127.0.0.1:")
    url = line.split("metrics on ", 1)[1].strip()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert port > 0
    wait_for_line(log, proc, f"run {run_id} completed")
    key = ("spindle_runs_finished_total", (("status", "completed"), ("workflow", "greet")))
    samples = scrape_until(url, key, 1)
    node = (("kind", "command"), ("status", "completed"), ("workflow", "greet"))
    assert samples[("spindle_nodes_finished_total", node)] == 1
    assert samples[("spindle_runs_started_total", (("workflow", "greet"),))] == 1


@pytest.mark.slow
def test_a_worker_serves_the_prometheus_observer_its_settings_configure(
    tmp_path, store, worker_log
):
    """With a [[observers]] kind = "prometheus" entry the worker serves that observer
    (its node_label option shows) rather than adding one of its own."""
    (tmp_path / "spindle.toml").write_text(
        '[[observers]]\nkind = "prometheus"\nnode_label = true\n'
    )
    start, log = worker_log
    run_id = detach(tmp_path, store)
    proc = start("--store", store, "--metrics-port", "0", "--poll", "0.1")
    url = wait_for_line(log, proc, "metrics on ").split("metrics on ", 1)[1].strip()
    wait_for_line(log, proc, f"run {run_id} completed")
    node = (
        ("kind", "python_code"),
        ("node", "hello"),
        ("status", "completed"),
        ("workflow", "greet"),
    )
    scrape_until(url, ("spindle_nodes_finished_total", node), 1)


def test_a_worker_on_a_port_in_use_exits_2_and_claims_nothing(tmp_path, store):
    """--metrics-port on a taken port fails with exit 2 and the reason, before any
    run is claimed: the detached run stays pending."""
    run_id = detach(tmp_path, store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = spindle(
            tmp_path, "worker", "--once", "--store", store, "--metrics-port", str(port)
        )
    assert result.returncode == 2, result.stderr
    assert f"error: cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    shown = spindle(tmp_path, "show", run_id, "--json", "--store", store)
    assert '"status": "pending"' in shown.stdout


def test_a_worker_without_prometheus_client_exits_2_saying_how_to_install_it(tmp_path, store):
    """--metrics-port without prometheus_client fails with exit 2 and the pip command."""
    without = (
        "import sys; sys.modules['prometheus_client'] = None; "
        "sys.argv[0] = 'spindle'; from spindle.cli import main; main()"
    )
    result = spindle(
        tmp_path, "worker", "--once", "--store", store, "--metrics-port", "0", python=without
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'spindle[metrics]'" in result.stderr


def test_the_metrics_port_must_be_a_port_number(tmp_path, store):
    """--metrics-port outside 0-65535 is a usage error (exit 2) naming the option."""
    result = spindle(tmp_path, "worker", "--once", "--store", store, "--metrics-port", "70000")
    assert result.returncode == 2 and "--metrics-port" in result.stderr


def test_start_times_whose_end_never_comes_are_forgotten_past_a_bound():
    """Attempts this process sees start but never end (another worker ends them) are
    remembered up to a bound: the oldest is forgotten (its end is counted, not timed),
    the newest is still timed."""
    from datetime import UTC, datetime

    from spindle import LifecycleEventType, RunLifecycleEvent
    from spindle.contrib.metrics._observer import _MAX_OPEN

    obs = PrometheusObserver()
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def event(type_: LifecycleEventType, node: int) -> RunLifecycleEvent:
        return RunLifecycleEvent(
            "e", "r", type_, node, at, f"n{node}", workflow="w", node_kind="python"
        )

    async def scenario():
        for node in range(_MAX_OPEN + 1):
            await obs.on_event(event(LifecycleEventType.NODE_STARTED, node))
        await obs.on_event(event(LifecycleEventType.NODE_COMPLETED, 0))
        after_oldest = value(obs, "spindle_node_duration_seconds_count", **done)
        await obs.on_event(event(LifecycleEventType.NODE_COMPLETED, _MAX_OPEN))
        return after_oldest

    done = {"workflow": "w", "kind": "python", "status": "completed"}
    assert run(scenario()) is None
    assert value(obs, "spindle_node_duration_seconds_count", **done) == 1
    assert value(obs, "spindle_nodes_finished_total", **done) == 2
