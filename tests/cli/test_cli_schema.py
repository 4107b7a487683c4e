"""``spindle schema``: run as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PLUGIN = '''
import attrs
from spindle import Runtime


@attrs.define
class Shout(Runtime[str], kind="shout"):
    """Upper-case a text.

    Attributes:
        text: what to shout.
    """

    text: str
    times: int = 1

    async def _setup_runtime(self, task):
        return self.text.upper() * self.times
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with a third-party plugin distribution on the path and a private cache."""
    site = tmp_path / "site"
    dist = site / "shoutplug-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shoutplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[spindle.runtime]\nshout = shoutplug:Shout\n")
    (site / "shoutplug.py").write_text(textwrap.dedent(PLUGIN))
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), environ.get("PYTHONPATH")) if p)
    environ["SPINDLE_CACHE_DIR"] = str(tmp_path / "cache")
    return environ


def spindle(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spindle", "schema", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_schema_prints_the_workflow_schema_as_json(env, tmp_path):
    """spindle schema prints a draft 2020-12 schema holding the installed kinds."""
    result = spindle(env, tmp_path)
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["name", "nodes"]
    assert {"runtime", "executor", "effect", "node", "retry"} <= set(schema["$defs"])
    assert result.stdout.startswith('{\n  "$schema"')  # indented by 2


def test_a_third_party_kind_appears_once_installed(env, tmp_path):
    """A kind from an installed third-party distribution is in the schema, fields and all."""
    result = spindle(env, tmp_path, "--group", "runtime")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert {"$ref": "#/$defs/runtime.shout"} in schema["oneOf"]
    shout = schema["$defs"]["runtime.shout"]
    assert shout["description"] == "Upper-case a text."
    assert shout["required"] == ["kind", "text"]
    assert shout["properties"]["text"] == {"type": "string", "description": "what to shout."}
    assert shout["properties"]["times"] == {"type": "integer", "default": 1}
    assert not any(name.startswith(("effect", "executor")) for name in schema["$defs"])


def test_output_writes_the_schema_to_a_file(env, tmp_path):
    """--output FILE writes the schema there instead of stdout."""
    result = spindle(env, tmp_path, "--group", "effect", "--output", "effect.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    schema = json.loads((tmp_path / "effect.json").read_text())
    assert schema["title"] == "spindle effect kinds"


def test_unknown_group_is_a_usage_error(env, tmp_path):
    """--group with a group files do not configure exits 2 and lists the choices."""
    result = spindle(env, tmp_path, "--group", "store")
    assert result.returncode == 2
    assert "'runtime', 'executor', 'effect'" in result.stderr
