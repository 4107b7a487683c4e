"""``spindle plugins --markdown``: the installed-plugins reference the docs site shows."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spindle import Registry
from spindle._cli._common import EXIT_OK, EXIT_USAGE
from spindle.cli import make_cli
from spindle.core.errors import PluginError
from spindle.core.workflow import kind_schema

SHOUT = '''
from attrs import define
from spindle import Runtime


@define
class Shout(Runtime[str], kind="shout"):
    """Upper-cases a text (:meth:`~str.upper`) and adds marks.

    Attributes:
        text: the words to shout.
        marks: how many ``!`` to add.
    """

    text: str
    marks: int = 3

    async def _setup_runtime(self, task):
        return self.text.upper() + "!" * self.marks
'''


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def shout_dist(installed_distribution):
    """A distribution with one documented runtime kind and one broken observer."""
    return installed_distribution(
        "shout-dist",
        "2.0",
        entry_points={
            "spindle.runtime": {"shout": "shoutpkg:Shout"},
            "spindle.observer": {"broken": "shoutbroken:Broken"},
        },
        modules={
            "shoutpkg.py": SHOUT,
            "shoutbroken.py": "raise ImportError('needs the shout extra')\n",
        },
    )


def test_markdown_shows_each_kind_with_its_description_and_options(runner, shout_dist):
    """--markdown gives a kind its group section, origin, description and option table."""
    result = runner.invoke(make_cli(), ["plugins", "--markdown", "--group", "runtime"])

    assert result.exit_code == EXIT_OK, result.output
    page = result.output
    assert page.startswith("# Installed plugins\n")
    assert "## Runtimes\n" in page and "## Stores" not in page
    section = page[page.index("### `shout`") :]
    assert "From `shout-dist` 2.0: `shoutpkg:Shout`." in section
    assert "Upper-cases a text (`upper`) and adds marks." in section  # a Sphinx role as code
    assert "| `text` | string | **required** | the words to shout. |" in section
    assert "| `marks` | integer | `3` | how many `!` to add. |" in section
    assert "| `kind`" not in section


def test_markdown_lists_every_group_in_order(runner):
    """Without --group every plugin group has a section, empty ones saying so."""
    result = runner.invoke(make_cli(), ["plugins", "--markdown"])

    assert result.exit_code == EXIT_OK, result.output
    titles = [line[3:] for line in result.output.splitlines() if line.startswith("## ")]
    assert titles == [
        "Runtimes",
        "Executors",
        "Effects",
        "Stores",
        "Observers",
        "Middleware",
        "CLI commands",
        "Hook modules",
    ]
    assert "### `sqlite`" in result.output  # a built-in store, with its options
    assert "| `busy_timeout` |" in result.output


def test_markdown_shows_a_broken_kind_without_failing(runner, shout_dist):
    """A kind that cannot be imported is shown with its error; the page still renders."""
    result = runner.invoke(make_cli(), ["plugins", "--markdown", "--group", "observer"])

    assert result.exit_code == EXIT_OK, result.output
    section = result.output[result.output.index("### `broken`") :]
    assert "**Cannot be loaded:**" in section
    assert "needs the shout extra" in section


def test_markdown_with_check_exits_1_on_a_broken_kind(runner, shout_dist):
    """--markdown --check prints the page and fails when a kind cannot be loaded."""
    result = runner.invoke(make_cli(), ["plugins", "--markdown", "--check", "--group", "observer"])

    assert result.exit_code == 1
    assert "**Cannot be loaded:**" in result.output


def test_distribution_limits_the_listing(runner, shout_dist):
    """--distribution keeps only the kinds that distribution provides."""
    result = runner.invoke(make_cli(), ["plugins", "--markdown", "--distribution", "shout-dist"])

    assert result.exit_code == EXIT_OK, result.output
    kinds = [line for line in result.output.splitlines() if line.startswith("### ")]
    assert kinds == ["### `shout`", "### `broken`"]


def test_unknown_distribution_is_a_usage_error(runner, shout_dist):
    """--distribution naming no installed distribution says which ones have kinds."""
    result = runner.invoke(make_cli(), ["plugins", "--distribution", "shuot-dist"])

    assert result.exit_code == EXIT_USAGE
    assert "no installed kind comes from 'shuot-dist'" in result.output
    assert "shout-dist" in result.output and "spindle" in result.output


def test_json_and_markdown_together_are_a_usage_error(runner):
    """--json with --markdown is refused, naming both flags."""
    result = runner.invoke(make_cli(), ["plugins", "--json", "--markdown"])

    assert result.exit_code == EXIT_USAGE
    assert "--json and --markdown cannot be combined" in result.output


def test_kind_schema_describes_any_group():
    """kind_schema gives a store's options, which no workflow file schema holds."""
    schema = kind_schema(None, "store", "sqlite")

    assert schema["title"] == "sqlite"
    assert schema["properties"]["durability"]["default"] == "normal"
    assert "kind" in schema["required"]


def test_kind_schema_of_an_unknown_kind_raises():
    """kind_schema of a kind nobody provides raises PluginError naming it."""
    with pytest.raises(PluginError, match="unknown store kind 'nope'"):
        kind_schema(Registry(entry_points=False), "store", "nope")
