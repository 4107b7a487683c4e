"""The plugin registry, against real distributions on a temporary ``sys.path``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from attrs import define

from spindle import PluginLoadError, PluginPolicy, Registry, Runtime, UnknownKindError, hookimpl
from spindle.core.errors import PluginPolicyError, ValidationError
from spindle.core.plugin import make_plugin_manager


def runtime_source(cls_name: str = "Upper", kind: str = "upper", record: Path | None = None) -> str:
    """Source of a plugin module defining one runtime; it appends its name to ``record``."""
    mark = (
        f"with open({str(record)!r}, 'a') as _f:\n    _f.write(__name__ + '\\n')\n"
        if record
        else ""
    )
    return (
        "from attrs import define\n"
        "from spindle import Runtime\n"
        f"{mark}"
        "@define\n"
        f"class {cls_name}(Runtime[str], kind={kind!r}, description='Upper-cases text.'):\n"
        "    text: str = ''\n"
        "    async def _setup_runtime(self, task):\n"
        "        return self.text.upper()\n"
    )


def runtime_dist(install, name, version="1.0", *, pkg, kind="upper", source=None, site=None):
    """Install a distribution ``name`` whose ``spindle.runtime`` ``kind`` is ``pkg.mod:Upper``."""
    return install(
        name,
        version,
        site=site,
        entry_points={"spindle.runtime": {kind: f"{pkg}.mod:Upper"}},
        modules={
            f"{pkg}/__init__.py": "",
            f"{pkg}/mod.py": source if source is not None else runtime_source(kind=kind),
        },
    )


# --- laziness ---------------------------------------------------------------------


def test_listing_imports_nothing_and_get_imports_once(installed_distribution, tmp_path):
    """names() and kinds() read metadata only; get() imports the one entry point, once."""
    record = tmp_path / "imports.log"
    runtime_dist(
        installed_distribution,
        "lazy-dist",
        "2.3",
        pkg="lazypkg",
        source=runtime_source(record=record),
    )
    reg = Registry()

    assert "upper" in reg.names("runtime")
    info = {k.kind: k for k in reg.kinds("runtime")}["upper"]
    assert (info.distribution, info.version, info.value) == (
        "lazy-dist",
        "2.3",
        "lazypkg.mod:Upper",
    )
    assert not record.exists()
    assert "lazypkg.mod" not in sys.modules

    cls = reg.get("runtime", "upper")
    assert cls.__name__ == "Upper"
    assert reg.get("runtime", "upper") is cls
    assert record.read_text().splitlines() == ["lazypkg.mod"]


def test_getting_one_kind_leaves_the_others_unimported(installed_distribution, tmp_path):
    """Loading one kind does not import the modules of other kinds."""
    site = tmp_path / "site"
    runtime_dist(installed_distribution, "dist-a", pkg="pkga", kind="a", site=site)
    runtime_dist(installed_distribution, "dist-b", pkg="pkgb", kind="b", site=site)
    reg = Registry(paths=[str(site)])

    reg.get("runtime", "a")

    assert "pkga.mod" in sys.modules
    assert "pkgb.mod" not in sys.modules


def test_loaded_kind_is_described(installed_distribution):
    """After a kind is loaded, kinds() shows its description."""
    site = runtime_dist(installed_distribution, "desc-dist", pkg="descpkg")
    reg = Registry(paths=[str(site)])
    assert reg.kinds("runtime")[0].description == ""

    reg.get("runtime", "upper")

    assert reg.kinds("runtime")[0].description == "Upper-cases text."


# --- broken entry points are isolated --------------------------------------------


def _assert_names_everything(
    err: PluginLoadError, *, kind: str, dist: str, version: str, value: str
) -> None:
    text = str(err)
    for part in ("runtime", f"'{kind}'", dist, version, value):
        assert part in text, f"{part!r} missing from: {text}"
    assert (err.group, err.kind, err.distribution, err.value) == ("runtime", kind, dist, value)


def test_import_error_is_isolated_and_named(installed_distribution, tmp_path):
    """An entry point that fails to import raises PluginLoadError naming everything; others work."""
    site = tmp_path / "site"
    runtime_dist(installed_distribution, "good-dist", pkg="goodpkg", kind="good", site=site)
    runtime_dist(
        installed_distribution,
        "broken-dist",
        "0.4.1",
        pkg="brokenpkg",
        kind="broken",
        site=site,
        source="import no_such_module_for_spindle_tests\n",
    )
    failures = []
    reg = Registry(paths=[str(site)], on_load_failure=failures.append)

    assert reg.names("runtime") == ["broken", "good"]
    with pytest.raises(PluginLoadError) as caught:
        reg.get("runtime", "broken")

    err = caught.value
    _assert_names_everything(
        err, kind="broken", dist="broken-dist", version="0.4.1", value="brokenpkg.mod:Upper"
    )
    assert "No module named 'no_such_module_for_spindle_tests'" in str(err)
    assert isinstance(err.__cause__, ModuleNotFoundError)
    assert isinstance(err, ImportError)
    assert failures == [err]
    assert reg.get("runtime", "good").__name__ == "Upper"


def test_broken_kind_fails_the_same_way_every_time(installed_distribution):
    """A broken kind is imported once; later uses re-raise the recorded error."""
    site = runtime_dist(
        installed_distribution, "flaky-dist", pkg="flakypkg", source="raise RuntimeError('boom')\n"
    )
    reg = Registry(paths=[str(site)])

    with pytest.raises(PluginLoadError) as first:
        reg.get("runtime", "upper")
    with pytest.raises(PluginLoadError) as second:
        reg.get("runtime", "upper")

    assert first.value is second.value
    assert "RuntimeError: boom" in str(first.value)
    assert reg.load_errors() == [first.value]
    assert reg.kinds("runtime")[0].error == str(first.value)


def test_wrong_base_class_is_isolated(installed_distribution, tmp_path):
    """An entry point that is not a subclass of the group's base raises PluginLoadError."""
    site = tmp_path / "site"
    runtime_dist(installed_distribution, "good-dist", pkg="okpkg", kind="good", site=site)
    runtime_dist(
        installed_distribution,
        "wrong-dist",
        "3.0",
        pkg="wrongpkg",
        kind="wrong",
        site=site,
        source="class Upper:\n    pass\n",
    )
    reg = Registry(paths=[str(site)])

    with pytest.raises(PluginLoadError) as caught:
        reg.get("runtime", "wrong")

    _assert_names_everything(
        caught.value, kind="wrong", dist="wrong-dist", version="3.0", value="wrongpkg.mod:Upper"
    )
    assert "not a subclass of spindle.Runtime" in str(caught.value)
    assert reg.get("runtime", "good").kind_name == "good"


