"""``spindle plugins`` and plugin-provided subcommands, in-process and as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from spindle import SpindleError
from spindle._cli import plugins as plugins_module
from spindle._cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WAITING,
    fail,
    handle_errors,
)
from spindle.cli import BUILTIN_COMMANDS, make_cli

PROBE = """
import json, sys
from spindle.cli import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def run_spindle(tmp_path: Path, *args: str, sites=()):
    """Run ``spindle ARGS`` in a fresh interpreter; return (process, modules it imported).

    The process's ``returncode`` is replaced by the exit code ``main()`` asked for.
    """
    report = tmp_path / "probe.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(s) for s in sites)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    proc.returncode = data["code"] or 0  # the exit code main() asked for
    return proc, data["modules"]


def recording_runtime(record: Path) -> str:
    return (
        f"with open({str(record)!r}, 'a') as _f:\n    _f.write(__name__ + '\\n')\n"
        "from attrs import define\nfrom spindle import Runtime\n"
        "@define\nclass Upper(Runtime[str], kind='upper', description='Upper-cases text.'):\n"
        "    text: str = ''\n"
        "    async def _setup_runtime(self, task):\n        return self.text.upper()\n"
    )


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def upper_dist(installed_distribution, tmp_path):
    """A distribution with one runtime kind whose module records its import."""
    record = tmp_path / "imports.log"
    site = installed_distribution(
        "upper-dist",
        "1.4",
        entry_points={"spindle.runtime": {"upper": "upperpkg.mod:Upper"}},
        modules={"upperpkg/__init__.py": "", "upperpkg/mod.py": recording_runtime(record)},
    )
    return site, record


# --- spindle plugins -----------------------------------------------------------


def test_plugins_imports_no_plugin_module(tmp_path, upper_dist):
    """`spindle plugins` lists kinds from metadata: no plugin module, no rich, no attrs."""
    site, record = upper_dist

    proc, modules = run_spindle(tmp_path, "plugins", sites=[site])

    assert proc.returncode == 0, proc.stderr
    assert "upper-dist" in proc.stdout
    assert not record.exists()
    imported = [m for m in modules if m.startswith(("spindle.plugins.", "upperpkg"))]
    assert imported == []
    for heavy in ("rich", "attrs", "attr", "cattrs", "spindle.core.engine._engine"):
        assert heavy not in modules


def test_plugins_without_verbose_does_not_set_up_logging(tmp_path, upper_dist):
    """The listing logs nothing, so it spares itself importing logging; -v still sets it up."""
    site, _ = upper_dist

    quiet, modules = run_spindle(tmp_path, "plugins", sites=[site])
    loud, verbose_modules = run_spindle(tmp_path, "-v", "plugins", sites=[site])

    assert quiet.returncode == loud.returncode == 0
    assert "logging" not in modules
    assert "spindle._cli._logging" in verbose_modules


def test_plugins_check_imports_and_describes(tmp_path, upper_dist):
    """`spindle plugins --check` imports each kind and shows its description."""
    site, record = upper_dist

    proc, _ = run_spindle(tmp_path, "plugins", "--check", "--json", sites=[site])

    doc = json.loads(proc.stdout)
    [upper] = [p for p in doc["plugins"] if p["distribution"] == "upper-dist"]
    assert upper["description"] == "Upper-cases text."
    assert upper["error"] is None
    assert record.read_text().splitlines() == ["upperpkg.mod"]


