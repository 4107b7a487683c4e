"""The `spindle` group's logging set-up in-process: one handler, levels per -v, root untouched."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from spindle._cli import _fasthelp
from spindle._cli._logging import StderrHandler, level_for
from spindle.cli import GROUP_HELP, make_cli


@pytest.fixture
def spindle_logger():
    """The `spindle` logger, with its handlers and level put back after the test."""
    logger = logging.getLogger("spindle")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def group_with_probe(seen: list[int]) -> click.Group:
    """The spindle group plus a command that logs one record per level and notes the level."""
    group = make_cli()

    @group.command("probe")
    def probe() -> None:
        seen.append(logging.getLogger("spindle").level)
        log = logging.getLogger("spindle.probe")
        log.debug("a debug record")
        log.info("an info record")
        log.warning("a warning record")

    return group


@pytest.mark.parametrize(
    ("flags", "level", "shown"),
    [
        ([], logging.WARNING, ["WARNING"]),
        (["-v"], logging.INFO, ["INFO", "WARNING"]),
        (["-vv"], logging.DEBUG, ["DEBUG", "INFO", "WARNING"]),
        (["-v", "-v", "-v"], logging.DEBUG, ["DEBUG", "INFO", "WARNING"]),
        (["--verbose"], logging.INFO, ["INFO", "WARNING"]),
    ],
)
def test_verbosity_sets_which_records_show_on_stderr(spindle_logger, flags, level, shown):
    """-v shows INFO, -vv DEBUG, none only warnings, each as `spindle.probe: LEVEL: message`."""
    seen: list[int] = []

    result = CliRunner().invoke(group_with_probe(seen), [*flags, "probe"])

    assert result.exit_code == 0, result.output
    assert seen == [level]
    lines = [line for line in result.stderr.splitlines() if line.startswith("spindle.probe: ")]
    assert [line.split(": ")[1] for line in lines] == shown
    assert "spindle.probe: WARNING: a warning record" in lines
    assert result.stdout == ""


def test_the_handler_is_installed_once_and_the_level_restored(spindle_logger):
    """Invoking the group twice adds one stderr handler; the logger's level is put back after."""
    spindle_logger.setLevel(logging.NOTSET)
    group = group_with_probe([])

    CliRunner().invoke(group, ["-v", "probe"])
    second = CliRunner().invoke(group, ["probe"])

    handlers = [h for h in spindle_logger.handlers if isinstance(h, StderrHandler)]
    assert len(handlers) == 1
    assert second.stderr.count("a warning record") == 1
    assert spindle_logger.level == logging.NOTSET


def test_the_root_logger_is_left_alone(spindle_logger):
    """Running a command adds no handler to the root logger and keeps its level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    CliRunner().invoke(group_with_probe([]), ["-vv", "probe"])

    assert root.handlers == handlers
    assert root.level == level


def test_level_for_caps_at_debug():
    """Verbosity 0, 1, 2 and more map to WARNING, INFO, DEBUG, DEBUG."""
    assert [level_for(n) for n in range(4)] == [
        logging.WARNING,
        logging.INFO,
        logging.DEBUG,
        logging.DEBUG,
    ]


def test_the_help_cache_key_follows_the_group_module(monkeypatch):
    """A changed group module (where -v/--verbose is declared) changes the --help cache key."""
    before = _fasthelp.help_key(GROUP_HELP, {})
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        result = real_stat(path, *args, **kwargs)
        if str(path).endswith("_group.py"):
            return SimpleNamespace(st_mtime_ns=result.st_mtime_ns + 1)
        return result

    monkeypatch.setattr(_fasthelp.os, "stat", stat)

    assert _fasthelp.help_key(GROUP_HELP, {}) != before
