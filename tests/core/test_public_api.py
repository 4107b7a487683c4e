"""The public API of ``spindle``: exactly the documented names, importable lazily."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys

import pytest

import spindle

PUBLIC = sorted([*spindle._LAZY, "__version__"])


def test_all_is_the_documented_public_api():
    """spindle.__all__ is the sorted list of lazily exported names plus __version__."""
    assert spindle.__all__ == PUBLIC
    assert len(set(spindle.__all__)) == len(spindle.__all__)


def test_dir_lists_the_public_api():
    """dir(spindle) shows the public names, so completion finds the lazy ones."""
    assert dir(spindle) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name):
    """Each public name resolves to an object defined in the module _LAZY names."""
    value = getattr(spindle, name)

    assert value is not None
    if name != "__version__" and (inspect.isclass(value) or inspect.isfunction(value)):
        assert value.__module__ == spindle._LAZY[name]


def test_type_checking_imports_match_the_lazy_table():
    """The TYPE_CHECKING re-exports (for type checkers) name the same objects as _LAZY."""
    tree = ast.parse(inspect.getsource(spindle))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    imported = {
        alias.asname or alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }

    assert imported == spindle._LAZY


def test_unknown_attribute_raises_attribute_error():
    """A name outside the public API raises AttributeError."""
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        spindle.Nope  # noqa: B018 - the access is the test


def _modules_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out.splitlines()[-1])


def test_importing_spindle_loads_only_the_facade():
    """`import spindle` imports no engine, no attrs/cattrs, no click, no pluggy."""
    before = set(_modules_after("pass"))
    after = set(_modules_after("import spindle"))

    # Standard-library modules vary with how Python was started (site hooks may
    # preload some), so only spindle's own modules and third-party ones are checked.
    new = {m for m in after - before if m.split(".")[0] not in sys.stdlib_module_names}
    assert new <= {"spindle", "spindle._version"}


def test_one_public_name_imports_only_what_it_needs():
    """Touching spindle.PluginLoadError imports the errors module, not the engine."""
    modules = _modules_after("import spindle; spindle.PluginLoadError")

    assert "spindle.core.errors" in modules
    for heavy in ("spindle.core.engine._engine", "attr", "cattrs", "click", "pluggy"):
        assert heavy not in modules
