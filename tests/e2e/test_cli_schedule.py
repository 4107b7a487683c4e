"""``spindle schedule`` as a user runs it: add, list, pause, resume, remove, and errors."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Spindle

WF = """
name: nightly
inputs: {day: none}
schedule: {cron: "0 3 * * *", timezone: Europe/Paris, inputs: {day: scheduled}}
nodes:
  a: {inputs: {d: inputs.day}, runtime: {kind: python_code, code: "result = inputs['d']"}}
"""


def _file(tmp_path: Path, text: str = WF) -> str:
    (tmp_path / "nightly.yaml").write_text(text, "utf-8")
    return "nightly.yaml"


def test_a_schedule_is_added_listed_paused_resumed_and_removed(
    spindle: Spindle, tmp_path: Path
) -> None:
    """The file's schedule: is what add keeps; list shows it; remove takes it away."""
    added = spindle("schedule", "add", _file(tmp_path))
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("schedule nightly added: 0 3 * * * (Europe/Paris), next slot")
    code, [doc] = spindle.json("schedule", "list")
    assert code == 0
    assert {k: doc[k] for k in ("id", "workflow", "cron", "timezone", "inputs", "enabled")} == {
        "id": "nightly",
        "workflow": "nightly",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "inputs": {"day": "scheduled"},
        "enabled": True,
    }
    assert doc["next_slot"].endswith(("T02:00:00+00:00", "T01:00:00+00:00"))
    assert spindle("schedule", "pause", "nightly").stdout == "schedule nightly paused\n"
    assert spindle.json("schedule", "list")[1][0]["enabled"] is False
    assert "(paused)" in spindle("schedule", "list").stdout
    assert spindle("schedule", "resume", "nightly").stdout == "schedule nightly resumed\n"
    assert spindle.json("schedule", "list")[1][0]["enabled"] is True
    removed = spindle("schedule", "remove", "nightly")
    assert removed.stdout == "schedule nightly removed (its runs are kept)\n"
    assert spindle.json("schedule", "list") == (0, [])


def test_options_override_the_files_schedule(spindle: Spindle, tmp_path: Path) -> None:
    """--cron, --timezone, --id, --input and --catch-up are kept as given."""
    proc = spindle(
        *("schedule", "add", _file(tmp_path), "--cron", "@hourly", "--timezone", "UTC"),
        *("--id", "hourly", "--input", "day=given", "--catch-up", "none", "--json"),
    )
    assert proc.returncode == 0, proc.stderr
    code, [doc] = spindle.json("schedule", "list")
    assert code == 0
    assert (doc["id"], doc["cron"], doc["timezone"]) == ("hourly", "@hourly", "UTC")
    assert (doc["inputs"], doc["catch_up"]) == ({"day": "given"}, "none")
    assert doc["next_slot"].endswith(":00:00+00:00")


def test_a_bad_cron_exits_2_naming_the_field(spindle: Spindle, tmp_path: Path) -> None:
    """An invalid --cron is refused before anything is kept."""
    proc = spindle("schedule", "add", _file(tmp_path), "--cron", "0 3 * * 9")
    assert proc.returncode == 2
    assert "error: invalid cron expression '0 3 * * 9'" in proc.stderr
    assert (
        "day-of-week field '9': 9 is out of range (allowed: 0-7 (0 and 7 are Sunday)" in proc.stderr
    )
    assert spindle.json("schedule", "list") == (0, [])


def test_a_bad_schedule_field_in_the_file_exits_2_with_its_line(
    spindle: Spindle, tmp_path: Path
) -> None:
    """A file whose schedule: is invalid is a load error: file, line, field."""
    path = _file(tmp_path, WF.replace("Europe/Paris", "Europe/Atlantis"))
    proc = spindle("schedule", "add", path)
    assert proc.returncode == 2
    assert "nightly.yaml:4: unknown time zone 'Europe/Atlantis'" in proc.stderr
    assert "@ schedule.timezone" in proc.stderr


def test_usage_errors_exit_2_with_a_message(spindle: Spindle, tmp_path: Path) -> None:
    """A taken id, an unknown id, a file without schedule: and no --cron, a naive --since."""
    path = _file(tmp_path)
    assert spindle("schedule", "add", path).returncode == 0
    taken = spindle("schedule", "add", path)
    assert taken.returncode == 2 and "schedule 'nightly' exists already" in taken.stderr
    replaced = spindle("schedule", "add", path, "--replace", "--cron", "@daily")
    assert replaced.returncode == 0 and spindle.json("schedule", "list")[1][0]["cron"] == "@daily"
    missing = spindle("schedule", "remove", "nope")
    assert missing.returncode == 2 and "no schedule 'nope' in the store" in missing.stderr
    plain = _file(tmp_path, WF.replace(WF.splitlines()[3] + "\n", ""))
    none = spindle("schedule", "add", plain, "--id", "other")
    assert none.returncode == 2 and "has no schedule: field; give a cron" in none.stderr
    naive = spindle("schedule", "add", path, "--id", "x", "--since", "2030-01-01T03:00")
    assert naive.returncode == 2 and "has no UTC offset" in naive.stderr


def test_a_worker_once_fires_a_due_slot_and_drives_its_run(
    spindle: Spindle, tmp_path: Path
) -> None:
    """With --since in the past, spindle worker --once starts the latest slot's run."""
    path = _file(tmp_path)
    assert spindle("schedule", "add", path, "--since", "2020-01-01T00:00:00+00:00").returncode == 0
    worker = spindle("worker", "--once")
    assert worker.returncode == 0, worker.stderr
    code, doc = spindle.json("runs")
    assert code == 0
    [run] = doc["runs"]
    assert run["run_id"].startswith("sched:nightly:") and run["status"] == "completed"
    assert run["output"] == {"a": "scheduled"}
    again = spindle("worker", "--once")
    assert again.returncode == 0 and len(spindle.json("runs")[1]["runs"]) == 1
