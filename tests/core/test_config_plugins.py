"""Errors in ``[[observers]]`` and ``[[middleware]]`` entries, found when the engine builds
them: every entry's problems at once, each with file, line, table index and kind."""

from __future__ import annotations

import textwrap

import pytest

from spindle import Engine, Settings, load_settings
from spindle.core.errors import ConfigError
from spindle.core.plugin import default_registry

BAD = """\
store = "memory://"

[[observers]]
kind = "jsonl"
path = "events.jsonl"

[[observers]]
kind = "jsonl"
pathh = "events.jsonl"

[[observers]]
kind = "nosuch"

[[observers]]
kind = "log"
required = "yes"

[[middleware]]
kind = "timing"
bogus = 3
"""


def _error(settings: Settings) -> str:
    with pytest.raises(ConfigError) as info:
        Engine(settings=settings)
    return str(info.value)


def test_every_bad_entry_of_both_tables_is_reported_at_once(spindle_config):
    spindle_config.path.joinpath("spindle.toml").write_text(BAD)

    message = _error(load_settings(spindle_config.path))

    lines = message.splitlines()
    assert lines[0] == "invalid plugin settings (5 problems):"
    toml = str(spindle_config.path / "spindle.toml")
    # Every installed observer kind is listed (the contrib ones included).
    observers = ", ".join(default_registry().names("observer"))
    assert lines[1:] == [
        f"  - {toml}:7: [[observers]] #2 (kind 'jsonl'): required field missing"
        " @ observers[1].path",
        f"  - {toml}:9: [[observers]] #2 (kind 'jsonl'): unknown field 'pathh';"
        " known fields: kind, path @ observers[1].pathh",
        f"  - {toml}:12: [[observers]] #3 (kind 'nosuch'): unknown observer kind 'nosuch';"
        f" installed observer kinds: {observers}. @ observers[2].kind",
        f"  - {toml}:16: [[observers]] #4 (kind 'log'): required must be true or false,"
        " got 'yes' @ observers[3].required",
        f"  - {toml}:20: [[middleware]] #1 (kind 'timing'): unknown field 'bogus';"
        " known fields: kind, priority @ middleware[0].bogus",
    ]


def test_an_entry_without_a_kind_is_named_by_its_index(spindle_config):
    spindle_config.path.joinpath("spindle.toml").write_text(
        textwrap.dedent(
            """\
            store = "memory://"

            [[middleware]]
            priority = 1
            """
        )
    )

    message = _error(load_settings(spindle_config.path))

    assert "spindle.toml:3: [[middleware]] #1: " in message
    assert "kind" in message


def test_entries_in_pyproject_point_at_the_tool_table(spindle_config):
    spindle_config.path.joinpath("pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "x"

            [tool.spindle]
            store = "memory://"

            [[tool.spindle.observers]]
            kind = "jsonl"
            paht = "e.jsonl"
            """
        )
    )

    message = _error(load_settings(spindle_config.path))

    assert "pyproject.toml:9: [[observers]] #1 (kind 'jsonl'): unknown field 'paht'" in message


def test_settings_built_in_code_say_so(spindle_config):
    settings = Settings(store="memory://", middleware=[{"kind": "timing", "bogus": 1}])

    message = _error(settings)

    assert "settings: [[middleware]] #1 (kind 'timing'): unknown field 'bogus'" in message


def test_good_entries_still_build_in_order(spindle_config):
    settings = Settings(
        store="memory://",
        observers=[
            {"kind": "jsonl", "path": "a.jsonl", "required": True},
            {"kind": "log"},
        ],
        middleware=[{"kind": "timing"}],
    )

    engine = Engine(settings=settings)

    bindings = engine.services.emitter.observers.bindings
    assert [b.required for b in bindings] == [True, False]
    assert [type(b.observer).__name__ for b in bindings] == ["JsonlObserver", "LogObserver"]


def test_the_cli_reports_them_all_and_records_no_run(spindle_config, tmp_path):
    """Through the real command: exit 2, every problem on stderr, nothing recorded."""
    import subprocess
    import sys

    spindle_config.path.joinpath("spindle.toml").write_text(
        BAD.replace('store = "memory://"', 'store = "sqlite:///runs.db"')
    )
    flow = spindle_config.path / "flow.yaml"
    flow.write_text("name: f\nnodes:\n  a:\n    runtime: {kind: python_code, code: 'result = 1'}\n")

    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "run", str(flow)],
        cwd=spindle_config.path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid plugin settings (5 problems):")
    assert proc.stderr.count("spindle.toml:") == 5
    assert "Traceback" not in proc.stderr
    assert not (spindle_config.path / "runs.db").exists()
