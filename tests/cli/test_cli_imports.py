"""Commands import only what they use: the fixed cost of a command cannot silently grow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Runs ``spindle ARGS`` as the console script does and prints the modules imported.
PROBE = """
import json, sys
sys.argv = ["spindle", *sys.argv[1:]]
from spindle.cli import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("\\n" + json.dumps(sorted(sys.modules)))
"""

ONE_NODE = """
name: one
nodes:
  only:
    runtime: {kind: python_code, code: "result = 1"}
"""


def run_probe(cwd: Path, *args: str) -> tuple[str, list[str]]:
    """What ``spindle ARGS`` printed on stdout, and the modules it imported."""
    env = {k: v for k, v in os.environ.items() if k != "SPINDLE_STORE"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    modules: list[str] = json.loads(last)
    return out, modules


def modules_for(cwd: Path, *args: str) -> list[str]:
    """The modules ``spindle ARGS`` imported."""
    return run_probe(cwd, *args)[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working directory with a 1-node workflow, no spindle.toml, a warm plugin cache."""
    (tmp_path / "one.yaml").write_text(ONE_NODE, encoding="utf-8")
    modules_for(tmp_path, "plugins")  # fills the entry-point cache for this sys.path
    return tmp_path


def test_plugins_imports_no_engine_attrs_or_event_loop(project: Path) -> None:
    """`spindle plugins` reads metadata only: no engine, model, attrs, asyncio or TOML parser."""
    modules = modules_for(project, "plugins")

    for name in (
        "asyncio",
        "attr",
        "cattrs",
        "pluggy",
        "yaml",
        "tomllib",
        "importlib.metadata",
        "spindle.core.engine._engine",
        "spindle.core.model._run",
        "spindle.core.workflow._loader",
    ):
        assert name not in modules, f"{name} imported by spindle plugins"
    assert not any(m.startswith("spindle.plugins.") for m in modules)


def test_run_imports_no_toml_parser_or_metadata_scanner(project: Path) -> None:
    """`spindle run`, no config file, cache warm, piped: no tomllib, importlib.metadata, rich."""
    modules = modules_for(project, "run", "one.yaml", "--store", "sqlite:///runs.db", "--quiet")

    assert "spindle.core.engine._engine" in modules  # the command did run
    for name in ("tomllib", "importlib.metadata", "rich"):
        assert name not in modules, f"{name} imported by spindle run"


def test_a_config_file_is_still_parsed(project: Path) -> None:
    """With a spindle.toml the TOML parser is imported and the file's settings apply."""
    (project / "spindle.toml").write_text('store = "sqlite:///from-toml.db"\n', "utf-8")

    modules = modules_for(project, "run", "one.yaml", "--quiet")

    assert "tomllib" in modules
    assert (project / "from-toml.db").exists()


def test_runs_show_and_ledger_import_no_loader_or_task_plugin(project: Path) -> None:
    """Commands that read the store import no YAML loader, runtime or executor, no TOML parser."""
    store = ("--store", "sqlite:///runs.db")
    out, _ = run_probe(project, "run", "one.yaml", *store, "--json")
    run_id = json.loads(out)["run_id"]

    for args in (("runs",), ("show", run_id), ("ledger", run_id), ("ledger", "verify", run_id)):
        out, modules = run_probe(project, *args, *store)
        assert "completed" in out or "intact" in out  # the command did its work
        for name in ("tomllib", "importlib.metadata", "rich", "spindle.core.workflow._loader"):
            assert name not in modules, f"{name} imported by spindle {' '.join(args)}"
        for prefix in ("spindle.plugins.runtimes", "spindle.plugins.executors"):
            assert not any(m.startswith(prefix) for m in modules), f"{prefix} by {args}"
