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

#: What answering --help or --version may import from spindle.
ALLOWED_SPINDLE = {
    "spindle",
    "spindle._version",
    "spindle.cli",
    "spindle._cli",
    "spindle._cli._commands",
    "spindle._cli._fasthelp",
    "spindle.core",
    "spindle.core._lazy",
    "spindle.core.plugin",
    "spindle.core.plugin._discovery",
}
#: Never imported by --help or --version.
FORBIDDEN = (
    "rich",
    "attr",
    "attrs",
    "cattrs",
    "pluggy",
    "yaml",
    "asyncio",
    "importlib.metadata",
    "spindle.core.engine._engine",
    "spindle.core.plugin._registry",
)
#: Imported only to fill an empty entry-point cache: discovery scans through
#: importlib.metadata, so only a --help answered from the cache avoids it.
SCANNER = ("importlib.metadata",)


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    """Each test starts with empty entry-point and help caches."""
    monkeypatch.setenv("SPINDLE_CACHE_DIR", str(tmp_path / "cache"))


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


def spindle_modules(modules: list[str]) -> set[str]:
    return {m for m in modules if m == "spindle" or m.startswith("spindle.")}


def test_help_imports_no_plugin_or_engine():
    """A first --help (cache empty, rendered by click) imports no plugin, engine, rich or attrs."""
    out, modules = modules_for("--help")

    assert "Commands:" in out
    assert not any(
        m.startswith(("spindle.plugins", "spindle.core."))
        for m in modules
        if m not in ALLOWED_SPINDLE
    )
    for name in FORBIDDEN:
        if name not in SCANNER:
            assert name not in modules, f"{name} imported by spindle --help"


def test_repeated_help_imports_not_even_click():
    """Once cached, --help imports neither click nor importlib.metadata."""
    first, _ = modules_for("--help")

    second, modules = modules_for("--help")

    assert second == first
    assert spindle_modules(modules) <= ALLOWED_SPINDLE
    assert "click" not in modules
    for name in FORBIDDEN:
        assert name not in modules


def test_version_imports_nothing_but_the_front_door():
    """--version prints `spindle X.Y.Z` importing only spindle.cli."""
    from spindle import __version__

    out, modules = modules_for("--version")

    assert out == f"spindle {__version__}\n"
    assert spindle_modules(modules) <= {"spindle", "spindle._version", "spindle.cli"}
    assert "click" not in modules


def test_cached_help_is_exactly_what_click_prints(monkeypatch):
    """The cached --help text is click's own rendering, byte for byte."""
    from click.testing import CliRunner

    from spindle.cli import make_cli

    monkeypatch.setenv("COLUMNS", "80")
    env = dict(os.environ)
    modules_for("--help", env=env)  # render and cache

    cached, _ = modules_for("--help", env=env)

    assert cached == CliRunner().invoke(make_cli(), ["--help"]).output


def test_help_cache_follows_the_terminal_width(monkeypatch):
    """A different width renders (and caches) the help again at that width."""
    monkeypatch.setenv("COLUMNS", "200")
    modules_for("--help", env=dict(os.environ))
    monkeypatch.setenv("COLUMNS", "52")

    narrow, modules = modules_for("--help", env=dict(os.environ))

    assert "click" in modules  # a cache miss: rendered by click
    assert max(len(line) for line in narrow.splitlines()) <= 50


def test_help_lists_a_cli_plugin_installed_after_caching(installed_distribution):
    """Installing a spindle.cli plugin changes the cached help; its module is not imported."""
    modules_for("--help")
    site = installed_distribution(
        "cold-cli",
        entry_points={"spindle.cli": {"cold": "coldcli:cold"}},
        modules={"coldcli.py": "raise RuntimeError('must not be imported by --help')\n"},
    )
    env = {**os.environ, "PYTHONPATH": str(site)}

    out, modules = modules_for("--help", env=env)
    again, modules_again = modules_for("--help", env=env)

    # the column is as wide as the longest command name ('new-plugin')
    assert "cold        (from cold-cli)" in out
    assert again == out
    assert "coldcli" not in modules and "coldcli" not in modules_again
    assert "click" not in modules_again


def test_help_works_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    """With an unwritable cache dir --help is rendered by click every time, correctly."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SPINDLE_CACHE_DIR", str(blocker / "cache"))

    out, _ = modules_for("--help", env=dict(os.environ))
    again, _ = modules_for("--help", env=dict(os.environ))

    assert "Commands:" in out and again == out


def test_a_changed_group_is_answered_by_click(capsys):
    """Once the click group is imported (and maybe changed in code), main() defers to click."""
    import click

    from spindle.cli import cli, main

    @click.command("added-in-code")
    def added():
        """Added by a host application."""

    cli.add_command(added)
    try:
        with pytest.raises(SystemExit) as caught:
            main(["--help"])
    finally:
        del cli.commands["added-in-code"]

    assert caught.value.code == 0
    assert "added-in-code" in capsys.readouterr().out


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
    for name in ("spindle.core.engine._engine", "rich", "attr", "cattrs"):
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
