"""The tokenizer that decides which command lines an executable allow-list lets run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spindle.plugins.runtimes._shell_policy import CommandRefused, plain_commands
from spindle.plugins.runtimes._template import Template, TemplateError, quote_value

OUTPUTS = ["out"]


def programs(line: str) -> list[str]:
    return plain_commands(Template.parse(line).items, OUTPUTS)


ACCEPTED = [
    ("echo hi", ["echo"]),
    ("echo hi;", ["echo"]),
    ("echo   hi\t there ;", ["echo"]),
    ("echo a | tr a b | sort", ["echo", "tr", "sort"]),
    ("make && make test || echo failed; echo done", ["make", "make", "echo", "echo"]),
    ("echo {inputs.x} {inputs.x}.txt", ["echo"]),
    ("echo 'a;b|c$(x)`y`' \"q r\" x=y --opt=1 ~ *.txt [ab]", ["echo"]),
    ("echo hi > {outputs.out.path}", ["echo"]),
    ("echo hi >>{outputs.out.path} 2>&1", ["echo"]),
    ("echo hi 2> {outputs.out.path} >&2", ["echo"]),
    ("> {outputs.out.path} echo hi", ["echo"]),
    ("git commit -m 'ünïcode in quotes'", ["git"]),
    ("/usr/bin/git status", ["/usr/bin/git"]),
    ("echo !", ["echo"]),
    ("echo if then fi case", ["echo"]),
]

REFUSED = [
    ("echo hi #\ntouch X", "newline in command"),
    ("echo 'a\nb'", "newline in command"),
    ("echo hi\r", "carriage return in command"),
    ("echo hi # x", "comment (#)"),
    ("echo a#b", "comment (#)"),
    ("case x in x) touch X;; esac", "')' (a subshell, function or case pattern)"),
    ("case x", "shell reserved word 'case'"),
    ("if true; then touch X; fi", "shell reserved word 'if'"),
    ("echo; then", "shell reserved word 'then'"),
    ("until x; do y; done", "shell reserved word 'until'"),
    ("select x in a; do y; done", "shell reserved word 'select'"),
    ("function f", "shell reserved word 'function'"),
    ("coproc x", "shell reserved word 'coproc'"),
    ("[[ -f x ]]", "shell reserved word '[['"),
    ("{{ echo; }}", "brace group or expansion { }"),
    ("echo a{{b,c}}", "brace group or expansion { }"),
    ("(echo)", "'(' (a subshell, function or case pattern)"),
    ("f() {{ x; }}", "'(' (a subshell, function or case pattern)"),
    ("echo $(x)", "command substitution or arithmetic $( )"),
    ("echo $((1+1))", "command substitution or arithmetic $( )"),
    ("echo `x`", "command substitution (backquotes)"),
    ('echo "`x`"', "command substitution (backquotes) inside double quotes"),
    ('echo "$x"', "parameter expansion ($); pass values as {inputs.NAME} inside double quotes"),
    ('echo "a\\"b"', "backslash escape inside double quotes"),
    ("echo $HOME", "parameter expansion ($)"),
    ("echo <(x)", "process substitution <( )"),
    ("echo >(x)", "process substitution >( )"),
    ("cat < x", "input redirection (<)"),
    ("cat <<EOF", "here-document (<<)"),
    ("cat <<< x", "here-document (<<)"),
    ("echo > x", "redirection to something other than a declared output path"),
    ("echo > {inputs.x}", "redirection to something other than a declared output path"),
    ("echo > {outputs.out.path}x", "redirection to something other than a declared output path"),
    ("echo > {outputs.other.path}", "redirection to something other than a declared output path"),
    ("echo >| x", "redirection '>|'"),
    ("echo >&x", "redirection '>&' to something other than a file descriptor number"),
    ("echo >&-", "redirection '>&' to something other than a file descriptor number"),
    ("echo &> x", "background command or redirection (&)"),
    ("echo &", "background command or redirection (&)"),
    ("echo |& x", "'|&' (a pipe of standard error)"),
    ("echo ;; x", "';;' (part of a case statement)"),
    ("echo ^ x", "'^' (a pipe in old shells)"),
    ("BASH_ENV=x echo", "variable assignment before a command ('BASH_ENV=x')"),
    ("A=1", "variable assignment before a command ('A=1')"),
    ("eval x", "shell builtin 'eval' runs other commands"),
    ("exec x", "shell builtin 'exec' runs other commands"),
    ("command x", "shell builtin 'command' runs other commands"),
    ("builtin x", "shell builtin 'builtin' runs other commands"),
    (". x", "shell builtin '.' runs other commands"),
    ("source x", "shell builtin 'source' runs other commands"),
    ("trap x EXIT", "shell builtin 'trap' runs other commands"),
    ("alias x=y", "shell builtin 'alias' runs other commands"),
    ("! x", "shell reserved word '!'"),
    ("time x", "shell reserved word 'time'"),
    ('e""cho', "the program 'e\"\"cho' is quoted"),
    ("'echo'", "the program \"'echo'\" is quoted"),
    ("ec\\ho", "backslash escape"),
    ("echo \\\nx", "newline in command"),
    ("ec*o", "the program 'ec*o' is not a plain name"),
    ("~/bin/echo", "the program '~/bin/echo' is not a plain name"),
    ("[ -f x ]", "the program '[' is not a plain name"),
    ("{inputs.x} a", "the program is a placeholder ('{inputs.x}')"),
    ("e{inputs.x}", "the program is a placeholder ('e{inputs.x}')"),
    ("\uff45cho", "non-ASCII character '\uff45' (U+FF45) outside quotes"),
    ("echo\u00a0x", "non-ASCII character '\\xa0' (U+00A0) outside quotes"),
    ("echo \u037e x", "non-ASCII character"),  # Greek question mark, looks like ';'
    ("echo\x00", "control character U+0000 in command"),
    ("echo\x0cx", "control character U+000C in command"),
    ("echo 'a", "unterminated single quote"),
    ('echo "a', "unterminated double quote"),
    ("", "empty command"),
    ("   ", "empty command"),
    (";", "missing command before ';'"),
    ("echo && ; x", "missing command before ';'"),
    ("echo |", "missing command after '|'"),
    ("> {outputs.out.path}", "redirection without a command"),
    ("> {outputs.out.path}; echo", "missing command before ';'"),
]


@pytest.mark.parametrize(("line", "expected"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_a_plain_line_gives_the_program_of_each_simple_command(line, expected):
    """A plain line is accepted; the programs are its simple commands' first words."""
    assert programs(line) == expected


