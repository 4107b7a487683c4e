"""Fuzzing the ``spindle`` command line in-process: any argv ends in 0/1/2/3, never a traceback.

Random argv lists are built from the real commands and their options
(read from click), values that matter to them (workflow files good and
hostile, store URLs, JSON payloads, numbers) and random text, and run
through click's ``CliRunner`` in this test's empty working directory. Each
must exit with a documented code (0 completed, 1 failed, 2 usage or input
error, 3 waiting) with no exception but ``SystemExit`` and no traceback in
the output, within 1 s and 100 MB (``tests/bounded.py``).

Kept out on purpose: ``/`` and NUL in random text (so no argument can name
a path outside the working directory, and an argv cannot hold NUL anyway),
``logs --follow`` (it follows a live run until it ends) and ``worker``
without ``--once`` (it runs until stopped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle.cli import BUILTIN_COMMANDS, make_cli
from tests.bounded import check_bounds, tracing

EXIT_CODES = {0, 1, 2, 3}

FILES = {
    "good.yaml": "name: good\nnodes:\n  a: {runtime: {kind: python_code, code: 'result = 1'}}\n",
    "echo.yaml": "name: echo\ninputs: {who: x}\nnodes:\n"
    "  a: {runtime: {kind: command, command: 'echo {inputs.who}'}}\n",
    "wait.yaml": "name: wait\nnodes:\n  w: {effect: {kind: wait_event, key: k1}}\n",
    "ask.yaml": "name: ask\nnodes:\n"
    "  q: {effect: {kind: ask_user, prompt: 'ok?', choices: [yes, no]}}\n",
    "fail.yaml": "name: fail\nnodes:\n"
    "  a: {runtime: {kind: command, command: 'exit 3'}, retry: {max_attempts: 1}}\n",
    "bad.yaml": "name: bad\nnodes:\n  a: {runtime: {kind: nope}}\n",
    "bomb.yaml": "name: b\nx:\n  a: &a [1,1,1,1,1,1,1,1,1]\n"
    + "".join(
        f"  {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ),
    "deep.yaml": "name: d\nnodes: " + "[" * 3000 + "]" * 3000 + "\n",
    "sub.yaml": "name: s\nnodes:\n  c: {effect: {kind: subworkflow, workflow: missing.yaml}}\n",
    "empty.yaml": "",
    "text.json": '{"name": "j", "nodes": '
    '{"a": {"runtime": {"kind": "python_code", "code": "x=1"}}}}',
}
BINARY = {"nul.yaml": b"name: x\x00\n", "latin.yaml": b"name: caf\xe9\n"}


def _options() -> dict[str, tuple[int, list[tuple[str, bool]]]]:
    """Per command: how many positional arguments, and each option with whether it takes a value."""
    group = make_cli()
    ctx = click.Context(group)
    out: dict[str, tuple[int, list[tuple[str, bool]]]] = {}
    for name in BUILTIN_COMMANDS:
        command = group.get_command(ctx, name)
        assert command is not None
        arguments = sum(1 for p in command.params if isinstance(p, click.Argument))
        options = [
            (opt, not (param.is_flag or param.count))
            for param in command.params
            if isinstance(param, click.Option)
            for opt in (*param.opts, *param.secondary_opts)
        ]
        out[name] = (arguments, options)
    return out


OPTIONS = _options()

# Random text without "/" (no path outside the cwd, no URL the test did not choose) or NUL.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="/\\\x00"),
    max_size=10,
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
).map(json.dumps)
_VALUES = st.one_of(
    st.sampled_from([*FILES, *BINARY, "dir.yaml", "missing.yaml", "x.txt", "-", ""]),
    st.sampled_from(
        [
            "memory://",
            "sqlite:///fuzz.db",
            "sqlite:///nested/deeper/fuzz.db",
            "sqlite://",
            "postgresql://u@127.0.0.1:1/db?retry_for=0&connect_timeout=1",
            "nope://x",
            ":memory:",
            "who=Ada",
            "who=",
            "=x",
            "noequals",
            "k1",
            "0",
            "-1",
            "1e999",
            "nan",
            "99999999999999999999",
            "pending",
            "waiting",
            "runtime",
            "effect",
            "a",
            "--",
        ]
    ),
    _JSON,
    _TEXT,
    st.integers(-(2**70), 2**70).map(str),
)
_GLOBAL = ["-v", "-vv", "--help", "-h", "--version", "--json", "--store", "--"]


#: Stand-ins for the ids of the runs the working directory starts with.
RUNS = ("RUN:good", "RUN:wait", "RUN:ask", "RUN:fail")
_RUN_ID = st.sampled_from(RUNS) | _TEXT | st.sampled_from(["", "RUN:good"[:6]])


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    """A command (real or not), its positionals, options with values, and stray tokens."""
    command = draw(st.sampled_from([*BUILTIN_COMMANDS, "nosuchcommand", "", "--help", "-v"]))
    arguments, options = OPTIONS.get(command, (0, []))
    argv = [command] if command else []
    # mostly the right number of positionals; now and then one too few or too many
    count = draw(st.sampled_from([arguments] * 6 + [max(arguments - 1, 0), arguments + 1]))
    for _ in range(count):
        argv.append(draw(_VALUES if command == "run" else _RUN_ID))
    if options:
        for opt, takes_value in draw(st.lists(st.sampled_from(options), max_size=4)):
            argv.append(opt)
            if takes_value and draw(st.integers(0, 9)):  # now and then the value is missing
                argv.append(draw(_RUN_ID | _VALUES) if opt == "--from" else draw(_VALUES))
    if not draw(st.integers(0, 4)):  # a stray token: a global flag or a value
        argv.append(draw(st.sampled_from(_GLOBAL) | _VALUES))
    if command == "logs":
        argv = [t for t in argv if t not in ("-f", "--follow")]
    if command == "worker":
        # first, so no option that takes a value can take it ("--id --once")
        argv.insert(1, "--once")
    return argv


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with good and hostile workflow files, shared by the examples."""
    cwd = tmp_path_factory.mktemp("fuzz-cli")
    for name, text in FILES.items():
        (cwd / name).write_text(text)
    for name, data in BINARY.items():
        (cwd / name).write_bytes(data)
    (cwd / "dir.yaml").mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def run_ids(workdir: Path) -> dict[str, str]:
    """Runs in the default store to aim at: completed, waiting on an event, on a user, failed."""
    ids = {}
    for stand_in in RUNS:
        name = stand_in.removeprefix("RUN:")
        result = CliRunner().invoke(make_cli(), ["run", f"{name}.yaml", "--json"])
        assert result.stdout, (name, result.exit_code, result.output)
        ids[stand_in] = json.loads(result.stdout)["run_id"]
    return ids


@pytest.fixture
def traced() -> Iterator[None]:
    with tracing():
        yield


def invoke(argv: list[str]) -> None:
    """Run ``spindle ARGV`` in-process; assert a documented exit and no traceback."""
    result = CliRunner().invoke(make_cli(), argv, prog_name="spindle")
    shown = f"spindle {argv!r} exited {result.exit_code}:\n{result.output[-3000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{shown}\n{type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code in EXIT_CODES, shown
    assert "Traceback" not in result.output, shown


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=argvs())
def test_random_command_lines_exit_with_a_documented_code(run_ids, traced, argv):
    """Any argv exits 0/1/2/3 with no traceback, within the per-example limits."""
    argv = [run_ids.get(token, token) for token in argv]
    check_bounds(lambda: invoke(argv), argv)


def test_every_command_answers_once_before_the_fuzz(workdir):
    """Each command, run once plainly, also exits cleanly (and warms its imports)."""
    for name in BUILTIN_COMMANDS:
        invoke([name, *(["--once"] if name == "worker" else [])])
    invoke(["run", "good.yaml"])
    invoke(["plugins", "--check"])
