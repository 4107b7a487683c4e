"""Log records on stderr as a user sees them: `-v`/`-vv`, the `log` observer, warnings."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.slow

LOG_OBSERVER = '[[observers]]\nkind = "log"\n'

SLOW = """\
name: slow
nodes:
  first:
    runtime: {kind: command, command: "echo one"}
  nap:
    runtime: {kind: command, command: "sleep 3; echo rested"}
    after: [first]
output: nap
"""

#: One log record as the command prints it: `LOGGER: LEVEL: message`.
RECORD = re.compile(r"^(spindle(?:\.\w+)*): (DEBUG|INFO|WARNING|ERROR|CRITICAL): ", re.M)


def levels(stderr: str) -> set[tuple[str, str]]:
    """The (logger, level) pairs of the log records in ``stderr``."""
    return set(RECORD.findall(stderr))


def test_verbose_run_shows_info_records_on_stderr(spindle, examples):
    """`spindle -v run` prints INFO records (settings and store) on stderr; stdout is unchanged."""
    proc = spindle("-v", "run", "examples/hello.yaml")

    assert proc.returncode == 0, proc.stderr
    assert ("spindle.config", "INFO") in levels(proc.stderr)
    assert "store sqlite:///.spindle/spindle.db (default)" in proc.stderr
    assert not RECORD.search(proc.stdout)
    assert "output: Hello, world!" in proc.stdout


def test_a_plain_run_shows_no_info_records(spindle, examples):
    """Without -v, `spindle run` prints no INFO or DEBUG record."""
    proc = spindle("run", "examples/hello.yaml")

    assert proc.returncode == 0, proc.stderr
    assert levels(proc.stderr) == set()


def test_double_verbose_shows_debug_records_single_verbose_does_not(spindle, examples, write):
    """-vv prints DEBUG records (the timing middleware's); -v prints INFO but no DEBUG."""
    write("spindle.toml", '[[middleware]]\nkind = "timing"\n')

    debug = spindle("-vv", "run", "examples/hello.yaml")
    info = spindle("--verbose", "run", "examples/hello.yaml")

    assert debug.returncode == 0, debug.stderr
    assert ("spindle.timing", "DEBUG") in levels(debug.stderr)
    assert ("spindle.timing", "DEBUG") not in levels(info.stderr)
    assert ("spindle.config", "INFO") in levels(info.stderr)


def test_verbose_resume_shows_the_engine_taking_over_a_dead_run(spindle, write):
    """After kill -9, `spindle -v resume` logs the lease takeover on spindle.engine at INFO."""
    write("slow.yaml", SLOW)
    proc = spindle.popen("run", "slow.yaml")
    for line in proc.stderr:
        if line.strip() == "nap running":
            break
    proc.kill()
    proc.communicate(timeout=30)
    rid = spindle.json("runs")[1]["runs"][0]["run_id"]

    done = spindle("-v", "resume", rid)

    assert done.returncode == 0, done.stderr
    assert f"spindle.engine: INFO: took over run {rid} from dead process {proc.pid}" in (
        done.stderr
    )


def test_the_log_observer_prints_every_event_on_stderr_without_verbose(spindle, examples, write):
    """With `kind = "log"` in spindle.toml, `spindle run` prints each event on stderr."""
    write("spindle.toml", LOG_OBSERVER)

    proc = spindle("run", "examples/hello.yaml")

    assert proc.returncode == 0, proc.stderr
    events = [line for line in proc.stderr.splitlines() if line.startswith("spindle.events: ")]
    assert re.match(r"spindle\.events: INFO: run \w+ run_started #1 ", events[0])
    assert any(" node_completed node read " in line for line in events)
    assert re.match(r"spindle\.events: INFO: run \w+ run_completed #\d+ ", events[-1])
    assert not RECORD.search(proc.stdout)


def test_json_output_stays_one_document_while_events_are_logged(spindle, examples, write):
    """`spindle -v run --json` with the log observer prints one JSON document; logs go to stderr."""
    write("spindle.toml", LOG_OBSERVER)

    proc = spindle("-v", "run", "examples/hello.yaml", "--json")

    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["status"] == "completed"
    assert document["output"] == "Hello, world!"
    assert {("spindle.events", "INFO"), ("spindle.config", "INFO")} <= levels(proc.stderr)


def test_warnings_show_on_stderr_by_default(spindle, examples, write):
    """A failing optional observer's warning is printed on stderr without -v; the run completes."""
    write("blocker", "a file where the observer wants a directory\n")
    write("spindle.toml", '[[observers]]\nkind = "jsonl"\npath = "blocker/events.jsonl"\n')

    proc = spindle("run", "examples/hello.yaml")

    assert proc.returncode == 0, proc.stderr
    assert ("spindle.observers", "WARNING") in levels(proc.stderr)
    assert "failed on run_started" in proc.stderr


def test_help_lists_the_verbose_option_rendered_and_cached(spindle, tmp_path):
    """`spindle --help` lists -v/--verbose, rendered by click first and then from the cache."""
    env = {"SPINDLE_CACHE_DIR": str(tmp_path / "fresh-cache")}

    rendered = spindle("--help", env=env)
    cached = spindle("--help", env=env)

    assert rendered.returncode == 0, rendered.stderr
    assert "-v, --verbose" in rendered.stdout
    assert cached.stdout == rendered.stdout
    assert (tmp_path / "fresh-cache" / "cli-help.json").is_file()
