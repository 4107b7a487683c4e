"""``spindle new-plugin``: the generated package installs, is discovered, and its tests pass.

Each package is written by the real command in a subprocess, "installed"
without pip or a network (its ``src`` on ``PYTHONPATH`` plus a dist-info with
the entry points of its ``pyproject.toml``, written by
``spindle.testing.make_distribution``), then its own tests run in a
subprocess pytest, as its author would run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from spindle._cli._scaffold import KINDS
from spindle.testing import make_distribution


def install(package: Path, site: Path) -> dict[str, str]:
    """Make ``package`` importable and its entry points discoverable; the env to use."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    make_distribution(
        site, project["name"], project["version"], entry_points=project["entry-points"]
    )
    paths = [str(package / "src"), str(site), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def spindle(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spindle", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_package_passes_its_own_tests(tmp_path, kind):
    """For each kind, the package's tests pass right after generation, and spindle finds it."""
    made = spindle(tmp_path, "new-plugin", "acme", "--kind", kind)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "spindle-acme"
    assert (package / "src" / "spindle_acme" / f"{kind}.py").is_file()
    env = install(package, tmp_path / "site")

    listed = spindle(tmp_path, "plugins", "--check", env=env)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "spindle-acme" in line)
    assert row.split()[:2] == [kind, "acme"] and " ok " in f" {row} "
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout


def test_a_bad_name_is_refused_with_the_rule(tmp_path):
    """A name that cannot be a module and a kind exits 2 saying what a name must be."""
    made = spindle(tmp_path, "new-plugin", "Acme-Cloud")

    assert made.returncode == 2
    assert "plugin name 'Acme-Cloud' is not valid: use lower-case letters" in made.stderr
    assert not list(tmp_path.iterdir())


def test_an_unknown_kind_is_refused_with_the_choices(tmp_path):
    """--kind takes the seven kinds (and 'all'); another one exits 2 listing them."""
    made = spindle(tmp_path, "new-plugin", "acme", "--kind", "scheduler")

    assert made.returncode == 2
    assert "'scheduler' is not one of" in made.stderr
    assert "'middleware'" in made.stderr


def test_a_non_empty_destination_needs_force(tmp_path):
    """An existing non-empty --dest is left alone unless --force is given."""
    dest = tmp_path / "here"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    refused = spindle(tmp_path, "new-plugin", "acme", "--dest", str(dest))
    forced = spindle(tmp_path, "new-plugin", "acme", "--dest", str(dest), "--force")

    assert refused.returncode == 2
    assert "is not empty; choose another --dest, or pass --force" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert (dest / "keep.txt").read_text() == "mine"
    assert (dest / "src" / "spindle_acme" / "runtime.py").is_file()


def test_the_default_is_one_runtime_and_all_means_every_kind(tmp_path):
    """Without --kind the package has a runtime only; --kind all declares all seven groups."""
    assert spindle(tmp_path, "new-plugin", "one").returncode == 0
    assert spindle(tmp_path, "new-plugin", "every", "--kind", "all").returncode == 0

    one = tomllib.loads((tmp_path / "spindle-one" / "pyproject.toml").read_text())
    every = tomllib.loads((tmp_path / "spindle-every" / "pyproject.toml").read_text())

    assert one["project"]["entry-points"] == {
        "spindle.runtime": {"one": "spindle_one.runtime:OneRuntime"}
    }
    assert sorted(every["project"]["entry-points"]) == sorted(f"spindle.{k}" for k in KINDS)
    assert every["project"]["entry-points"]["spindle.hooks"] == {"every": "spindle_every.hooks"}
