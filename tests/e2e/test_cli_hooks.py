"""An installed hook module with a misspelled hook, as a user meets it through the real CLI:
every command keeps working with a warning; ``spindle plugins --check`` fails on it."""

from __future__ import annotations

import pytest

from spindle._cli._common import EXIT_FAILED

pytestmark = pytest.mark.slow

MISSPELLED = """
from spindle import hookimpl

@hookimpl
def spindle_on_finnish(run, output):
    return None
"""

WARNING = (
    "hook module 'badhooks' from distribution spindle-badhooks 1.0 "
    "(entry point spindle.hooks:bad = badhooks) is skipped: "
    "'spindle_on_finnish' is not a spindle hook; did you mean 'spindle_on_finish'?"
)


@pytest.fixture
def bad_hooks(installed_distribution):
    """PYTHONPATH making a distribution with a misspelled hook module installed."""
    site = installed_distribution(
        "spindle-badhooks",
        "1.0",
        entry_points={"spindle.hooks": {"bad": "badhooks"}},
        modules={"badhooks.py": MISSPELLED},
    )
    return {"PYTHONPATH": str(site)}


def test_a_run_completes_despite_a_broken_hook_module(spindle, examples, bad_hooks):
    """`spindle run` exits 0 with the run's output and warns once about the skipped module."""
    proc = spindle("run", "examples/hello.yaml", env=bad_hooks)

    assert proc.returncode == 0, proc.stderr
    assert "output: Hello, world!" in proc.stdout
    assert proc.stderr.count(WARNING) == 1
    assert "Traceback" not in proc.stderr


def test_listing_runs_works_despite_a_broken_hook_module(spindle, examples, bad_hooks):
    """`spindle runs` opens the store and lists the run, warning about the skipped module."""
    assert spindle("run", "examples/hello.yaml", env=bad_hooks).returncode == 0

    proc = spindle("runs", env=bad_hooks)

    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout
    assert WARNING in proc.stderr


def test_plugins_check_reports_the_broken_hook_module(spindle, bad_hooks):
    """`spindle plugins --check` exits 1 naming the bad hook and the hook it should be."""
    proc = spindle("plugins", "--check", "--group", "hooks", env=bad_hooks)

    assert proc.returncode == EXIT_FAILED
    row = next(line for line in proc.stdout.splitlines() if "spindle-badhooks" in line)
    assert row.split()[:5] == ["hooks", "bad", "spindle-badhooks", "1.0", "error"]
    assert (
        "error: hooks 'bad' cannot be loaded: entry point spindle.hooks:bad = badhooks "
        "from spindle-badhooks 1.0: 'spindle_on_finnish' is not a spindle hook; "
        "did you mean 'spindle_on_finish'?"
    ) in proc.stdout


def test_plugins_without_check_lists_the_module_without_importing_it(spindle, bad_hooks):
    """Plain `spindle plugins` lists the hook module from metadata and warns about nothing."""
    proc = spindle("plugins", "--group", "hooks", env=bad_hooks)

    assert proc.returncode == 0, proc.stderr
    assert "spindle-badhooks" in proc.stdout
    assert proc.stderr == ""


def test_a_hook_module_the_policy_denies_is_left_out_quietly(spindle, examples, write, bad_hooks):
    """A hook module refused by [plugins] deny_kinds is not loaded and breaks nothing."""
    write("spindle.toml", '[plugins]\ndeny_kinds = ["hooks.bad"]\n')

    proc = spindle("run", "examples/hello.yaml", env=bad_hooks)

    assert proc.returncode == 0, proc.stderr
    assert "output: Hello, world!" in proc.stdout
    assert "badhooks" not in proc.stderr
    assert "Traceback" not in proc.stderr
