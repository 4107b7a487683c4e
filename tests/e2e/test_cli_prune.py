"""``spindle prune`` and ``spindle worker --retention`` as a user runs them, on the
default SQLite file store: what goes, what stays, dry runs, and refused input."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

ECHO = """\
name: echo
nodes:
  say:
    runtime: {kind: command, command: "echo hi > {outputs.out.path}"}
    outputs: {out: {kind: file, path: hi.txt}}
output: say
"""

ASK = """\
name: ask
nodes:
  approve:
    effect: {kind: ask_user, prompt: "Ship it?", choices: ["yes", "no"]}
"""

FAILS = """\
name: fails
nodes:
  boom:
    runtime: {kind: command, command: "exit 7"}
"""


def _runs(spindle):
    code, doc = spindle.json("runs")
    assert code == 0
    return {r["run_id"]: r["status"] for r in doc["runs"]}


@pytest.fixture
def mixed(spindle, write):
    """Two completed runs, one failed, one waiting and one pending: ``{run_id: status}``."""
    write("echo.yaml", ECHO)
    write("ask.yaml", ASK)
    write("fails.yaml", FAILS)
    assert spindle("run", "echo.yaml").returncode == 0
    assert spindle("run", "echo.yaml").returncode == 0
    assert spindle("run", "fails.yaml").returncode == 1
    assert spindle("run", "ask.yaml").returncode == 3
    assert spindle("run", "--detach", "echo.yaml").returncode == 0
    runs = _runs(spindle)
    assert sorted(runs.values()) == ["completed", "completed", "failed", "pending", "waiting"]
    return runs


def test_prune_deletes_finished_runs_and_keeps_live_ones(spindle, mixed, tmp_path):
    """Finished runs go with their run directories; the waiting and the pending run stay
    and can still continue."""
    runs_root = tmp_path / ".spindle" / "runs"
    finished = [r for r, s in mixed.items() if s in ("completed", "failed")]
    assert all((runs_root / r).is_dir() for r in finished)
    proc = spindle("prune", "--older-than", "0s")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("pruned 3 run(s), ")
    assert sorted(_runs(spindle).values()) == ["pending", "waiting"]
    assert not any((runs_root / r).exists() for r in finished)
    waiting = next(r for r, s in mixed.items() if s == "waiting")
    code, done = spindle.json("resume", waiting, "--payload", '"yes"')
    assert (code, done["status"]) == (0, "completed")


def test_prune_json_reports_counts(spindle, mixed):
    """--json prints one document with the counts, the cutoff and the statuses."""
    code, doc = spindle.json("prune", "--older-than", "0s", "--status", "completed")
    assert code == 0
    assert doc["runs"] == 2 and doc["records"] > 0 and doc["artifacts"] >= 1
    assert doc["statuses"] == ["completed"] and doc["dry_run"] is False
    assert doc["older_than"] == "0s" and doc["before"]
    assert sorted(_runs(spindle).values()) == ["failed", "pending", "waiting"]


def test_prune_dry_run_deletes_nothing(spindle, mixed):
    """--dry-run counts what would go and leaves every run in place."""
    code, doc = spindle.json("prune", "--older-than", "0s", "--dry-run")
    assert code == 0
    assert (doc["runs"], doc["dry_run"]) == (3, True)
    assert _runs(spindle) == mixed
    proc = spindle("prune", "--older-than", "0s", "--dry-run")
    assert proc.stdout.startswith("would prune 3 run(s)")


def test_prune_status_filter_narrows_what_goes(spindle, mixed):
    """--status failed prunes only the failed run."""
    proc = spindle("prune", "--older-than", "0s", "--status", "failed")
    assert proc.returncode == 0, proc.stderr
    assert sorted(_runs(spindle).values()) == ["completed", "completed", "pending", "waiting"]


def test_prune_keeps_runs_younger_than_the_duration(spindle, mixed):
    """Runs that finished less than --older-than ago are kept."""
    proc = spindle("prune", "--older-than", "1d12h")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("pruned 0 run(s), ")
    assert _runs(spindle) == mixed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30"], "'30' has no unit; did you mean 30d"),
        (["--older-than", "3x"], "unknown unit 'x'"),
        (["--older-than", "-1d"], "is negative"),
        (["--older-than", "1d", "--status", "waiting"], "only finished runs are pruned"),
        (["--older-than", "1d", "--status", "done"], "'done' is not a run status"),
    ],
)
def test_prune_refuses_bad_input_with_exit_2(spindle, args, message):
    """A bad duration or status exits 2 with a message saying what was wrong and the fix."""
    proc = spindle("prune", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert message in proc.stderr
    assert "use" in proc.stderr or "write" in proc.stderr


def test_worker_retention_prunes_finished_runs_then_drives(spindle, mixed):
    """worker --once --retention 0s prunes the finished runs and drives the pending one."""
    proc = spindle("worker", "--once", "--retention", "0s")
    assert proc.returncode == 0, proc.stderr
    assert "retention: pruned 3 run(s)" in proc.stderr
    assert sorted(_runs(spindle).values()) == ["completed", "waiting"]


def test_worker_retention_setting_comes_from_spindle_toml(spindle, write, mixed):
    """retention = "0s" in spindle.toml prunes like --retention; a bad one exits 2 with its line."""
    write("spindle.toml", 'retention = "0s"\n')
    proc = spindle("worker", "--once")
    assert proc.returncode == 0, proc.stderr
    assert "retention: pruned 3 run(s)" in proc.stderr
    write("spindle.toml", 'concurrency = 2\nretention = "soon"\n')
    proc = spindle("worker", "--once")
    assert proc.returncode == 2
    assert "spindle.toml:2" in proc.stderr and "'soon' is not a duration" in proc.stderr


def test_worker_without_retention_keeps_every_run(spindle, mixed):
    """Without --retention or the setting, a worker prunes nothing."""
    proc = spindle("worker", "--once")
    assert proc.returncode == 0, proc.stderr
    assert "retention" not in proc.stderr
    assert len(_runs(spindle)) == 5


def test_prune_shows_a_live_count_on_a_terminal(spindle, mixed):
    """On a terminal a live line counts the runs pruned so far and is cleared at the end;
    piped, each batch is one plain line."""
    from tests.ptys import on_pty

    code, out, tty = on_pty(
        ["prune", "--older-than", "0s", "--batch", "1"], cwd=spindle.cwd, env=spindle.env()
    )
    assert code == 0
    assert out.startswith("pruned 3 run(s)")
    assert "pruning: 3 run(s) so far" in tty
    assert tty.endswith("\r\x1b[K")
    assert "batch 1:" not in tty


def test_prune_prints_one_line_per_batch_when_piped(spindle, mixed):
    """Piped, stderr gets one plain line per batch and no escape codes."""
    proc = spindle("prune", "--older-than", "0s", "--batch", "1")
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["batch 1", "batch 2", "batch 3"]
    assert "\x1b" not in proc.stderr
