"""The OpenTelemetry observer against the real SDK, with its in-memory exporter.

Spans are asserted by name, parent and attributes. The propagation tests run
real child processes (a subprocess, a process pool, a Dask LocalCluster) whose
code reads ``TRACEPARENT``; the resume test answers a run's wait from another
Python process on the same SQLite file and checks that both processes' spans
are one trace.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel tests need opentelemetry-sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from spindle import Settings, Workflow
from spindle.contrib.otel import TRACE_LABEL, OtelObserver
from spindle.core.engine import Engine
from spindle.core.errors import ConfigError
from spindle.core.model import RunStatus
from spindle.core.workflow import load_workflow_text
from tests.contrib import otel_tasks

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A TracerProvider whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.spans]}"
        return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def make_engine(tmp_path: Path, recorder: Recorder, store: str = "memory://") -> Engine:
    return Engine(
        store,
        settings=Settings(runs_dir=str(tmp_path / "runs")),
        observers=[OtelObserver.using(recorder.provider)],
    )


def run_flow(tmp_path: Path, recorder: Recorder, wf: Workflow, **inputs: Any) -> Any:
    async def main() -> Any:
        async with make_engine(tmp_path, recorder) as engine:
            return await engine.run(wf, inputs)

    return asyncio.run(main())


# --- the span model ----------------------------------------------------------------------


def test_a_run_is_a_span_with_node_and_sub_step_spans_under_it(tmp_path):
    """A run span, a child span per node and a sub-step span under its node, each named
    and with the workflow, run id, node, attempt, kind and status attributes."""
    wf = Workflow("orders")

    @wf.node
    def fetch(ctx):
        return ctx.step(lambda: 41, name="load")

    @wf.node
    def total(fetch):
        return fetch + 1

    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED

    run = recorder.one("spindle.run orders")
    fetch_span = recorder.one("spindle.node fetch")
    total_span = recorder.one("spindle.node total")
    step = recorder.one("spindle.step load")
    assert parent_of(run) is None
    assert parent_of(fetch_span) == parent_of(total_span) == run.context.span_id
    assert parent_of(step) == fetch_span.context.span_id
    assert {s.context.trace_id for s in recorder.spans} == {run.context.trace_id}
    assert dict(run.attributes or {}) == {
        "spindle.kind": "run",
        "spindle.workflow": "orders",
        "spindle.run_id": state.run_id,
        "spindle.status": "completed",
        "spindle.resumed": False,
    }
    assert dict(fetch_span.attributes or {}) == {
        "spindle.kind": "node",
        "spindle.workflow": "orders",
        "spindle.run_id": state.run_id,
        "spindle.node": "fetch",
        "spindle.attempt": 1,
        "spindle.status": "completed",
    }
    assert step.attributes is not None
    assert step.attributes["spindle.kind"] == "step"
    assert step.attributes["spindle.step"] == "load"
    assert step.attributes["spindle.node"] == "fetch"
    assert run.status.status_code == StatusCode.OK
    # Spans carry the events' own times: a child lies within its parent.
    assert run.start_time <= fetch_span.start_time <= step.start_time
    assert step.end_time <= fetch_span.end_time <= total_span.start_time <= run.end_time
    # The run keeps its span's trace context, for a resume elsewhere.
    assert state.labels[TRACE_LABEL] == "00-{}-{}-{:02x}".format(
        *hex_ids(run), int(run.context.trace_flags)
    )


def test_a_failing_node_records_its_error_on_its_span_and_the_runs(tmp_path):
    """A node that raises ends its span with status ERROR and an exception event naming
    the error's type and message; the failed run's span is ERROR too."""
    wf = Workflow("breaks")

    @wf.node
    def explode():
        raise ValueError("the flux capacitor is empty")

    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.FAILED
    node = recorder.one("spindle.node explode")
    assert node.status.status_code == StatusCode.ERROR
    assert "the flux capacitor is empty" in (node.status.description or "")
    (event,) = [e for e in node.events if e.name == "exception"]
    assert dict(event.attributes or {}) == {
        "exception.type": "ValueError",
        "exception.message": "the flux capacitor is empty",
    }
    assert node.attributes is not None and node.attributes["spindle.status"] == "failed"
    run = recorder.one("spindle.run breaks")
    assert run.status.status_code == StatusCode.ERROR
    assert run.attributes is not None and run.attributes["spindle.status"] == "failed"


def test_a_retried_node_has_a_span_per_attempt_with_a_retry_event(tmp_path):
    """Each attempt of a retried node is its own span; the failed one carries a retry
    event with its error and ends with status ERROR."""
    marker = tmp_path / "tried"
    wf = Workflow("flaky")

    @wf.node(retry={"max_attempts": 2, "backoff": 0.01})
    def shaky():
        if not marker.exists():
            marker.write_text("once")
            raise ConnectionError("try again")
        return "ok"

    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error
    first, second = sorted(recorder.named("spindle.node shaky"), key=lambda s: s.start_time)
    assert first.attributes is not None and second.attributes is not None
    assert (first.attributes["spindle.attempt"], second.attributes["spindle.attempt"]) == (1, 2)
    assert first.attributes["spindle.status"] == "retrying"
    assert second.attributes["spindle.status"] == "completed"
    (retry,) = [e for e in first.events if e.name == "retry"]
    assert retry.attributes is not None
    assert retry.attributes["spindle.attempt"] == 1
    assert retry.attributes["exception.type"] == "ConnectionError"
    assert retry.attributes["exception.message"] == "try again"
    assert first.status.status_code == StatusCode.ERROR
    # A short backoff is slept in the drive: one run span holds both attempts.
    run = recorder.one("spindle.run flaky")
    assert parent_of(first) == parent_of(second) == run.context.span_id


def test_a_run_started_inside_a_span_joins_that_trace(tmp_path):
    """A run started while a host span is current is a child of it."""
    wf = Workflow("joined")

    @wf.node
    def one():
        return 1

    recorder = Recorder()
    tracer = recorder.provider.get_tracer("host")

    async def main() -> Any:
        async with make_engine(tmp_path, recorder) as engine:
            with tracer.start_as_current_span("handle request"):
                return await engine.run(wf)

    asyncio.run(main())
    request = recorder.one("handle request")
    run = recorder.one("spindle.run joined")
    assert parent_of(run) == request.context.span_id
    assert run.context.trace_id == request.context.trace_id


# --- trace context in other processes -----------------------------------------------------


def test_a_subprocess_child_span_joins_its_node_span(tmp_path):
    """A Python function run by the subprocess executor starts a span from TRACEPARENT
    that is a child of its node's span; a command sees the same TRACEPARENT."""
    wf = Workflow("spawn")
    wf.node(otel_tasks.child_span, name="child", executor={"kind": "subprocess"})
    wf.task(
        "shell",
        {"kind": "command", "command": 'printf %s "$TRACEPARENT"'},
        executor={"kind": "subprocess"},
    )

    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error

    node = recorder.one("spindle.node child")
    trace_id, span_id = hex_ids(node)
    child = state.output["child"]
    assert child["pid"] != os.getpid()
    assert child["name"] == "child work"
    assert (child["trace_id"], child["parent_id"]) == (trace_id, span_id)
    shell_trace, shell_span = hex_ids(recorder.one("spindle.node shell"))
    assert state.output["shell"].startswith(f"00-{shell_trace}-{shell_span}-")


