"""Checking hook modules, and how the plugin manager treats broken ones by where they come from."""

from __future__ import annotations

import logging
import sys
import types

import pytest

from spindle import PluginLoadError, Registry, hookimpl
from spindle.core.plugin import make_plugin_manager
from spindle.core.plugin._hooks import hook_problems

MISSPELLED = """
from spindle import hookimpl

@hookimpl
def spindle_on_finnish(run, output):
    return None
"""

GOOD = """
from spindle import hookimpl

@hookimpl
def spindle_select_executor(node, payload):
    return None
"""

HOOKS_LOGGER = "spindle.core.plugin._hooks"


def module(name: str, **functions) -> types.ModuleType:
    """A module object holding ``functions`` (already marked or not)."""
    mod = types.ModuleType(name)
    for attr, fn in functions.items():
        setattr(mod, attr, fn)
    return mod


@pytest.fixture
def bad_dist(installed_distribution):
    """An installed distribution whose hook module misspells spindle_on_finish."""
    return installed_distribution(
        "spindle-badhooks",
        "1.0",
        entry_points={"spindle.hooks": {"bad": "badhooks_unit"}},
        modules={"badhooks_unit.py": MISSPELLED},
    )


@pytest.fixture
def good_dist(installed_distribution):
    """An installed distribution with one valid hook module."""
    return installed_distribution(
        "spindle-goodhooks",
        "2.0",
        entry_points={"spindle.hooks": {"good": "goodhooks_unit"}},
        modules={"goodhooks_unit.py": GOOD},
    )


# --- hook_problems --------------------------------------------------------------------


def test_a_misspelled_hook_gets_the_closest_name_suggested():
    """An @hookimpl named like no hook is reported with the closest hook name."""

    @hookimpl
    def spindle_on_finnish(run):
        return None

    problems = hook_problems(module("m", spindle_on_finnish=spindle_on_finnish))

    assert problems == [
        "'spindle_on_finnish' is not a spindle hook; did you mean 'spindle_on_finish'?"
    ]


def test_a_hook_missing_the_prefix_gets_the_prefixed_name_suggested():
    """An @hookimpl named after a hook without 'spindle_' is pointed at the real name."""

    @hookimpl
    def select_executor(node):
        return None

    [problem] = hook_problems(module("m", select_executor=select_executor))

    assert problem.endswith("did you mean 'spindle_select_executor'?")


def test_an_unrelated_name_lists_every_hook():
    """With no close hook name, the report lists the hooks there are."""

    @hookimpl
    def spindle_teleport(run):
        return None

    [problem] = hook_problems(module("m", spindle_teleport=spindle_teleport))

    assert problem.startswith("'spindle_teleport' is not a spindle hook; the hooks are ")
    assert "spindle_configure" in problem and "spindle_on_finish" in problem
    assert "did you mean" not in problem


def test_an_argument_the_hook_does_not_pass_is_reported_with_the_ones_it_does():
    """An implementation taking an argument missing from the spec is told the spec's arguments."""

    @hookimpl
    def spindle_on_finish(run, result):
        return None

    problems = hook_problems(module("m", spindle_on_finish=spindle_on_finish))

    assert problems == [
        "'spindle_on_finish' takes 'result', which hook 'spindle_on_finish' does not pass; "
        "take any of run, output, unsettled, by name"
    ]


def test_other_refusals_by_pluggy_are_reported_on_one_line():
    """What pluggy itself refuses (a wrapper of a historic hook) is reported, on one line."""

    @hookimpl(wrapper=True)
    def spindle_configure(config):
        return (yield)

    [problem] = hook_problems(module("m", spindle_configure=spindle_configure))

    assert "spindle_configure" in problem and "historic" in problem
    assert "\n" not in problem


def test_every_problem_of_a_module_is_reported():
    """Two misspelled hooks in one module are both reported."""

    @hookimpl
    def spindle_on_finnish(run):
        return None

    @hookimpl
    def spindle_confgure(config):
        return None

    problems = hook_problems(
        module("m", spindle_on_finnish=spindle_on_finnish, spindle_confgure=spindle_confgure)
    )

    assert len(problems) == 2
    assert any("did you mean 'spindle_configure'" in p for p in problems)


def test_valid_optional_and_unmarked_functions_pass():
    """Known hooks, optionalhook and specname implementations and unmarked functions pass."""

    @hookimpl
    def spindle_on_finish(run, output):
        return None

    @hookimpl(optionalhook=True)
    def spindle_maybe_later(run):
        return None

    @hookimpl(specname="spindle_configure")
    def setup(config):
        return None

    def spindle_helper():
        """Not marked: pluggy ignores it."""

    mod = module(
        "m",
        spindle_on_finish=spindle_on_finish,
        spindle_maybe_later=spindle_maybe_later,
        setup=setup,
        spindle_helper=spindle_helper,
    )

    assert hook_problems(mod) == []


