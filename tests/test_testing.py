"""The pytest plugin and helpers in ``spindle.testing``."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import tomllib

import pytest

from spindle import Registry, Store
from spindle.testing import installed, make_distribution, to_toml


def test_make_distribution_writes_a_wheel_like_layout(tmp_path):
    """make_distribution writes the package files and a dist-info with its metadata files."""
    site = make_distribution(
        tmp_path,
        "my-plugin",
        "1.2",
        entry_points={"spindle.runtime": {"upper": "mypkg.mod:Upper"}},
        modules={"mypkg/__init__.py": "", "mypkg/mod.py": "X = 1\n"},
        summary="A plugin.",
    )

    info = site / "my_plugin-1.2.dist-info"
    assert (site / "mypkg" / "mod.py").read_text() == "X = 1\n"
    assert "Name: my-plugin\nVersion: 1.2\nSummary: A plugin.\n" in (info / "METADATA").read_text()
    assert (info / "entry_points.txt").read_text() == "[spindle.runtime]\nupper = mypkg.mod:Upper\n"
    assert "mypkg/mod.py,," in (info / "RECORD").read_text().splitlines()


def test_made_distribution_is_seen_by_importlib_metadata(tmp_path):
    """The layout is real enough for importlib.metadata, not just for spindle's scanner."""
    site = make_distribution(
        tmp_path, "meta-check", "3.1", entry_points={"spindle.store": {"x": "m:X"}}
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from importlib.metadata import distribution as d;"
        "dist = d('meta-check'); print(dist.version, [e.name for e in dist.entry_points])"
    )

    out = subprocess.run(
        [sys.executable, "-c", code, str(site)], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "3.1 ['x']"


def test_installed_puts_the_directory_on_sys_path_and_cleans_up(tmp_path):
    """installed() makes modules importable, then removes the path and forgets the modules."""
    site = make_distribution(tmp_path, "tmp-dist", modules={"tmpmod_for_test.py": "VALUE = 7\n"})

    with installed(site):
        assert importlib.import_module("tmpmod_for_test").VALUE == 7

    assert str(site) not in sys.path
    assert "tmpmod_for_test" not in sys.modules


def test_installed_distribution_fixture_installs_for_one_test(installed_distribution):
    """The fixture returns the directory, already on sys.path."""
    site = installed_distribution("fixture-dist", modules={"fixturemod_for_test.py": "A = 1\n"})

    assert sys.path[0] == str(site)
    assert importlib.import_module("fixturemod_for_test").A == 1


def test_spindle_registry_is_empty(spindle_registry):
    """spindle_registry discovers nothing; kinds are registered in code."""
    assert isinstance(spindle_registry, Registry)
    assert spindle_registry.names("runtime") == []


def test_spindle_config_isolates_env_and_cwd(spindle_config, monkeypatch):
    """spindle_config runs the test in its own directory and writes spindle.toml there."""
    import os

    assert os.getcwd() == str(spindle_config.path)
    spindle_config.write(store="memory://", plugins={"prefer": {"runtime.upper": "dist-b"}})

    settings = spindle_config.load()

    assert settings.store == "memory://"
    assert settings.plugins.prefer == {"runtime.upper": "dist-b"}


def test_to_toml_round_trips_through_tomllib():
    """to_toml writes scalars, lists, inline tables and nested tables tomllib reads back."""
    data = {
        "store": "sqlite:///x.db",
        "concurrency": 3,
        "lease_ttl": 1.5,
        "flag": True,
        "hooks": ["a", "b"],
        "observers": [{"kind": "jsonl", "path": 'quote"d'}],
        "plugins": {"deny_kinds": [], "prefer": {"runtime.upper": "dist-b"}},
    }

    assert tomllib.loads(to_toml(data)) == data


def test_to_toml_refuses_unsupported_values():
    """Values TOML cannot express raise TypeError."""
    with pytest.raises(TypeError):
        to_toml({"x": None})


def test_spindle_store_is_an_open_memory_store(request):
    """spindle_store gives a fresh memory:// store."""
    pytest.importorskip("spindle.plugins.stores.memory", reason="memory store not written yet")
    store = request.getfixturevalue("spindle_store")

    assert isinstance(store, Store)
    assert asyncio.run(store.list_runs()) == []


def test_importing_spindle_testing_stays_cheap():
    """The pytest plugin imports nothing of spindle beyond the facade."""
    code = (
        "import sys, pytest; before = set(sys.modules); import spindle.testing;"
        "print(sorted(set(sys.modules) - before))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "['spindle', 'spindle._version', 'spindle.testing']"
