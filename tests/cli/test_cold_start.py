"""Cold start: `spindle --help` and `--version` import no plugin and no workflow machinery."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from spindle.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
print("\\n" + json.dumps(sorted(sys.modules)))
"""

#: What answering --help may import from spindle.
ALLOWED_SPINDLE = {
    "spindle",
    "spindle._version",
    "spindle.cli",
    "spindle.core",
    "spindle.core._discovery",
}
FORBIDDEN = (
    "rich",
    "attr",
    "attrs",
    "cattrs",
    "pluggy",
    "yaml",
    "asyncio",
    "importlib.metadata",
    "spindle.core._engine",
    "spindle.core._registry",
)


def modules_for(*args: str, env=None) -> tuple[str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    out, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    return out, json.loads(last)


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_help_and_version_import_no_plugin_or_engine(args):
    """--help, --version and a bare `spindle` import only the CLI shell and the scanner."""
    _, modules = modules_for(*args)

    spindle_modules = {m for m in modules if m == "spindle" or m.startswith("spindle.")}
    assert spindle_modules <= ALLOWED_SPINDLE
    for name in FORBIDDEN:
        assert name not in modules, f"{name} imported by spindle {' '.join(args)}"


def test_help_imports_no_plugin_with_a_cli_plugin_installed(installed_distribution):
    """A spindle.cli plugin is listed by --help without its module being imported."""
    site = installed_distribution(
        "cold-cli",
        entry_points={"spindle.cli": {"cold": "coldcli:cold"}},
        modules={"coldcli.py": "raise RuntimeError('must not be imported by --help')\n"},
    )
    env = {**os.environ, "PYTHONPATH": str(site)}

    out, modules = modules_for("--help", env=env)

    assert "cold" in out
    assert "coldcli" not in modules


def test_python_dash_m_spindle_help_as_a_user_runs_it():
    """`python -X importtime -m spindle --help` succeeds and imports no plugin or engine."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "spindle", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0
    assert "Commands:" in proc.stdout and "plugins" in proc.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert not any(m.startswith("spindle.plugins") for m in imported)
    for name in ("spindle.core._engine", "rich", "attr", "cattrs"):
        assert name not in imported


@pytest.mark.skipif(shutil.which("spindle") is None, reason="console script not on PATH")
def test_console_script_answers_help():
    """The installed `spindle` console script prints the help and exits 0."""
    proc = subprocess.run(["spindle", "--help"], capture_output=True, text=True, timeout=60)

    assert proc.returncode == 0
    assert "Usage: spindle" in proc.stdout


def test_bare_spindle_shows_usage():
    """`spindle` without a command prints the usage (click's no-args help)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spindle"], capture_output=True, text=True, timeout=60
    )

    assert "Usage: spindle" in proc.stdout + proc.stderr
    assert proc.returncode in (0, 2)
