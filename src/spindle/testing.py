"""Test helpers for spindle plugin authors; also spindle's pytest plugin.

Installing spindle registers this module with pytest (entry point
``pytest11``), so these fixtures are available in any project's tests:

``spindle_registry``
    A fresh, empty :class:`~spindle.Registry` (no entry points) to register
    kinds in code: ``spindle_registry.register(MyRuntime)``.
``spindle_config``
    A temporary working directory with ``SPINDLE_*`` variables cleared;
    ``spindle_config.write(store="memory://")`` writes ``spindle.toml`` and
    ``spindle_config.load()`` returns the resulting :class:`~spindle.Settings`.
``spindle_store``
    A fresh, opened ``memory://`` store.
``installed_distribution``
    Installs throwaway distributions with real entry points on ``sys.path``
    for the test, and removes them afterwards.
``run_workflow``
    ``run_workflow(wf, inputs, plugins=[...])`` runs on ``memory://``: a ``WorkflowResult``.
``spindle_no_installed_hooks``
    Keeps installed hook modules out of the test (also a marker of that name).

:func:`make_distribution` and :func:`installed` do the same outside fixtures;
:func:`make_task_context` / :func:`make_effect_context` build real contexts,
:class:`StoreContract` is the store contract suite. pytest imports this module
in every session of every project that has spindle installed, so it imports
only the standard library and pytest; the rest of spindle is imported inside
the fixtures.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from spindle._testing._kit import (
        NoRunLinks,
        WorkflowResult,
        WorkflowRunner,
        make_effect_context,
        make_task_context,
    )
    from spindle._testing.store_contract import StoreContract
    from spindle.core.config import Settings
    from spindle.core.plugin import Registry
    from spindle.core.store import Store

__all__ = [
    "NoRunLinks",
    "SpindleConfig",
    "StoreContract",
    "WorkflowResult",
    "WorkflowRunner",
    "installed",
    "installed_distribution",
    "make_distribution",
    "make_effect_context",
    "make_task_context",
    "run_workflow",
    "spindle_config",
    "spindle_no_installed_hooks",
    "spindle_registry",
    "spindle_store",
    "to_toml",
]

#: ``SPINDLE_*`` variables that are not settings and survive ``spindle_config``.
_KEEP_ENV = frozenset(
    {"SPINDLE_CACHE_DIR", "SPINDLE_NO_PLUGIN_CACHE", "SPINDLE_NO_INSTALLED_HOOKS"}
)
#: Names resolved on first use (:func:`__getattr__`): they import the rest of spindle.
_KIT = ("NoRunLinks", "WorkflowResult", "WorkflowRunner", "make_effect_context")
_LAZY = dict.fromkeys((*_KIT, "make_task_context"), "spindle._testing._kit")
_LAZY["StoreContract"] = "spindle._testing.store_contract"
_NO_HOOKS, _SWITCH = "spindle_no_installed_hooks", "SPINDLE_NO_INSTALLED_HOOKS"
_SAVED_SWITCH = pytest.StashKey[str | None]()


# --- throwaway distributions ------------------------------------------------


def make_distribution(
    path: str | os.PathLike[str],
    name: str,
    version: str = "1.0",
    *,
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    modules: Mapping[str, str] | None = None,
    summary: str = "",
) -> Path:
    """Write a real, installed-looking distribution into the directory ``path``.

    The directory receives the package files and a
    ``NAME-VERSION.dist-info`` with ``METADATA``, ``entry_points.txt`` and
    ``RECORD``, exactly as ``pip`` lays out a wheel in ``site-packages``. Put
    the directory on ``sys.path`` (:func:`installed`) and the entry points are
    discovered like any installed plugin's. Several distributions may share
    one directory.

    Args:
        path: the directory standing in for ``site-packages`` (created if needed).
        name: the distribution name (``my-plugin``).
        version: its version.
        entry_points: ``{group: {name: "module:attr"}}``, e.g.
            ``{"spindle.runtime": {"upper": "mypkg.mod:Upper"}}``.
        modules: ``{relative file path: source}``; sources are dedented.
        summary: the ``Summary:`` metadata line.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.

    Example::

        site = make_distribution(tmp_path, "dist-a", "1.0",
            entry_points={"spindle.runtime": {"upper": "mypkg.mod:Upper"}},
            modules={"mypkg/__init__.py": "", "mypkg/mod.py": UPPER_SOURCE})
    """
    site = Path(path)
    site.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for rel, source in (modules or {}).items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source), encoding="utf-8")
        written.append(rel.replace(os.sep, "/"))
    # Wheel metadata dirs use the normalized name with underscores.
    stem = re.sub(r"[-_.]+", "_", name)
    info = site / f"{stem}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=False)
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if summary:
        metadata += f"Summary: {summary}\n"
    (info / "METADATA").write_text(metadata, encoding="utf-8")
    sections = []
    for group, eps in (entry_points or {}).items():
        lines = "".join(f"{ep} = {value}\n" for ep, value in eps.items())
        sections.append(f"[{group}]\n{lines}")
    (info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
    records = [*written, *(f"{info.name}/{f}" for f in ("METADATA", "entry_points.txt"))]
    (info / "RECORD").write_text(
        "".join(f"{r},,\n" for r in records) + f"{info.name}/RECORD,,\n", encoding="utf-8"
    )
    return site


def _reset_default_registry() -> None:
    active = sys.modules.get("spindle.core.plugin._active")
    if active is not None:
        active.set_default_registry(None)


@contextlib.contextmanager
def installed(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Put the directory ``path`` first on ``sys.path`` for the duration of the block.

    On exit the entry is removed and every module imported from it is
    forgotten, so the next test can install a different distribution with
    the same module names. The process-wide default registry is reset on
    entry and exit so it sees exactly what is installed.
    """
    entry = os.fspath(path)
    prefix = os.path.join(os.path.abspath(entry), "")
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    _reset_default_registry()
    try:
        yield Path(entry)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if origin.startswith(prefix):
                del sys.modules[name]
        importlib.invalidate_caches()
        _reset_default_registry()


