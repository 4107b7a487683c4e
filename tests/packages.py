"""A plugin package's source checkout written as an installed distribution.

Tests that need a package's entry points found (``spindle plugins``, a run
through the CLI) without ``pip install`` use :func:`site_of`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from spindle.testing import make_distribution


def site_of(package: Path, dest: Path) -> Path:
    """``package`` (a ``pyproject.toml`` and a ``src/`` layout) as a site-packages
    directory under ``dest``: its modules (``.py`` and ``py.typed``), its entry points
    and its metadata, as pip would install them."""
    pyproject = (package / "pyproject.toml").read_text(encoding="utf-8")
    project = tomllib.loads(pyproject)["project"]
    src = package / "src"
    modules = {
        path.relative_to(src).as_posix(): path.read_text(encoding="utf-8")
        for path in src.rglob("*")
        if path.is_file() and path.suffix in (".py", ".typed")
    }
    return make_distribution(
        dest,
        project["name"],
        project["version"],
        entry_points=project["entry-points"],
        modules=modules,
        summary=project["description"],
    )