def test_a_process_pool_worker_gets_the_node_spans_traceparent(tmp_path):
    """A function on the process pool sees its node span's TRACEPARENT in os.environ and
    in ctx.environment()."""
    wf = Workflow("pool")
    wf.node(otel_tasks.traceparent, name="crunch", executor={"kind": "process_pool"})
    wf.output = "crunch"
    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error
    trace_id, span_id = hex_ids(recorder.one("spindle.node crunch"))
    assert state.output["pid"] != os.getpid()
    assert state.output["environ"] == state.output["ctx"]
    assert state.output["environ"].startswith(f"00-{trace_id}-{span_id}-")


def test_a_dask_worker_gets_the_node_spans_traceparent(tmp_path):
    """A function on a Dask LocalCluster's worker process sees its node span's
    TRACEPARENT, and a span it starts from it is a child of the node span."""
    pytest.importorskip("distributed", reason="the Dask test needs dask.distributed")
    wf = Workflow("dask")
    dask = {"kind": "dask", "n_workers": 1, "threads_per_worker": 1}
    wf.node(otel_tasks.traceparent, name="seen", executor=dask)
    wf.node(otel_tasks.child_span, name="joined", executor=dask)
    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error
    trace_id, span_id = hex_ids(recorder.one("spindle.node seen"))
    seen = state.output["seen"]
    assert seen["pid"] != os.getpid()
    assert seen["environ"] == seen["ctx"]
    assert seen["environ"].startswith(f"00-{trace_id}-{span_id}-")
    joined = state.output["joined"]
    assert (joined["trace_id"], joined["parent_id"]) == hex_ids(recorder.one("spindle.node joined"))