@pytest.mark.parametrize(("line", "reason"), REFUSED, ids=[repr(r[0]) for r in REFUSED])
def test_a_line_that_is_not_plain_is_refused_with_the_reason(line, reason):
    """Anything beyond plain simple commands is refused, saying what it is."""
    with pytest.raises(CommandRefused) as info:
        programs(line)
    assert str(info.value).startswith(reason), str(info.value)


# --- the shell agrees ------------------------------------------------------------

ALLOWED = ["foo", "bar"]
TRACE = "@trace@ "
PIECES = st.sampled_from(
    [
        *("foo", "bar", "baz", "echo", "x", "2", "a=b", "X=1", "if", "case", "in", "esac"),
        *("{inputs.v}", "{outputs.out.path}", "{{", "}}", "'q;w'", '"q w"', "''", '""'),
        *(" ", " ", " ", "\t", ";", "&", "|", "&&", "||", "(", ")", "<", ">", ">>", "2>&1"),
        *("$", "`", "'", '"', "\\", "#", "\n", "\r", "*", "?", "~", "!", "^", "$(", "<("),
        *(">&", "=", "-", ".", "/", "é", "\u00a0", ";;", "{", "}"),
    ]
)
SOUP = st.lists(PIECES, min_size=1, max_size=10).map("".join)
SAFE_WORDS = st.sampled_from(
    ["foo", "bar", "x", "a=b", "-n", "{inputs.v}", "'q;w'", '"q w"', "*", "~", "!", "2", "if"]
)
RISKY_WORDS = st.sampled_from(
    ["in", "esac", "\u00e9", "x#y", "$x", "`x`", "a\\b", "{{x}}", "(x)", "x;", "'a\nb'"]
)
WORDS = st.one_of(SAFE_WORDS, SAFE_WORDS, SAFE_WORDS, SAFE_WORDS, RISKY_WORDS)
PROGRAMS = st.sampled_from(
    [*("foo", "bar") * 6, "baz", "X=1 foo", "{inputs.v}", "'foo'", "if", "eval", "f\\oo"]
)
REDIRECTS = st.sampled_from(
    [
        *("", "", "", " > {outputs.out.path}", " >>{outputs.out.path}", " 2>&1", " >&2"),
        *(" 2>{outputs.out.path}", " > x", " <x", " >{outputs.out.path}x", " 1>&2"),
    ]
)
COMMAND = st.builds(
    lambda prog, args, redirect: " ".join([prog, *args]) + redirect,
    PROGRAMS,
    st.lists(WORDS, max_size=3),
    REDIRECTS,
)
OPERATORS = st.sampled_from(
    [*(";", "|", "&&", "||", " ; ", " | ", " && ") * 3, "&", ";;", "\n", "|&", "\r"]
)
STRUCTURED = st.builds(
    lambda commands, ops, end: (
        "".join(
            c + (ops[i % len(ops)] if i < len(commands) - 1 else "") for i, c in enumerate(commands)
        )
        + end
    ),
    st.lists(COMMAND, min_size=1, max_size=4),
    st.lists(OPERATORS, min_size=1, max_size=4),
    st.sampled_from(["", "", "", ";", " ;", "&", "|"]),
)
VALUES = st.text(alphabet=st.sampled_from(list(" ;&|()<>$`'\"\\#\n*?~!x{}")), max_size=8)


