"""Ctrl-C at any moment of a command: exit code 130 and an honest message.

A run command names a new run before the engine writes it (the run is written
with its first step), so Ctrl-C in between must not claim a resumable run that
was never recorded. Outside the run commands' own handling (a command still
being imported, a file still being read) click would say ``Aborted!`` and
exit 1, which a script cannot tell from a failed run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from spindle._cli._running import run_recorded
from spindle.cli import make_cli

HELLO = """\
name: hello
nodes:
  say:
    runtime: {kind: python_code, code: "result = 'hi'"}
output: say
"""


def test_run_recorded_asks_the_store(tmp_path, monkeypatch):
    """True for a run the store holds, False for an id it never saw."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(HELLO)
    url = f"sqlite:///{tmp_path}/spindle.db"
    result = CliRunner().invoke(make_cli(), ["run", "hello.yaml", "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    assert run_recorded(url, run_id) is True
    assert run_recorded(url, "0" * 32) is False


def test_run_recorded_cannot_tell_about_a_broken_store(tmp_path):
    """A store that cannot be opened gives None (the message then stays the usual one)."""
    assert run_recorded("nosuchkind://x", "r1") is None


_DRIVE = """\
import sys
from spindle._cli._running import call_driving

async def main():
    raise KeyboardInterrupt

call_driving(main, lambda: "r42", None, recorded=lambda name: {verdict})
"""


@pytest.mark.parametrize(
    ("verdict", "message"),
    [
        ("False", "interrupted before run r42 was recorded; nothing to resume"),
        ("True", "interrupted: run r42 is recorded and can continue where it stopped: "),
        ("None", "interrupted: run r42 is recorded"),
    ],
)
def test_ctrl_c_before_the_run_is_written_says_so(verdict, message):
    """Ctrl-C while driving: 130, and 'resume' only for a run the store holds (or may hold)."""
    script = textwrap.dedent(_DRIVE).format(verdict=verdict)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 130, proc.stderr
    assert message in proc.stderr
    if verdict == "False":
        assert "spindle resume" not in proc.stderr


def test_ctrl_c_in_any_command_exits_130_not_aborted():
    """A KeyboardInterrupt outside the run commands' handling: 'interrupted', exit 130."""
    group = make_cli()

    @group.command("nap")
    def nap() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(group, ["nap"])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert "Aborted" not in result.output + result.stderr


def test_a_prompt_given_no_answer_still_aborts_as_before():
    """click.prompt's own Abort (Ctrl-C or end of input at a prompt) is not turned into 130."""
    group = make_cli()

    @group.command("askme")
    def askme() -> None:
        click.prompt("name")

    result = CliRunner().invoke(group, ["askme"], input="")
    assert result.exit_code == 1
    assert "Aborted" in result.output + result.stderr