def test_kind_name_mismatch_is_reported(installed_distribution):
    """A class declaring another kind than its entry-point name raises PluginLoadError."""
    site = runtime_dist(
        installed_distribution,
        "mismatch-dist",
        "1.2",
        pkg="mismatchpkg",
        kind="upper",
        source=runtime_source(kind="shout"),
    )
    reg = Registry(paths=[str(site)])

    with pytest.raises(PluginLoadError) as caught:
        reg.get("runtime", "upper")

    _assert_names_everything(
        caught.value,
        kind="upper",
        dist="mismatch-dist",
        version="1.2",
        value="mismatchpkg.mod:Upper",
    )
    assert "declares kind 'shout'" in str(caught.value)


def test_missing_attribute_is_reported(installed_distribution):
    """An entry point naming an attribute the module lacks raises PluginLoadError."""
    site = installed_distribution(
        "attr-dist",
        entry_points={"spindle.runtime": {"upper": "attrpkg:Nope"}},
        modules={"attrpkg/__init__.py": ""},
    )
    reg = Registry(paths=[str(site)])

    with pytest.raises(PluginLoadError, match="AttributeError"):
        reg.get("runtime", "upper")


# --- duplicates ------------------------------------------------------------------


def _two_providers(install, tmp_path):
    site_a = runtime_dist(install, "dist-a", "1.0", pkg="dupa", site=tmp_path / "a")
    site_b = runtime_dist(install, "dist-b", "2.0", pkg="dupb", site=tmp_path / "b")
    return [str(site_a), str(site_b)]


