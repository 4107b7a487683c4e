"""Result caching as a user sees it: ``spindle run`` twice reuses a node's result until
its input file changes or ``spindle cache clear`` removes it (default SQLite store)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WORKFLOW = """\
name: report
inputs: {data: data.txt, counter: counter.txt}
nodes:
  shout:
    runtime:
      kind: command
      command: "echo ran >> {inputs.counter}; tr a-z A-Z < {inputs.data} > {outputs.out.path}"
    outputs: {out: {kind: file, path: shout.txt}}
    cache: {files: ["{inputs.data}"], ttl: 7d}
  show:
    runtime: {kind: command, command: "cat {inputs.text}"}
    inputs: {text: shout.out}
output: show
"""


def _setup(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    data, counter = tmp_path / "data.txt", tmp_path / "counter.txt"
    data.write_text("hello\n")
    return (
        data,
        counter,
        ["run", "wf.yaml", "--input", f"data={data}", "--input", f"counter={counter}"],
    )


def _runs_of(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_a_second_run_is_a_cache_hit_until_the_input_file_changes(spindle, tmp_path):
    data, counter, run = _setup(tmp_path)
    code, first = spindle.json(*run)
    assert (code, first["output"], _runs_of(counter)) == (0, "HELLO", 1)

    code, second = spindle.json(*run)
    assert (code, second["output"], _runs_of(counter)) == (0, "HELLO", 1)  # not executed
    code, shown = spindle.json("show", second["run_id"])
    assert shown["nodes"]["shout"]["cached_from"] == {
        "run_id": first["run_id"],
        "node_id": "shout",
    }
    assert "cached_from" not in shown["nodes"]["show"]
    human = spindle("show", second["run_id"])
    assert f"(cached from {first['run_id']}/shout)" in human.stdout
    logs = spindle("logs", second["run_id"], "shout")
    assert logs.returncode == 0
    assert f"node 'shout' did not run: its result was cached from {first['run_id']}/shout" in (
        logs.stderr
    )
    ledger = spindle("ledger", second["run_id"])
    assert "cache" in ledger.stdout.split("\n")[1]
    assert spindle("ledger", "verify", second["run_id"]).returncode == 0
    copied = tmp_path / ".spindle" / "runs" / second["run_id"] / "shout.txt"
    assert copied.read_text() == "HELLO\n"

    data.write_text("changed\n")
    code, third = spindle.json(*run)
    assert (code, third["output"], _runs_of(counter)) == (0, "CHANGED", 2)  # a miss
    code, fourth = spindle.json(*run)
    assert (code, fourth["output"], _runs_of(counter)) == (0, "CHANGED", 2)  # a hit again
    shown = spindle(*run)
    (line,) = [x for x in (shown.stdout + shown.stderr).splitlines() if "shout completed" in x]
    assert line.endswith(f"(cached from {third['run_id']}/shout)")


def test_cache_clear_makes_the_next_run_miss(spindle, tmp_path):
    _data, counter, run = _setup(tmp_path)
    assert spindle.json(*run)[0] == 0
    code, listed = spindle.json("cache", "list")
    assert code == 0
    (entry,) = listed["entries"]
    assert (entry["workflow"], entry["node_id"]) == ("report", "shout")
    assert entry["expires_at"] is not None

    code, cleared = spindle.json("cache", "clear", "--workflow", "other")
    assert (code, cleared["removed"]) == (0, 0)
    code, cleared = spindle.json("cache", "clear", "--older-than", "1d")
    assert (code, cleared["removed"]) == (0, 0)  # kept just now: not older than a day
    assert spindle.json(*run)[0] == 0
    assert _runs_of(counter) == 1

    human = spindle("cache", "clear")
    assert (human.returncode, human.stdout.strip()) == (0, "removed 1 cached result")
    assert spindle.json(*run)[0] == 0
    assert _runs_of(counter) == 2
    assert spindle("cache", "list").returncode == 0


def test_cache_clear_refuses_a_bad_duration(spindle):
    proc = spindle("cache", "clear", "--older-than", "soon")
    assert proc.returncode == 2
    assert "--older-than: 'soon'" in proc.stderr and "such as 30d" in proc.stderr


def test_a_bad_cache_field_is_an_input_error_with_its_line(spindle, tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nnodes:\n  a:\n    runtime: {kind: command, command: 'true'}\n"
        "    cache: {ttl: forever}\n"
    )
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 2
    assert "bad.yaml:5:" in proc.stderr and "cache ttl: 'forever'" in proc.stderr


def test_the_cache_middleware_in_spindle_toml_caches_a_workflow_that_says_nothing(
    spindle, tmp_path
):
    (tmp_path / "spindle.toml").write_text('[[middleware]]\nkind = "cache"\nttl = "1d"\n')
    (tmp_path / "plain.yaml").write_text(
        "name: plain\ninputs: {counter: counter.txt}\nnodes:\n"
        "  a:\n    runtime: {kind: command, command: 'echo ran >> {inputs.counter}; echo hi'}\n"
        "output: a\n"
    )
    counter = tmp_path / "counter.txt"
    run = ["run", "plain.yaml", "--input", f"counter={counter}"]
    code, first = spindle.json(*run)
    assert (code, _runs_of(counter)) == (0, 1)
    code, second = spindle.json(*run)
    assert (code, second["output"], _runs_of(counter)) == (0, first["output"], 1)
    code, shown = spindle.json("show", second["run_id"])
    assert shown["nodes"]["a"]["cached_from"] == {"run_id": first["run_id"], "node_id": "a"}
    listed = spindle("plugins")
    assert "cache" in [line.split()[1] for line in listed.stdout.splitlines()[1:] if line.split()]