# --- the registry's shape check -------------------------------------------------------


def test_registry_get_refuses_a_hook_module_with_a_misspelled_hook(bad_dist):
    """Registry.get raises PluginLoadError naming the distribution, entry point and fix."""
    reg = Registry()

    with pytest.raises(PluginLoadError) as caught:
        reg.get("hooks", "bad")

    message = str(caught.value)
    assert "spindle.hooks:bad = badhooks_unit from spindle-badhooks 1.0" in message
    assert message.endswith("did you mean 'spindle_on_finish'?")
    assert caught.value.version == "1.0"
    assert caught.value.reason.startswith("'spindle_on_finnish' is not a spindle hook")


def test_registry_check_lists_the_broken_hook_module(bad_dist, good_dist):
    """check('hooks') reports the broken module's error and the good one as loaded."""
    infos = {k.kind: k for k in Registry().check("hooks")}

    assert "did you mean 'spindle_on_finish'?" in (infos["bad"].error or "")
    assert infos["good"].error is None


def test_registering_an_invalid_hook_module_in_code_is_refused():
    """Registry.register of a hook module with an unknown hook raises TypeError with the fix."""

    @hookimpl
    def spindle_on_finnish(run):
        return None

    with pytest.raises(TypeError, match="did you mean 'spindle_on_finish'"):
        Registry.for_testing(builtins=False).register(
            module("m", spindle_on_finnish=spindle_on_finnish), group="hooks", kind="m"
        )


# --- make_plugin_manager --------------------------------------------------------------


def test_an_installed_broken_hook_module_is_skipped_with_a_warning(bad_dist, good_dist, caplog):
    """A misspelled entry-point hook module is skipped with a warning; the others register."""
    with caplog.at_level(logging.WARNING, logger=HOOKS_LOGGER):
        pm = make_plugin_manager(registry=Registry())

    assert pm.get_plugin("bad") is None
    assert pm.get_plugin("good") is not None
    [record] = [r for r in caplog.records if r.name == HOOKS_LOGGER]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "hook module 'badhooks_unit' from distribution spindle-badhooks 1.0 "
        "(entry point spindle.hooks:bad = badhooks_unit) is skipped: "
        "'spindle_on_finnish' is not a spindle hook; did you mean 'spindle_on_finish'?"
    )


def test_an_installed_hook_module_that_fails_to_import_is_skipped(installed_distribution, caplog):
    """An entry-point hook module raising on import is skipped with a warning naming the cause."""
    installed_distribution(
        "spindle-nohooks",
        "0.3",
        entry_points={"spindle.hooks": {"gone": "gonehooks_unit"}},
        modules={"gonehooks_unit.py": "import not_installed_anywhere\n"},
    )

    with caplog.at_level(logging.WARNING, logger=HOOKS_LOGGER):
        pm = make_plugin_manager(registry=Registry())

    assert pm.get_plugin("gone") is None
    [message] = [r.getMessage() for r in caplog.records if r.name == HOOKS_LOGGER]
    assert message.startswith(
        "hook module 'gonehooks_unit' from distribution spindle-nohooks 0.3 "
        "(entry point spindle.hooks:gone = gonehooks_unit) is skipped: it failed to import "
        "(ModuleNotFoundError: No module named 'not_installed_anywhere')"
    )
    assert message.endswith("Fix or uninstall spindle-nohooks.")


def test_a_hook_module_from_the_hooks_setting_still_fails_loudly(tmp_path, monkeypatch):
    """A module named in the hooks setting with a misspelled hook raises, suggesting the fix."""
    (tmp_path / "sethooks_unit.py").write_text(MISSPELLED)
    monkeypatch.syspath_prepend(str(tmp_path))

    try:
        with pytest.raises(PluginLoadError) as caught:
            make_plugin_manager(modules=["sethooks_unit"], entry_points=False)
    finally:
        sys.modules.pop("sethooks_unit", None)

    assert str(caught.value) == (
        "hook module 'sethooks_unit' (from the 'hooks' setting) is invalid: "
        "'spindle_on_finnish' is not a spindle hook; did you mean 'spindle_on_finish'?"
    )


def test_a_hook_object_given_in_code_still_fails_loudly():
    """An Engine(hooks=[obj]) object with a misspelled hook raises PluginLoadError."""

    class Finisher:
        @hookimpl
        def spindle_on_finnish(self, run):
            return None

    with pytest.raises(PluginLoadError, match="did you mean 'spindle_on_finish'"):
        make_plugin_manager(plugins=[Finisher()], entry_points=False)
