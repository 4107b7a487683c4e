"""Settings from flags and SPINDLE_* variables skip the converter, with the same result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spindle.core.config import Settings, load_settings
from spindle.core.config import _settings as settings_module
from spindle.core.errors import ConfigError
from spindle.core.model import converter


class _NoConverter:
    def structure(self, *_: Any) -> Any:
        raise AssertionError("the converter was used")


def test_flags_and_variables_are_taken_without_the_converter(tmp_path, monkeypatch):
    """Plain values (no file) build Settings directly: no structure functions generated."""
    monkeypatch.setattr(settings_module, "converter", _NoConverter())

    settings = load_settings(
        tmp_path,
        environ={"SPINDLE_CONCURRENCY": "4", "SPINDLE_LEASE_TTL": "2.5", "SPINDLE_HOOKS": "a, b"},
        overrides={"store": "memory://", "runs_dir": None},
    )

    assert settings == Settings(store="memory://", concurrency=4, lease_ttl=2.5, hooks=["a", "b"])


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"store": "sqlite:///x.db", "durability": "full"},
        {"max_steps": 7, "result_inline_limit": 10, "cancel_grace": 1.5},
        {"ledger_key": "k", "hooks": ["m1", "m2"], "max_inline_sleep": 0.0},
        {"lease_ttl": 5},  # an int for a float: the converter makes it 5.0
        {"observers": [{"kind": "log"}]},
        {"plugins": {"deny_kinds": ["runtime:python_code"]}},
    ],
)
def test_the_result_is_what_the_converter_gives(tmp_path, overrides):
    """Whichever way they are built, settings equal the converter's structuring."""
    settings = load_settings(tmp_path, environ={}, overrides=overrides)

    assert settings == converter.structure(dict(overrides), Settings)
    assert type(settings.lease_ttl) is float


def test_given_hooks_are_copied(tmp_path):
    """The hooks list of the settings is their own, as the converter's is."""
    hooks = ["m"]

    settings = load_settings(tmp_path, environ={}, overrides={"hooks": hooks})
    hooks.append("later")

    assert settings.hooks == ["m"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"concurrency": True}, "expected an integer, got bool"),
        ({"store": 5}, "@ store"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_values_that_are_not_plain_get_the_converter_s_errors(tmp_path, overrides, message):
    """A value of another type, or an unknown key, is refused by the converter as before."""
    with pytest.raises(ConfigError, match="invalid spindle settings") as caught:
        load_settings(tmp_path, environ={}, overrides=overrides)

    assert message in str(caught.value)


PROBE = """
import json, sys
from spindle.core.config import load_settings
load_settings(sys.argv[1], environ={})
print(json.dumps("tomllib" in sys.modules))
"""


def test_no_toml_parser_is_imported_without_a_file(tmp_path: Path):
    """Without spindle.toml or pyproject.toml, loading settings imports no TOML parser."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(proc.stdout) is False


def test_a_file_is_still_read(tmp_path):
    """With a spindle.toml, its values count (and are structured by the converter)."""
    (tmp_path / "spindle.toml").write_text('store = "memory://"\nconcurrency = 3\n', "utf-8")

    settings = load_settings(tmp_path, environ={})

    assert (settings.store, settings.concurrency, settings.source) == (
        "memory://",
        3,
        str(tmp_path / "spindle.toml"),
    )
