"""The `spindle` process skips start-up's objects in garbage collection and at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE_TASK = """
import gc

def state():
    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}
"""

WORKFLOW = """
name: probe
nodes:
  look:
    runtime: {kind: python, function: "probe_gc:state"}
output: look
"""

#: Runs ``main()`` as the console script does (argv from sys.argv) and says at exit
#: whether the collector had frozen what was left; its exit handler is registered
#: before main's, so it runs after it.
AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
sys.argv = ["spindle", *sys.argv[1:]]
from spindle.cli import main
main()
"""

#: Calls ``main(args)`` in-process, as a host or a test does, and reports the collector.
IN_PROCESS = """
import gc, json, sys
from spindle.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPINDLE_STORE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_run_collects_as_usual_without_walking_start_up(tmp_path: Path) -> None:
    """A task of `spindle run` runs with the collector on and start-up's objects frozen."""
    (tmp_path / "probe_gc.py").write_text(PROBE_TASK, encoding="utf-8")
    (tmp_path / "probe.yaml").write_text(WORKFLOW, encoding="utf-8")

    proc = _run(["-m", "spindle", "run", "probe.yaml", "--json"], tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == {"enabled": True, "frozen": True}


def test_exit_freezes_what_is_left(tmp_path: Path) -> None:
    """When the command ends, the objects left are frozen before the interpreter's final passes."""
    proc = _run(["-c", AT_EXIT, "runs", "--store", "memory://"], tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "frozen at exit: True"


def test_main_called_in_process_leaves_the_collector_alone(tmp_path: Path) -> None:
    """main(args) from a host or a test neither pauses nor freezes the collector."""
    proc = _run(["-c", IN_PROCESS, "runs", "--store", "memory://"], tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"enabled": True, "frozen": 0}


def test_a_plugin_command_runs_with_the_collector_on(tmp_path: Path, installed_distribution):
    """A command from a `spindle.cli` entry point (it may run for long) is collected as usual."""
    site = installed_distribution(
        "gc-cli",
        entry_points={"spindle.cli": {"gcstate": "gccli:gcstate"}},
        modules={
            "gccli.py": (
                "import gc, click\n"
                "@click.command()\n"
                "def gcstate():\n"
                "    click.echo(f'enabled={gc.isenabled()}')\n"
            )
        },
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("SPINDLE_STORE", None)

    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "gcstate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "enabled=True"
