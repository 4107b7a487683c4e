"""Every example in ``examples/`` runs as its comments say, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_hello_prints_the_greeting(spindle, examples):
    """`spindle run examples/hello.yaml` completes and prints the default greeting."""
    proc = spindle("run", "examples/hello.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "output: Hello, world!" in proc.stdout
    assert "write completed" in proc.stderr
    assert "read completed" in proc.stderr


def test_hello_input_overrides_the_default(spindle, examples):
    """`--input who=Ada` replaces the default input, and the file artifact holds it."""
    code, doc = spindle.json("run", "examples/hello.yaml", "--input", "who=Ada")
    assert code == 0
    assert doc["status"] == "completed"
    assert doc["output"] == "Hello, Ada!"
    greeting = spindle.cwd / ".spindle" / "runs" / doc["run_id"] / "greeting.txt"
    assert greeting.read_text() == "Hello, Ada!\n"


def test_pipeline_turns_csv_into_a_json_summary(spindle, examples):
    """The pipeline example writes its CSV and JSON artifacts and outputs the summary."""
    code, doc = spindle.json("run", "examples/pipeline/pipeline.yaml")
    assert code == 0, doc
    assert doc["output"] == {
        "rows": 5,
        "unit": "fahrenheit",
        "coldest": "Reykjavik",
        "warmest": "Cairo",
        "mean": 57.02,
    }
    run_dir = spindle.cwd / ".spindle" / "runs" / doc["run_id"]
    assert (run_dir / "raw.csv").read_text().startswith("city,celsius\nOslo,4.5\n")
    assert (run_dir / "converted.csv").read_text().startswith("city,celsius,fahrenheit\n")
    assert json.loads((run_dir / "summary.json").read_text()) == doc["output"]


def test_pipeline_takes_a_workflow_input_by_parameter_name(spindle, examples):
    """`--input unit=kelvin` reaches the Python step's `unit` parameter."""
    code, doc = spindle.json("run", "examples/pipeline/pipeline.yaml", "--input", "unit=kelvin")
    assert code == 0, doc
    assert doc["output"]["unit"] == "kelvin"
    assert doc["output"]["mean"] == 287.05


def test_approval_waits_then_completes_when_resumed_from_another_process(spindle, examples):
    """The approval run exits 3 with the resume command; running that command completes it."""
    proc = spindle("run", "examples/approval.yaml")
    assert proc.returncode == 3, proc.stderr
    assert "waiting on:" in proc.stdout
    assert "approve: Publish the release notes? [yes / no]" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if "spindle resume" in x)
    run_id = proc.stdout.split()[1]
    assert line.strip() == (f"answer: spindle resume {run_id} --key approve --payload '\"yes\"'")
    done = spindle("resume", run_id, "--key", "approve", "--payload", '"yes"')
    assert done.returncode == 0, done.stderr
    assert f"run {run_id} completed" in done.stdout
    assert "output: published release notes for v1.0" in done.stdout


def test_approval_answer_no_keeps_a_draft(spindle, examples):
    """Answering "no" takes the other branch of the publish step."""
    _, doc = spindle.json("run", "examples/approval.yaml")
    code, doc = spindle.json("resume", doc["run_id"], "--payload", '"no"')
    assert code == 0
    assert doc["output"] == "kept release notes for v1.0 as a draft"


def test_flaky_step_succeeds_on_the_third_attempt(spindle, examples):
    """The flaky step fails twice, is retried with backoff, and the run completes."""
    proc = spindle("run", "examples/flaky.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "output: fetched after 3 attempts" in proc.stdout
    assert proc.stderr.count("fetch failed") == 2
    assert "retrying in 0.2s" in proc.stderr
    assert "service unavailable on attempt 1" in proc.stderr
    run_id = proc.stdout.split()[1]
    code, shown = spindle.json("show", run_id)
    assert code == 0
    assert shown["nodes"]["fetch"]["attempts"] == 3
    assert shown["nodes"]["fetch"]["status"] == "completed"
    ledger = spindle("ledger", run_id, "--json")
    kinds = [(r["kind"], r["node_id"]) for r in json.loads(ledger.stdout)["records"]]
    assert kinds.count(("retry", "fetch")) == 2


def test_subworkflow_parent_uses_the_child_output(spindle, examples):
    """The parent completes with the child's statistics; the child is a run of its own."""
    code, doc = spindle.json("run", "examples/subworkflow/parent.yaml")
    assert code == 0, doc
    assert doc["output"] == "6 numbers, mean 18.0, range 4..42"
    _, listing = spindle.json("runs")
    child = next(r for r in listing["runs"] if r["workflow"] == "child")
    assert child["parent_run_id"] == doc["run_id"]
    assert child["output"] == {"count": 6, "mean": 18.0, "low": 4, "high": 42}
    shown = spindle("show", doc["run_id"])
    assert f"{child['run_id']}  child  completed" in shown.stdout


def test_subworkflow_parent_passes_list_inputs(spindle, examples):
    """A JSON list given with --input reaches the child run."""
    code, doc = spindle.json(
        "run", "examples/subworkflow/parent.yaml", "--input", "numbers=[10, 20, 30]"
    )
    assert code == 0, doc
    assert doc["output"] == "3 numbers, mean 20.0, range 10..30"


def test_host_app_runs_a_python_workflow_the_cli_can_inspect(spindle, examples):
    """The embedded host script prints its result, and `spindle show` finds its run."""
    proc = subprocess.run(
        [sys.executable, "examples/host_app.py", "the cat and the hat"],
        cwd=spindle.cwd,
        env=spindle.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 distinct words; most frequent:" in proc.stdout
    assert "  the: 2" in proc.stdout
    run_id = proc.stdout.rsplit("spindle show ", 1)[1].strip()
    code, doc = spindle.json("show", run_id)
    assert code == 0
    assert doc["workflow"] == "word_stats"
    assert doc["output"]["top"][0] == ["the", 2]


def test_the_scheduled_example_is_added_and_its_latest_slot_fired(spindle, examples):
    """`spindle schedule add examples/scheduled/nightly.yaml` keeps its schedule: field;
    with --since in the past, `spindle worker --once` fires the latest slot."""
    added = spindle(
        "schedule", "add", "examples/scheduled/nightly.yaml", "--since", "2024-01-01T00:00:00Z"
    )
    assert added.returncode == 0, added.stderr
    code, [doc] = spindle.json("schedule", "list")
    assert code == 0
    assert (doc["cron"], doc["timezone"], doc["catch_up"]) == (
        "0 3 * * *",
        "Europe/Paris",
        "latest",
    )
    assert spindle("worker", "--once").returncode == 0
    code, runs = spindle.json("runs")
    assert code == 0
    [run] = runs["runs"]
    assert run["run_id"].startswith("sched:nightly:") and run["run_id"].endswith(
        ("T0200Z", "T0100Z")
    )
    assert run["output"] == {"report": "report for yesterday"}