def test_plugins_prints_aligned_plain_text(runner, upper_dist):
    """Without a terminal the listing is plain text in aligned columns."""
    result = runner.invoke(make_cli(), ["plugins", "--group", "runtime"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["GROUP", "KIND", "DISTRIBUTION", "VERSION", "STATUS", "DESCRIPTION"]
    starts = {line.index(line.split()[1], len(line.split()[0])) for line in lines}
    assert len(starts) == 1
    row = next(line for line in lines if "upper-dist" in line)
    assert row.split()[:5] == ["runtime", "upper", "upper-dist", "1.4", "-"]


def test_plugins_json_is_one_document(runner, upper_dist):
    """--json prints {"plugins": [...]} with every field of every kind."""
    result = runner.invoke(make_cli(), ["plugins", "--json"])

    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    [upper] = [p for p in doc["plugins"] if p["kind"] == "upper"]
    assert upper == {
        "group": "runtime",
        "kind": "upper",
        "value": "upperpkg.mod:Upper",
        "distribution": "upper-dist",
        "version": "1.4",
        "description": "",
        "error": None,
        "denied": False,
    }


def test_plugins_check_reports_broken_kind_and_exits_1(runner, installed_distribution):
    """--check shows a broken kind's load error (distribution, version, cause) and exits 1."""
    installed_distribution(
        "broken-dist",
        "0.2",
        entry_points={"spindle.observer": {"broken": "brokenobs:Broken"}},
        modules={"brokenobs.py": "raise ImportError('missing optional dependency')\n"},
    )

    result = runner.invoke(make_cli(), ["plugins", "--check", "--group", "observer"])

    assert result.exit_code == EXIT_FAILED
    assert "broken-dist 0.2" in result.output
    assert "brokenobs:Broken" in result.output
    assert "missing optional dependency" in result.output


def test_plugins_check_exits_0_when_everything_loads(runner, installed_distribution):
    """--check exits 0 when every listed kind imports."""
    installed_distribution(
        "hooks-dist",
        entry_points={"spindle.hooks": {"quiet": "quiethooks"}},
        modules={"quiethooks.py": "'''No hooks.'''\n"},
    )

    result = runner.invoke(make_cli(), ["plugins", "--check", "--group", "hooks"])

    assert result.exit_code == EXIT_OK, result.output
    assert "quiet" in result.output and "ok" in result.output


def test_plugins_without_check_lists_broken_kinds_without_failing(runner, installed_distribution):
    """A broken kind does not break the plain listing."""
    installed_distribution(
        "broken-dist",
        entry_points={"spindle.observer": {"broken": "brokenobs2:Broken"}},
        modules={"brokenobs2.py": "raise ImportError('nope')\n"},
    )

    result = runner.invoke(make_cli(), ["plugins", "--group", "observer"])

    assert result.exit_code == 0
    assert "broken" in result.output


def test_plugins_shows_duplicates_as_errors(runner, installed_distribution, tmp_path):
    """A kind provided by two distributions is listed with the duplicate error."""
    for name in ("dup-one", "dup-two"):
        installed_distribution(name, entry_points={"spindle.effect": {"twin": f"{name}:Twin"}})

    result = runner.invoke(make_cli(), ["plugins", "--json", "--group", "effect"])

    [twin] = [p for p in json.loads(result.output)["plugins"] if p["kind"] == "twin"]
    assert "more than one distribution" in twin["error"]
    assert "[plugins.prefer]" in twin["error"]


def test_plugins_marks_kinds_denied_by_config(runner, spindle_config, upper_dist):
    """Kinds refused by [plugins] in spindle.toml are listed as denied."""
    spindle_config.write(plugins={"deny_kinds": ["runtime.upper"]})

    result = runner.invoke(make_cli(), ["plugins", "--json", "--group", "runtime"])

    [upper] = [p for p in json.loads(result.output)["plugins"] if p["kind"] == "upper"]
    assert upper["denied"] is True


def test_plugins_uses_a_rich_table_on_a_terminal(runner, upper_dist, monkeypatch):
    """On a terminal the listing is a rich table."""
    monkeypatch.setattr(plugins_module, "stdout_is_tty", lambda: True)

    result = runner.invoke(make_cli(), ["plugins", "--group", "runtime"])

    assert result.exit_code == 0, result.output
    assert "upper-dist" in result.output
    assert "rich.table" in sys.modules


def test_format_table_pads_all_but_the_last_column():
    """format_table aligns columns and leaves no trailing spaces."""
    text = plugins_module.format_table([("a", "long-value", "x")], header=("H1", "H2", "H3"))

    assert text.splitlines() == ["H1  H2          H3", "a   long-value  x"]


# --- subcommands from plugins ------------------------------------------------------

HELLO = """
import click

@click.command()
@click.option("--name", default="world")
def hello(name):
    '''Say hello.'''
    click.echo(f"hello {name}")
"""


def test_entry_point_command_is_listed_without_import(tmp_path, installed_distribution):
    """A spindle.cli command appears in --help from metadata; its module is not imported."""
    site = installed_distribution(
        "hello-dist",
        entry_points={"spindle.cli": {"hello": "hellocli:hello"}},
        modules={"hellocli.py": HELLO},
    )

    proc, modules = run_spindle(tmp_path, "--help", sites=[site])

    assert proc.returncode == 0
    assert "hello" in proc.stdout and "(from hello-dist)" in proc.stdout
    assert "hellocli" not in modules


def test_entry_point_command_runs(runner, installed_distribution):
    """Invoking a spindle.cli command imports and runs it."""
    installed_distribution(
        "hello-dist",
        entry_points={"spindle.cli": {"hello": "hellocli2:hello"}},
        modules={"hellocli2.py": HELLO},
    )

    result = runner.invoke(make_cli(), ["hello", "--name", "Ada"])

    assert result.exit_code == 0, result.output
    assert result.output == "hello Ada\n"


def test_broken_entry_point_command_fails_only_when_invoked(runner, installed_distribution):
    """A broken spindle.cli command leaves --help working and fails clearly when invoked."""
    installed_distribution(
        "bad-cli",
        "0.1",
        entry_points={"spindle.cli": {"bad": "badcli:bad"}},
        modules={"badcli.py": "import not_installed_anywhere\n"},
    )
    cli = make_cli()

    assert runner.invoke(cli, ["--help"]).exit_code == 0
    result = runner.invoke(cli, ["bad", "--help"])

    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("error: cli 'bad' cannot be loaded")
    for part in ("bad-cli 0.1", "badcli:bad", "not_installed_anywhere"):
        assert part in result.stderr
    assert "Traceback" not in result.output


def test_entry_point_that_is_not_a_command_fails_clearly(runner, installed_distribution):
    """A spindle.cli entry point naming a plain function is refused when invoked."""
    installed_distribution(
        "plain-cli",
        entry_points={"spindle.cli": {"plain": "plaincli:plain"}},
        modules={"plaincli.py": "def plain():\n    pass\n"},
    )

    result = runner.invoke(make_cli(), ["plain"])

    assert result.exit_code == EXIT_USAGE
    assert "not a click command" in result.stderr


HOOKS = """
import click
from spindle import hookimpl

@hookimpl
def spindle_add_cli_commands(group):
    with open({record!r}, "a") as f:
        f.write("called\\n")

    @click.command("from-hook")
    def from_hook():
        click.echo("added by a hook")

    group.add_command(from_hook)
"""


def test_hook_commands_resolve_only_for_unknown_names(runner, installed_distribution, tmp_path):
    """spindle_add_cli_commands runs to resolve an unknown name, never for --help."""
    record = tmp_path / "hook.log"
    installed_distribution(
        "hook-dist",
        entry_points={"spindle.hooks": {"clihooks": "clihooks"}},
        modules={"clihooks.py": HOOKS.format(record=str(record))},
    )
    cli = make_cli()

    assert runner.invoke(cli, ["--help"]).exit_code == 0
    assert not record.exists()
    result = runner.invoke(cli, ["from-hook"])

    assert result.exit_code == 0, result.output
    assert result.output == "added by a hook\n"
    assert record.read_text() == "called\n"


def test_unknown_command_is_a_usage_error(runner):
    """An unknown subcommand exits 2 with click's usage message."""
    result = runner.invoke(make_cli(), ["no-such-command"])

    assert result.exit_code == EXIT_USAGE
    assert "No such command" in result.output


def test_version_prints_name_and_version(runner):
    """--version prints `spindle X.Y.Z`."""
    from spindle import __version__

    result = runner.invoke(make_cli(), ["--version"])

    assert result.output == f"spindle {__version__}\n"


def test_unloadable_builtin_command_fails_cleanly(runner, monkeypatch):
    """A built-in command whose module is missing exits 2 with a one-line error."""
    monkeypatch.setitem(BUILTIN_COMMANDS, "ghost", ("spindle._cli.no_such_module:ghost", "Boo."))
    cli = make_cli()

    assert "Boo." in runner.invoke(cli, ["--help"]).output
    result = runner.invoke(cli, ["ghost"])

    assert result.exit_code == EXIT_USAGE
    assert "built-in command 'ghost' cannot be loaded" in result.stderr


# --- shared CLI helpers --------------------------------------------------------------


def test_handle_errors_turns_spindle_errors_into_exit_2(runner):
    """A SpindleError from a command prints `error: ...` (no traceback) and exits 2."""

    @click.command()
    @handle_errors
    def broken():
        raise SpindleError("the store is locked")

    result = runner.invoke(broken)

    assert result.exit_code == EXIT_USAGE
    assert result.stderr == "error: the store is locked\n"


def test_fail_exits_with_the_given_code(runner):
    """fail() prints the message on stderr and exits with the code given."""

    @click.command()
    def waiting():
        fail("still waiting", EXIT_WAITING)

    result = runner.invoke(waiting)

    assert (result.exit_code, result.stderr) == (EXIT_WAITING, "error: still waiting\n")


def test_plugins_lists_hook_modules_without_pluggy(tmp_path, installed_distribution):
    """Listing hook modules imports none of them, nor pluggy, attrs or cattrs."""
    site = installed_distribution(
        "spindle-badhooks",
        entry_points={"spindle.hooks": {"bad": "listedhooks"}},
        modules={"listedhooks.py": "raise RuntimeError('must not be imported by a listing')\n"},
    )

    proc, modules = run_spindle(tmp_path, "plugins", "--group", "hooks", sites=[site])

    assert proc.returncode == 0, proc.stderr
    assert "spindle-badhooks" in proc.stdout
    for name in ("listedhooks", "pluggy", "attrs", "attr", "cattrs"):
        assert name not in modules