def test_duplicate_kind_raises_and_explains_prefer(installed_distribution, tmp_path):
    """Two distributions providing one kind raise PluginLoadError explaining [plugins.prefer]."""
    reg = Registry(paths=_two_providers(installed_distribution, tmp_path))

    with pytest.raises(PluginLoadError) as caught:
        reg.get("runtime", "upper")

    text = str(caught.value)
    for part in (
        "dist-a 1.0",
        "dist-b 2.0",
        "dupa.mod:Upper",
        "dupb.mod:Upper",
        "[plugins.prefer]",
        '"runtime.upper"',
    ):
        assert part in text
    assert "dupa.mod" not in sys.modules and "dupb.mod" not in sys.modules
    info = reg.kinds("runtime")[0]
    assert info.error == text
    assert info.distribution == "dist-a, dist-b"


def test_prefer_policy_picks_the_named_distribution(installed_distribution, tmp_path):
    """With prefer = {"runtime.upper": "dist-b"} the kind comes from dist-b."""
    paths = _two_providers(installed_distribution, tmp_path)
    reg = Registry(paths=paths, policy=PluginPolicy(prefer={"runtime.upper": "dist-b"}))

    cls = reg.get("runtime", "upper")

    assert cls.__module__ == "dupb.mod"
    assert reg.kinds("runtime")[0].distribution == "dist-b"


def test_prefer_naming_an_absent_distribution_still_refuses(installed_distribution, tmp_path):
    """A prefer entry that names neither provider leaves the duplicate an error that says so."""
    paths = _two_providers(installed_distribution, tmp_path)
    reg = Registry(paths=paths, policy=PluginPolicy(prefer={"runtime.upper": "dist-c"}))

    with pytest.raises(PluginLoadError, match=r"plugins\.prefer names 'dist-c'"):
        reg.get("runtime", "upper")


def test_denying_one_provider_settles_a_duplicate(installed_distribution, tmp_path):
    """A denied distribution drops out, so the other provider is used."""
    paths = _two_providers(installed_distribution, tmp_path)
    reg = Registry(paths=paths, policy=PluginPolicy(deny_distributions=["dist-a"]))

    assert reg.get("runtime", "upper").__module__ == "dupb.mod"


def test_same_distribution_on_two_paths_is_not_a_duplicate(installed_distribution, tmp_path):
    """A distribution found under two sys.path entries counts once: the first entry wins."""
    first = runtime_dist(
        installed_distribution, "twice-dist", "1.0", pkg="twicea", site=tmp_path / "first"
    )
    second = runtime_dist(
        installed_distribution, "twice-dist", "9.0", pkg="twiceb", site=tmp_path / "second"
    )
    reg = Registry(paths=[str(first), str(second)])

    info = reg.kinds("runtime")[0]
    assert (info.version, info.error) == ("1.0", None)
    assert reg.get("runtime", "upper").__module__ == "twicea.mod"


# --- policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (PluginPolicy(deny_distributions=["Policy_Dist"]), "plugins.deny_distributions"),
        (PluginPolicy(allow_distributions=["someone-else"]), "plugins.allow_distributions"),
        (PluginPolicy(deny_kinds=["runtime.upper"]), "plugins.deny_kinds"),
        (PluginPolicy(allow_kinds=["runtime.other"]), "plugins.allow_kinds"),
    ],
)
def test_policy_refuses_before_importing(installed_distribution, tmp_path, policy, reason):
    """Allow/deny lists of distributions and kinds raise PluginPolicyError without importing."""
    record = tmp_path / "imports.log"
    site = runtime_dist(
        installed_distribution, "policy-dist", pkg="policypkg", source=runtime_source(record=record)
    )
    reg = Registry(paths=[str(site)], policy=policy)

    with pytest.raises(PluginPolicyError, match=reason):
        reg.get("runtime", "upper")

    assert reg.kinds("runtime")[0].denied
    assert not record.exists()