def _stubs(root: Path) -> Path:
    bin_dir = root / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for name in ALLOWED:
            stub = bin_dir / name
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
    return bin_dir


def _trace(rendered: str, root: Path) -> list[str]:
    """The first word of each simple command ``sh -x`` runs (an error line counts too)."""
    proc = subprocess.run(
        ["/bin/sh", "-x", "-c", rendered],
        cwd=root,
        env={"PATH": str(_stubs(root)), "PS4": TRACE},
        capture_output=True,
        text=True,
        timeout=10,
    )
    pieces = [x for x in proc.stderr.replace(TRACE, "\n").splitlines() if x.strip()]
    return [x.split()[0] for x in pieces]


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(line=st.one_of(SOUP, STRUCTURED, STRUCTURED), value=VALUES)
@example(line="foo {inputs.v}", value="x; touch X")
@example(line="foo > {outputs.out.path}; bar", value="")
def test_an_accepted_line_starts_only_allowed_programs_as_the_shell_sees_it(
    tmp_path_factory, line, value
):
    """Random lines of words and metacharacters: refused, or sh runs only allowed programs.

    The line is rendered as the command runtime renders it (each placeholder a
    quoted word) and run by ``sh -x`` with only stub programs on PATH; every
    simple command the shell traces (builtins included) must start with an
    allowed program, and the shell reports nothing else (no syntax error, no
    program not found).
    """
    try:
        template = Template.parse(line)
        found = plain_commands(template.items, OUTPUTS)
    except (TemplateError, CommandRefused):
        return
    if not set(found) <= set(ALLOWED):
        return  # the policy refuses it by name
    root = tmp_path_factory.mktemp("sh")
    values = {"inputs.v": value, "outputs.out.path": str(root / "out.txt")}
    rendered = "".join(
        item if isinstance(item, str) else quote_value(values[".".join(item.parts)])
        for item in template.items
    )
    # The commands of a pipeline trace concurrently and sh writes the PS4 prefix
    # apart from the rest of a line, so the trace is split at the marker, and a
    # garbled trace is retried: a command the shell really runs shows every time.
    for _ in range(3):
        traced = _trace(rendered, root)
        if len(traced) <= len(found) and set(traced) <= set(ALLOWED):
            break
    assert set(traced) <= set(ALLOWED), (rendered, traced)
    assert len(traced) <= len(found), (rendered, traced)
    assert sorted(os.listdir(root)) in (["bin"], ["bin", "out.txt"]), (rendered, os.listdir(root))