# --- one trace across a wait and a resume in another process --------------------------------

WAITING_FLOW = """
name: approve
nodes:
  prepare:
    runtime: {kind: python_code, code: "result = 1"}
  gate:
    effect: {kind: wait_event, key: go}
    after: [prepare]
  finish:
    runtime: {kind: python_code, code: "result = 'done'"}
    after: [gate]
output: finish
"""

# The other process: a fresh engine on the same SQLite file answers the wait, and
# prints the spans its own in-memory exporter received.
RESUMER = """
import asyncio, json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spindle import Settings
from spindle.contrib.otel import OtelObserver
from spindle.core.engine import Engine
from spindle.core.errors import ConfigError

db, runs, run_id = sys.argv[1:4]
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))

async def main():
    engine = Engine(
        f"sqlite:///{db}",
        settings=Settings(runs_dir=runs),
        observers=[OtelObserver.using(provider)],
    )
    async with engine:
        state = await engine.resume(run_id, "gate", {"ok": True})
    return state.status.value

status = asyncio.run(main())
spans = [
    {
        "name": s.name,
        "trace_id": f"{s.context.trace_id:032x}",
        "span_id": f"{s.context.span_id:016x}",
        "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
        "attributes": dict(s.attributes),
    }
    for s in exporter.get_finished_spans()
]
print(json.dumps({"status": status, "spans": spans}))
"""


