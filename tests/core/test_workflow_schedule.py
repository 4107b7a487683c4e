"""A workflow file's ``schedule:`` field: loaded, checked at its line, not in the definition."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from spindle.core.errors import ValidationError
from spindle.core.workflow import ScheduleSpec, load_workflow, workflow_schema


def _write(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "nightly.yaml"
    text = f"""
        name: nightly
        inputs: {{day: today}}
        {schedule}
        nodes:
          a: {{runtime: {{kind: python_code, code: "result = 1"}}}}
    """
    path.write_text(textwrap.dedent(text).lstrip(), "utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_workflow(path)
    return info.value.problems


def test_a_schedule_field_loads_as_a_schedule_spec(tmp_path: Path) -> None:
    """cron, timezone, inputs and catch_up are kept on Workflow.schedule."""
    path = _write(
        tmp_path,
        'schedule: {cron: "0 3 * * *", timezone: Europe/Paris, inputs: {day: x}, catch_up: 3}',
    )
    wf = load_workflow(path)
    assert wf.schedule == ScheduleSpec("0 3 * * *", "Europe/Paris", {"day": "x"}, "3")


def test_a_schedule_has_utc_and_latest_by_default(tmp_path: Path) -> None:
    """Only cron is required."""
    wf = load_workflow(_write(tmp_path, "schedule: {cron: '@daily'}"))
    assert wf.schedule == ScheduleSpec("@daily", "UTC", {}, "latest")


def test_the_schedule_is_not_part_of_the_definition(tmp_path: Path) -> None:
    """The same workflow with and without a schedule has the same definition id."""
    with_schedule = load_workflow(_write(tmp_path, "schedule: {cron: '@daily'}"))
    without = load_workflow(_write(tmp_path, ""))
    assert without.schedule is None
    assert with_schedule.definition_id() == without.definition_id()
    assert "schedule" not in with_schedule.to_dict()


def test_a_bad_cron_is_a_load_error_at_its_line(tmp_path: Path) -> None:
    """An invalid expression names the file, the line, the field and what is allowed."""
    path = _write(tmp_path, "schedule:\n          cron: '0 25 * * *'")
    assert _problems(path) == [
        f"{path}:4: invalid cron expression '0 25 * * *': hour field '25': 25 is out of "
        "range (allowed: 0-23, '*', a-b, */n) @ schedule.cron"
    ]


def test_a_bad_time_zone_and_catch_up_are_load_errors(tmp_path: Path) -> None:
    """Every problem of the field at once, each at its line."""
    path = _write(
        tmp_path,
        "schedule:\n          cron: '@daily'\n          timezone: Nowhere/City\n"
        "          catch_up: sometimes\n          when: now",
    )
    problems = _problems(path)
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (5, 6, 7)]
    assert "unknown time zone 'Nowhere/City'" in problems[0]
    assert problems[0].endswith("@ schedule.timezone")
    assert "catch_up 'sometimes' is not a rule" in problems[1]
    assert "unknown field 'when' in schedule" in problems[2]


def test_a_schedule_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    """schedule: "0 3 * * *" (a bare string) asks for a mapping."""
    [problem] = _problems(_write(tmp_path, 'schedule: "0 3 * * *"'))
    assert "expected a mapping {cron: ..., timezone: ...}" in problem
    assert problem.endswith("@ schedule")


def test_the_json_schema_describes_the_schedule_field() -> None:
    """spindle schema includes schedule with cron required."""
    prop = workflow_schema()["properties"]["schedule"]
    assert prop["required"] == ["cron"]
    assert set(prop["properties"]) == {"cron", "timezone", "inputs", "catch_up"}