@pytest.fixture
def installed_distribution(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Install throwaway distributions for one test: ``install(name, version, **kw) -> dir``.

    Takes the arguments of :func:`make_distribution` (without ``path``); pass
    ``site=`` to put several distributions in one directory, otherwise each
    gets its own ``sys.path`` entry. Everything is removed after the test.
    """
    with contextlib.ExitStack() as stack:
        active: set[Path] = set()

        def install(
            name: str,
            version: str = "1.0",
            *,
            site: str | os.PathLike[str] | None = None,
            **kwargs: Any,
        ) -> Path:
            where = Path(site) if site is not None else tmp_path / f"site-{name}-{version}"
            make_distribution(where, name, version, **kwargs)
            if where not in active:
                stack.enter_context(installed(where))
                active.add(where)
            return where

        yield install


# --- registry, config, store ---------------------------------------------------


@pytest.fixture
def spindle_registry() -> Registry:
    """A fresh registry without entry points; register kinds on it in code."""
    from spindle.core.plugin import Registry

    return Registry.for_testing(builtins=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        body = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + body + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def to_toml(settings: Mapping[str, Any], _table: str = "") -> str:
    """Render a mapping as TOML: scalars and lists first, then one ``[table]`` per mapping."""
    plain = [(k, v) for k, v in settings.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in settings.items() if isinstance(v, Mapping)]
    out = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in plain)
    for key, value in tables:
        name = f"{_table}.{_toml_key(key)}" if _table else _toml_key(key)
        out += f"\n[{name}]\n" + to_toml(value, name)
    return out


class SpindleConfig:
    """A working directory with a ``spindle.toml`` writer (the ``spindle_config`` fixture)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def file(self) -> Path:
        """The ``spindle.toml`` of this directory."""
        return self.path / "spindle.toml"

    def write(self, **settings: Any) -> Path:
        """Write ``settings`` as ``spindle.toml`` (replacing it) and return its path.

        Example: ``spindle_config.write(store="memory://", plugins={"deny_kinds": [...]})``.
        """
        self.file.write_text(to_toml(settings), encoding="utf-8")
        return self.file

    def write_text(self, text: str) -> Path:
        """Write ``text`` (dedented) as ``spindle.toml``, for exact layouts and bad files."""
        self.file.write_text(textwrap.dedent(text), encoding="utf-8")
        return self.file

    def load(self, **overrides: Any) -> Settings:
        """Load the settings of this directory, with explicit ``overrides``."""
        from spindle.core.config import load_settings

        return load_settings(self.path, overrides=overrides)


@pytest.fixture
def spindle_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SpindleConfig:
    """A temporary working directory (the cwd for the test) with ``SPINDLE_*`` cleared."""
    for name in list(os.environ):
        if name.startswith("SPINDLE_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return SpindleConfig(project)


@pytest.fixture
def spindle_store() -> Iterator[Store]:
    """A fresh ``memory://`` store, opened (in its own event loop) and closed after the test."""
    import asyncio  # not at module level: pytest imports this module in every session

    from spindle.core.plugin import Registry

    cls = Registry().get("store", "memory")
    store: Store = cls.from_url("memory://")
    asyncio.run(store.open())
    try:
        yield store
    finally:
        asyncio.run(store.aclose())


# --- the plugin kit: the store contract, run_workflow, hook isolation ------------


def __getattr__(name: str) -> Any:
    # The kit imports the engine (and the suite hypothesis): on demand, never at plugin load.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spindle.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the ``async def`` tests of a ``StoreContract`` subclass on its ``event_loop``."""
    import asyncio
    import inspect

    if not getattr(pyfuncitem.cls, "spindle_store_contract", False):
        return None
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    loop = pyfuncitem.funcargs["event_loop"]
    if not isinstance(loop, asyncio.AbstractEventLoop):  # a subclass overrode the fixture
        raise TypeError(f"the event_loop fixture gave {loop!r}, not an asyncio event loop")
    names = inspect.signature(function).parameters
    loop.run_until_complete(function(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def run_workflow(tmp_path: Path) -> WorkflowRunner:
    """``run_workflow(wf, inputs, plugins=[...])``: run on ``memory://``, get the result.

    See :class:`~spindle._testing._kit.WorkflowRunner` for every option.
    """
    from spindle._testing._kit import WorkflowRunner

    return WorkflowRunner(tmp_path / "runs")


def _set_switch(value: str | None) -> str | None:
    """Set (None: unset) ``SPINDLE_NO_INSTALLED_HOOKS``; return what it was."""
    old = os.environ.pop(_SWITCH, None)
    if value is not None:
        os.environ[_SWITCH] = value
    _reset_default_registry()
    return old


@pytest.fixture
def spindle_no_installed_hooks() -> Iterator[None]:
    """Leave installed hook modules out of the registries (and subprocesses) of the test.

    Sets ``SPINDLE_NO_INSTALLED_HOOKS=1`` and resets the default registry; hook
    modules given in code or in the ``hooks`` setting still load.
    """
    old = _set_switch("1")
    yield
    _set_switch(old)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``spindle_no_installed_hooks`` marker."""
    config.addinivalue_line(
        "markers", f"{_NO_HOOKS}: leave installed spindle hook modules out of this test"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Turn the switch on for a test marked ``spindle_no_installed_hooks``, before its fixtures."""
    if item.get_closest_marker(_NO_HOOKS) is not None:
        item.stash[_SAVED_SWITCH] = _set_switch("1")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Put the switch back after a marked test's fixtures are torn down."""
    if _SAVED_SWITCH in item.stash:
        _set_switch(item.stash[_SAVED_SWITCH])