def test_policy_allows_listed_distribution_and_kind(installed_distribution):
    """A distribution and kind on the allow lists load normally."""
    site = runtime_dist(installed_distribution, "allowed-dist", pkg="allowedpkg")
    policy = PluginPolicy(allow_distributions=["allowed_dist"], allow_kinds=["runtime.upper"])
    reg = Registry(paths=[str(site)], policy=policy)

    assert reg.get("runtime", "upper").kind_name == "upper"
    assert not reg.kinds("runtime")[0].denied


def test_policy_applies_to_programmatic_kinds():
    """A denied kind is refused even when registered in code."""
    reg = Registry(entry_points=False, policy=PluginPolicy(deny_kinds=["runtime.shout"]))
    reg.register(Shout)

    with pytest.raises(PluginPolicyError):
        reg.get("runtime", "shout")


# --- programmatic registration and hooks -------------------------------------------


@define
class Shout(Runtime[str], kind="shout", description="Shouts."):
    """Shouts its text."""

    text: str = ""

    async def _setup_runtime(self, task):
        return self.text.upper() + "!"


@define
class LocalUpper(Runtime[str], kind="upper"):
    """A host application's own 'upper'."""

    text: str = ""

    async def _setup_runtime(self, task):
        return self.text


def test_programmatic_registration_overrides_entry_point(installed_distribution):
    """register() wins over an installed entry point of the same kind, without importing it."""
    site = runtime_dist(installed_distribution, "shadowed-dist", pkg="shadowedpkg")
    reg = Registry(paths=[str(site)])

    reg.register(LocalUpper)

    assert reg.get("runtime", "upper") is LocalUpper
    assert "shadowedpkg.mod" not in sys.modules
    assert reg.kinds("runtime")[0].distribution == "(registered)"


def test_for_testing_registers_only_what_it_is_given():
    """Registry.for_testing(builtins=False) holds exactly the given kinds and discovers nothing."""
    reg = Registry.for_testing([Shout], builtins=False)

    assert reg.names("runtime") == ["shout"]
    assert reg.names("store") == []


def test_register_rejects_objects_of_the_wrong_shape():
    """register() refuses non-plugins and unknown groups with a clear error."""
    reg = Registry.for_testing(builtins=False)

    with pytest.raises(TypeError, match=r"not a subclass of spindle\.Runtime"):
        reg.register(object, group="runtime", kind="x")
    with pytest.raises(ValueError, match="unknown group"):
        reg.register(Shout, group="nope")
    with pytest.raises(ValueError, match="no kind"):
        reg.register(lambda e: None, group="observer")


def test_register_kinds_hook_adds_kinds():
    """A spindle_register_kinds implementation registers kinds on the registry it is given."""

    class Plugin:
        @hookimpl
        def spindle_register_kinds(self, registry):
            registry.register(Shout)

    pm = make_plugin_manager(plugins=[Plugin()], entry_points=False)
    reg = Registry.for_testing(builtins=False)

    pm.hook.spindle_register_kinds(registry=reg)

    assert reg.get("runtime", "shout") is Shout


def test_observer_kinds_are_checked_by_shape():
    """Any class with on_event is an observer kind; create() passes its options as kwargs."""

    class Collect:
        def __init__(self, prefix: str = "") -> None:
            self.prefix = prefix

        async def on_event(self, event):
            pass

    reg = Registry.for_testing(builtins=False)
    reg.register(Collect, group="observer", kind="collect")

    made = reg.create("observer", {"kind": "collect", "prefix": "p"})

    assert isinstance(made, Collect) and made.prefix == "p"
    with pytest.raises(ValidationError, match=r"observers\.0"):
        reg.create("observer", {"kind": "collect", "nope": 1}, path="observers.0")


# --- configuration errors -----------------------------------------------------------