def test_a_run_resumed_in_another_process_continues_its_trace(tmp_path):
    """A run that waits keeps its run span's trace context; answered by another process
    (a new engine on the same SQLite file), its new spans are in the same trace, the
    resumed run span a child of the first one."""
    db = tmp_path / "spindle.db"
    wf = load_workflow_text(WAITING_FLOW, filename=str(tmp_path / "approve.yaml"))
    recorder = Recorder()

    async def first() -> Any:
        async with make_engine(tmp_path, recorder, f"sqlite:///{db}") as engine:
            return await engine.run(wf)

    waiting = asyncio.run(first())
    assert waiting.status == RunStatus.WAITING
    run = recorder.one("spindle.run approve")
    gate = recorder.one("spindle.node gate")
    assert run.attributes is not None and run.attributes["spindle.status"] == "waiting"
    assert [e.name for e in gate.events] == ["wait"]
    assert [e.name for e in run.events] == ["wait"]
    trace_id, run_span = hex_ids(run)

    done = subprocess.run(
        [sys.executable, "-c", RESUMER, str(db), str(tmp_path / "runs"), waiting.run_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "completed"
    spans = {s["name"]: s for s in report["spans"]}
    assert set(spans) == {"spindle.run approve", "spindle.node gate", "spindle.node finish"}
    assert {s["trace_id"] for s in report["spans"]} == {trace_id}
    resumed = spans["spindle.run approve"]
    assert resumed["parent_id"] == run_span
    assert resumed["attributes"]["spindle.resumed"] is True
    assert resumed["attributes"]["spindle.status"] == "completed"
    assert spans["spindle.node finish"]["parent_id"] == resumed["span_id"]
    assert spans["spindle.node gate"]["attributes"]["spindle.status"] == "completed"

    async def stored() -> Any:
        async with Engine(f"sqlite:///{db}") as engine:
            return await engine.get_run(waiting.run_id)

    # The run keeps the first span's context: a later resume parents to it as well.
    assert asyncio.run(stored()).labels[TRACE_LABEL].startswith(f"00-{trace_id}-{run_span}-")


# --- configuration ---------------------------------------------------------------------------


def settings_engine(tmp_path: Path, **options: Any) -> Engine:
    return Engine(
        "memory://",
        settings=Settings(runs_dir=str(tmp_path / "runs"), observers=[{"kind": "otel", **options}]),
    )


def test_without_opentelemetry_the_observer_says_what_to_install(tmp_path, monkeypatch):
    """Configuring kind otel without the OpenTelemetry packages is a ConfigError that names
    pip install 'spindle[otel]'."""
    # A None entry makes the import fail as it does when the package is absent.
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with pytest.raises(ConfigError, match=r"pip install 'spindle\[otel\]'") as info:
        settings_engine(tmp_path)
    assert "[[observers]] #1 (kind 'otel')" in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exporter": "zipkin"}, "exporter must be one of 'none', 'console', 'otlp', got 'zipkin'"),
        ({"endpoint": "http://collector:4318"}, "endpoint is for exporter = 'otlp'"),
        ({"exporter": "console", "endpoint": "http://c:4318"}, "endpoint is for exporter = 'otlp'"),
        ({"exporter": 3}, "expected a string, got int 3 @ observers[0].exporter"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_otel_option_is_a_config_error_naming_it(tmp_path, options, message):
    """An unknown exporter, an endpoint without OTLP, a wrong type or an unknown option
    is reported with the [[observers]] entry it is in."""
    with pytest.raises(ConfigError) as info:
        settings_engine(tmp_path, **options)
    assert message in str(info.value)
    assert "[[observers]] #1 (kind 'otel')" in str(info.value)


def test_the_otlp_exporter_without_its_package_says_what_to_install(tmp_path):
    """exporter = 'otlp' with no OTLP exporter installed names the package to install."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("an OTLP exporter is installed here; this checks the error without one")
    with pytest.raises(ConfigError, match="pip install opentelemetry-exporter-otlp-proto-http"):
        settings_engine(tmp_path, exporter="otlp")


def test_the_console_exporter_prints_spans_to_stderr(tmp_path, capsys):
    """exporter = 'console' from the settings prints each span, service name included,
    to stderr, leaving stdout alone."""
    wf = Workflow("printed")

    @wf.node
    def one():
        return 1

    async def main() -> Any:
        async with settings_engine(tmp_path, exporter="console", service_name="billing") as e:
            return await e.run(wf)

    state = asyncio.run(main())
    assert state.status == RunStatus.COMPLETED
    out, err = capsys.readouterr()
    assert out == ""
    assert '"name": "spindle.run printed"' in err
    assert '"name": "spindle.node one"' in err
    assert '"service.name": "billing"' in err


def test_with_no_tracer_provider_nothing_is_recorded_or_stored(tmp_path):
    """With the default exporter and no global provider set (the API's no-op one), the
    run stores no trace context and a child process gets no TRACEPARENT."""
    wf = Workflow("quiet")
    wf.node(otel_tasks.traceparent, name="look", executor={"kind": "subprocess"})
    wf.output = "look"

    async def main() -> Any:
        async with settings_engine(tmp_path) as e:
            return await e.run(wf)

    state = asyncio.run(main())
    assert state.status == RunStatus.COMPLETED, state.error
    assert TRACE_LABEL not in state.labels
    assert state.output["ctx"] is None


def console_spans(stderr: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (JSON objects) among the CLI's other output."""
    decoder = json.JSONDecoder()
    spans, at = [], stderr.find('{\n    "name": ')
    while at != -1:
        span, end = decoder.raw_decode(stderr, at)
        spans.append(span)
        at = stderr.find('{\n    "name": ', end)
    return spans


def test_the_cli_continues_a_runs_trace_when_spindle_emit_resumes_it(tmp_path):
    """spindle run, then spindle emit in a second process, with kind otel and the
    console exporter in spindle.toml: both processes' spans are one trace, and the
    resumed run span is a child of the first."""
    (tmp_path / "approve.yaml").write_text(WAITING_FLOW)
    (tmp_path / "spindle.toml").write_text('[[observers]]\nkind = "otel"\nexporter = "console"\n')
    environ = {**os.environ, "SPINDLE_CACHE_DIR": str(tmp_path / "cache")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "spindle", *args],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    started = cli("run", "approve.yaml", "--json")
    assert started.returncode == 3, started.stderr  # waiting
    run_id = json.loads(started.stdout)["run_id"]
    first = {s["name"]: s for s in console_spans(started.stderr)}
    assert set(first) == {"spindle.run approve", "spindle.node prepare", "spindle.node gate"}
    trace_id = first["spindle.run approve"]["context"]["trace_id"]
    run_span = first["spindle.run approve"]["context"]["span_id"]

    resumed = cli("emit", "go", "--payload", '{"ok": true}')
    assert resumed.returncode == 0, resumed.stderr
    second = console_spans(resumed.stderr)
    assert {s["name"] for s in second} == {
        "spindle.run approve",
        "spindle.node gate",
        "spindle.node finish",
    }
    assert {s["context"]["trace_id"] for s in second} == {trace_id}
    (again,) = [s for s in second if s["name"] == "spindle.run approve"]
    assert again["parent_id"] == run_span
    assert again["attributes"]["spindle.run_id"] == run_id
    assert again["attributes"]["spindle.status"] == "completed"


# The global provider can be set once per process: this runs in a fresh one.
GLOBAL_PROVIDER = """
import asyncio, json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spindle import Settings, Workflow
from spindle.core.engine import Engine

wf = Workflow("hosted")
wf.task("one", {"kind": "python_code", "code": "result = 1"})

async def main():
    settings = Settings(runs_dir=sys.argv[1], observers=[{"kind": "otel"}])
    async with Engine("memory://", settings=settings) as engine:
        # Set after the engine is built: the observer follows the global provider.
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        await engine.run(wf)
    return exporter

print(json.dumps(sorted(s.name for s in asyncio.run(main()).get_finished_spans())))
"""


def test_the_default_exporter_uses_the_global_tracer_provider(tmp_path):
    """With exporter none the spans go to the TracerProvider the host set globally, even
    one set after the engine was built."""
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER, str(tmp_path / "runs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["spindle.node one", "spindle.run hosted"]


def test_a_failed_sub_step_attempt_is_a_span_with_its_error_and_retry(tmp_path):
    """A sub-step attempt that raises and is retried is an ERROR span with its exception
    and a retry event; the attempt that succeeds is an OK span; both under the node."""
    calls: list[int] = []
    wf = Workflow("steps")

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("upstream slow")
        return "ok"

    @wf.node
    def fetch(ctx):
        return ctx.step(flaky, name="call api", retry={"max_attempts": 2, "backoff": 0.01})

    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error
    node = recorder.one("spindle.node fetch")
    failed, passed = sorted(recorder.named("spindle.step call api"), key=lambda s: s.end_time)
    assert parent_of(failed) == parent_of(passed) == node.context.span_id
    assert failed.status.status_code == StatusCode.ERROR
    assert passed.status.status_code == StatusCode.OK
    assert [e.name for e in failed.events] == ["exception", "retry"]
    assert dict(failed.events[0].attributes or {}) == {
        "exception.type": "TimeoutError",
        "exception.message": "upstream slow",
    }
    assert failed.end_time <= passed.start_time <= passed.end_time <= node.end_time


def test_a_skipped_node_is_a_span_saying_why(tmp_path):
    """A node skipped by a false condition, and the node after it, are spans with status
    skipped and the reason, under the run span."""
    wf = Workflow("skips")
    wf.task("score", {"kind": "python_code", "code": "result = 0.3"})
    wf.task(
        "publish",
        {"kind": "python_code", "code": "result = 'yes'"},
        after=["score"],
        when={"gt": ["score", 0.5]},
    )
    wf.task("notify", {"kind": "python_code", "code": "result = 1"}, after=["publish"])

    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error
    run_span = recorder.one("spindle.run skips").context.span_id
    for name, why in (("publish", "when"), ("notify", "upstream")):
        skipped = recorder.one(f"spindle.node {name}")
        assert skipped.attributes is not None
        assert skipped.attributes["spindle.status"] == "skipped"
        assert skipped.attributes["spindle.skipped_by"] == why
        assert parent_of(skipped) == run_span
    publish = recorder.one("spindle.node publish")
    assert publish.attributes is not None
    assert publish.attributes["spindle.condition"] == "score > 0.5"


def test_parallel_subprocess_nodes_each_join_their_own_node_span(tmp_path):
    """Nodes running at once in subprocesses each get the TRACEPARENT of their own span."""
    wf = Workflow("fanout")
    for name in ("left", "middle", "right"):
        wf.node(otel_tasks.child_span, name=name, executor={"kind": "subprocess"})
    recorder = Recorder()
    state = run_flow(tmp_path, recorder, wf)
    assert state.status == RunStatus.COMPLETED, state.error
    for name in ("left", "middle", "right"):
        child = state.output[name]
        assert (child["trace_id"], child["parent_id"]) == hex_ids(
            recorder.one(f"spindle.node {name}")
        )
