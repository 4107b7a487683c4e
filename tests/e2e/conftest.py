"""Fixtures for end-to-end tests: the real ``spindle`` command in a subprocess.

Each test gets a fresh working directory (``tmp_path``), so the default store
(``.spindle/spindle.db``) and run directories are created there; the
environment is the cleaned one of ``tests/conftest.py`` (no ``SPINDLE_*``
from the developer's shell, a temporary ``SPINDLE_CACHE_DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Spindle:
    """Runs ``python -m spindle ARGS`` in ``cwd`` and returns the finished process."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "SPINDLE_STORE"}
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "spindle", *args],
            cwd=self.cwd,
            env=self.env(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "spindle", *args],
            cwd=self.cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def json(self, *args: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """Run with ``--json``; return the exit code and the one JSON document printed."""
        proc = self(*args, "--json", **kwargs)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(
                f"not one JSON document (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            ) from None


@pytest.fixture
def spindle(tmp_path: Path) -> Spindle:
    """The ``spindle`` command, run in this test's working directory."""
    return Spindle(tmp_path)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of the repository's ``examples/`` in the working directory."""
    return Path(shutil.copytree(EXAMPLES, tmp_path / "examples"))


@pytest.fixture
def write(tmp_path: Path):
    """Write a file (a workflow, a module, spindle.toml) in the working directory."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write