def test_wrong_field_names_the_path(installed_distribution):
    """A wrong option in a plugin config raises ValidationError naming the path and the field."""
    site = runtime_dist(installed_distribution, "cfg-dist", pkg="cfgpkg")
    reg = Registry(paths=[str(site)])

    with pytest.raises(ValidationError) as caught:
        reg.create("runtime", {"kind": "upper", "txt": 1}, path="nodes.hello.runtime")

    problems = "\n".join(caught.value.problems)
    assert "nodes.hello.runtime" in problems
    assert "txt" in problems


def test_wrong_field_type_names_the_field():
    """A value of the wrong type raises ValidationError at the field's path."""
    reg = Registry.for_testing([Shout], builtins=False)

    with pytest.raises(ValidationError) as caught:
        reg.create("runtime", {"kind": "shout", "text": 3}, path="nodes.a.runtime")

    assert any("nodes.a.runtime.text" in p for p in caught.value.problems)


def test_create_builds_a_configured_instance():
    """create() structures the options into the kind's class."""
    reg = Registry.for_testing([Shout], builtins=False)

    made = reg.create("runtime", {"kind": "shout", "text": "hi"})

    assert made == Shout(text="hi")


def test_unknown_kind_lists_installed_kinds():
    """An unknown kind raises UnknownKindError listing the installed kinds of the group."""
    reg = Registry.for_testing([Shout, LocalUpper], builtins=False)

    with pytest.raises(UnknownKindError) as caught:
        reg.get("runtime", "nope")

    assert "shout" in str(caught.value) and "upper" in str(caught.value)
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize("kind", ["postgres", "postgresql"])
def test_the_postgres_store_names_its_extra_when_it_is_not_installed(kind):
    """Asking for the postgres store where it is not registered names the extra that adds
    it (it shipped with issue 12: before, the hint said it was not available yet)."""
    reg = Registry.for_testing(builtins=False)

    with pytest.raises(UnknownKindError) as caught:
        reg.get("store", kind)
    assert str(caught.value).endswith(
        "The PostgreSQL store comes with the 'postgres' extra: pip install 'spindle[postgres]'."
    )


def test_unknown_kind_in_create_is_a_validation_error():
    """create() reports an unknown kind as a ValidationError at the given path."""
    reg = Registry.for_testing([Shout], builtins=False)

    with pytest.raises(ValidationError) as caught:
        reg.create("runtime", {"kind": "nope"}, path="nodes.x.runtime")

    assert "nodes.x.runtime" in str(caught.value)
    assert "unknown runtime kind 'nope'" in str(caught.value)


def test_unknown_group_is_rejected():
    """A group that does not exist raises ValueError naming the valid groups."""
    with pytest.raises(ValueError, match="runtime"):
        Registry.for_testing(builtins=False).names("runtimes")


# --- check ---------------------------------------------------------------------------


def test_check_imports_every_kind_and_reports_errors(installed_distribution, tmp_path):
    """check() imports each kind, describing good ones and recording broken ones."""
    site = tmp_path / "site"
    runtime_dist(installed_distribution, "fine-dist", pkg="finepkg", kind="fine", site=site)
    runtime_dist(
        installed_distribution,
        "bad-dist",
        pkg="badpkg",
        kind="bad",
        site=site,
        source="raise ImportError('nope')\n",
    )
    reg = Registry(paths=[str(site)])

    infos = {k.kind: k for k in reg.check("runtime")}

    assert infos["fine"].error is None and infos["fine"].description == "Upper-cases text."
    assert "nope" in (infos["bad"].error or "")
    assert [e.kind for e in reg.load_errors()] == ["bad"]


def test_cli_entry_point_must_be_a_click_command(installed_distribution):
    """A spindle.cli entry point that is not a click command is a load error."""
    site = installed_distribution(
        "clidist",
        entry_points={"spindle.cli": {"hello": "clipkg:hello"}},
        modules={"clipkg/__init__.py": "def hello():\n    pass\n"},
    )
    reg = Registry(paths=[str(site)])

    with pytest.raises(PluginLoadError, match="not a click command"):
        reg.get("cli", "hello")
