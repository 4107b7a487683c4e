# ruff: noqa: E501 - the tables hold exact messages, one attempt per line
"""The load policy cannot be bypassed: every attempt is refused at load time, nothing runs.

Each attempt runs ``spindle run`` under the policy of the hardening issue
(python_code and python_script denied, only ``echo`` allowed) and checks the
exit code, the one ``error:`` line and its reason, and that nothing ran: no
run was created and the marker file the attempt would write does not exist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

POLICY = (
    '[policy]\ndeny_kinds = ["runtime.python_code", "runtime.python_script"]\n'
    'allowed_executables = ["echo"]\n'
)
PLAIN = (
    "only plain commands of allowed executables, joined by |, &&, || or ;, "
    "may run under allowed_executables"
)


def workflow(runtime: dict[str, Any], **node: Any) -> str:
    """A one-node workflow (as JSON, which is YAML) whose node ``x`` has ``runtime``."""
    return json.dumps({"name": "attempt", "nodes": {"x": {"runtime": runtime, **node}}})


def command(line: str, **runtime: Any) -> str:
    return workflow(
        {"kind": "command", "command": line, **runtime},
        inputs={"prog": {"value": "touch"}},
        outputs={"out": {"kind": "file", "path": "out.txt"}},
    )


def python_path(lib: Path) -> dict[str, str]:
    """The environment addition that puts ``lib`` on the child's ``sys.path``."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(lib), os.environ.get("PYTHONPATH")]))}


def nothing_ran(cwd: Path) -> None:
    assert not (cwd / ".spindle" / "runs").exists()
    assert not list(cwd.rglob("PWNED*")), "the attempt wrote its marker"


def refused(spindle, name: str, expected: str) -> None:
    proc = spindle("run", name)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == [lines[0]]
    assert lines[0].startswith(f"error: {name}: workflow 'attempt' is refused by the load policy")
    assert expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    nothing_ran(spindle.cwd)


COMMANDS = [
    ("echo hi #\ntouch PWNED", "command refused by policy: newline in command (only single-line commands of allowed executables may run under allowed_executables)"),
    ("echo hi \\\ntouch PWNED", "newline in command"),
    ("echo hi # ; touch PWNED", f"command refused by policy: comment (#) ({PLAIN})"),
    ("case x in *) touch PWNED;; esac", "command refused by policy: ')' (a subshell, function or case pattern)"),
    ("case x in", "command refused by policy: shell reserved word 'case' (a compound command)"),
    ("echo <(touch PWNED)", "command refused by policy: process substitution <( )"),
    ("echo >(touch PWNED)", "command refused by policy: process substitution >( )"),
    ("echo $(touch PWNED)", "command refused by policy: command substitution or arithmetic $( )"),
    ("echo `touch PWNED`", "command refused by policy: command substitution (backquotes)"),
    ('echo "$(touch PWNED)"', "command substitution or arithmetic $( ) inside double quotes"),
    ("echo ${{HOME}}", "command refused by policy: parameter expansion ($); pass values as {inputs.NAME}"),
    ("BASH_ENV=PWNED echo hi", "command refused by policy: variable assignment before a command ('BASH_ENV=PWNED')"),
    ("if true; then touch PWNED; fi", "command refused by policy: shell reserved word 'if' (a compound command)"),
    ("for i in 1; do touch PWNED; done", "shell reserved word 'for'"),
    ("while true; do touch PWNED; done", "shell reserved word 'while'"),
    ("! touch PWNED", "shell reserved word '!'"),
    ("time touch PWNED", "shell reserved word 'time'"),
    ("{{ touch PWNED; }}", "command refused by policy: brace group or expansion { }"),
    ("(touch PWNED)", "command refused by policy: '(' (a subshell, function or case pattern)"),
    ("f() {{ touch PWNED; }}; f", "'(' (a subshell, function or case pattern)"),
    ("echo hi > PWNED", "command refused by policy: redirection to something other than a declared output path (under allowed_executables a command may only write to its node's outputs, as '> {outputs.NAME.path}')"),
    ("echo hi >> {inputs.prog}", "redirection to something other than a declared output path"),
    ("echo hi >| PWNED", "command refused by policy: redirection '>|'"),
    ("echo hi >&PWNED", "redirection '>&' to something other than a file descriptor number"),
    ("echo hi &> PWNED", "command refused by policy: background command or redirection (&)"),
    ("echo hi < /etc/passwd", "command refused by policy: input redirection (<)"),
    ("echo hi <<< x", "command refused by policy: here-document (<<)"),
    ("touch PWNED & echo", "background command or redirection (&)"),
    ("echo hi |& echo", "command refused by policy: '|&' (a pipe of standard error)"),
    ("echo hi ;; echo", "command refused by policy: ';;' (part of a case statement)"),
    ("echo a ^ touch PWNED", "command refused by policy: '^' (a pipe in old shells)"),
    ("echo hi; touch PWNED", "node 'x': executable 'touch' is not in the policy's allowed executables (echo)"),
    ("echo hi && touch PWNED", "executable 'touch' is not in the policy's allowed executables (echo)"),
    ("echo hi | sh", "executable 'sh' is not in the policy's allowed executables (echo)"),
    ("/usr/bin/env touch PWNED", "executable '/usr/bin/env' is not in the policy's allowed executables (echo)"),
    ("env touch PWNED", "executable 'env' is not in the policy's allowed executables (echo)"),
    ("./echo hi", "executable './echo' is not in the policy's allowed executables (echo)"),
    ("/tmp/echo hi", "executable '/tmp/echo' is not in the policy's allowed executables (echo)"),
    ("command touch PWNED", "command refused by policy: shell builtin 'command' runs other commands"),
    ("exec touch PWNED", "shell builtin 'exec' runs other commands"),
    ("eval touch PWNED", "shell builtin 'eval' runs other commands"),
    ("builtin echo hi", "shell builtin 'builtin' runs other commands"),
    (". ./PWNED", "shell builtin '.' runs other commands"),
    ("source ./PWNED", "shell builtin 'source' runs other commands"),
    ("trap 'touch PWNED' EXIT; echo", "shell builtin 'trap' runs other commands"),
    ('e""cho hi', "command refused by policy: the program 'e\"\"cho' is quoted; write it as a plain word"),
    ("'echo' hi", "the program \"'echo'\" is quoted"),
    ("ec\\ho hi", "command refused by policy: backslash escape"),
    ("ec*o hi", "command refused by policy: the program 'ec*o' is not a plain name"),
    ("{inputs.prog} PWNED", "command refused by policy: the program is a placeholder ('{inputs.prog}'); name the program itself"),
    ("echo hi\rtouch PWNED", "command refused by policy: carriage return in command"),
    ("echo hi\x0btouch PWNED", "command refused by policy: control character U+000B in command"),
    ("\uff45cho hi", "command refused by policy: non-ASCII character '\uff45' (U+FF45) outside quotes"),
    ("echo\u00a0hi", "non-ASCII character '\\xa0' (U+00A0) outside quotes"),
    ("; echo hi", "command refused by policy: missing command before ';'"),
    ("echo hi &&", "command refused by policy: missing command after '&&'"),
    ("", "command refused by policy: empty command"),
    ("> {outputs.out.path}", "command refused by policy: redirection without a command"),
]  # fmt: skip


def test_every_command_attempt_is_refused_and_nothing_runs(spindle, write):
    """Under allowed_executables each attempt of the table is refused with its reason.

    A workflow holds up to 40 attempts, each as its own node (a policy reports every
    node it refuses, and an error shows at most 50 problems), so a few runs check
    them all: each node's line is there.
    """
    write("spindle.toml", POLICY)
    for start in range(0, len(COMMANDS), 40):
        chunk = list(enumerate(COMMANDS))[start : start + 40]
        nodes = {f"n{i}": json.loads(command(line))["nodes"]["x"] for i, (line, _) in chunk}
        write("attempt.yaml", json.dumps({"name": "attempt", "nodes": nodes}))
        proc = spindle("run", "attempt.yaml")
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert lines[0] == "error: attempt.yaml: workflow 'attempt' is refused by the load policy"
        for i, (line, expected) in chunk:
            mine = [x for x in lines if f"node 'n{i}':" in x]
            assert len(mine) == 1, f"{line!r}: {mine}"
            assert expected.removeprefix("node 'x': ") in mine[0], f"{line!r}: {mine[0]}"
    nothing_ran(spindle.cwd)


ISSUE = [
    COMMANDS[0],  # newline after a comment
    COMMANDS[3],  # case ... esac
    COMMANDS[5],  # process substitution
    COMMANDS[11],  # an assignment before the program (BASH_ENV=...)
]


@pytest.mark.parametrize(("line", "expected"), ISSUE, ids=[repr(c[0]) for c in ISSUE])
def test_an_attempt_of_the_issue_is_one_error_line_and_exit_2(spindle, write, line, expected):
    """Each bypass of the issue, alone, exits 2 with one error naming the node and reason."""
    write("spindle.toml", POLICY)
    write("attempt.yaml", command(line))
    refused(spindle, "attempt.yaml", expected)


def test_a_shell_override_is_refused(spindle, write):
    """`shell: /bin/bash` with `env: {BASH_ENV: file}` is refused: bash would run the file."""
    write("spindle.toml", POLICY)
    write("bashenv.sh", "touch PWNED-ran\n")
    write("attempt.yaml", command("echo hi", shell="/bin/bash", env={"BASH_ENV": "bashenv.sh"}))
    refused(
        spindle,
        "attempt.yaml",
        "node 'x': command refused by policy: shell override '/bin/bash' (under "
        "allowed_executables a command runs with /bin/sh; remove 'shell')",
    )


@pytest.mark.parametrize("name", ["BASH_ENV", "ENV", "PATH", "LD_PRELOAD", "IFS", "PS4"])
def test_an_env_override_is_refused(spindle, write, name):
    """Any `env:` entry is refused under allowed_executables, naming the variables."""
    write("spindle.toml", POLICY)
    write("attempt.yaml", command("echo hi", env={name: "PWNED"}))
    refused(
        spindle,
        "attempt.yaml",
        f"node 'x': command refused by policy: env override ({name}) (under allowed_executables "
        f"a command runs with spindle's environment only",
    )


FUNCTIONS = [
    ("os:system", "node 'x': function 'os:system' is not in the policy's allowed functions (none); add it to [policy] allowed_functions to allow it"),
    ("subprocess:getoutput", "function 'subprocess:getoutput' is not in the policy's allowed functions (none)"),
    ("builtins:eval", "function 'builtins:eval' is not in the policy's allowed functions (none)"),
    ("importlib:import_module", "function 'importlib:import_module' is not in the policy's allowed functions (none)"),
]  # fmt: skip


@pytest.mark.parametrize(("function", "expected"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_a_python_function_is_refused_under_an_executable_allow_list(
    spindle, write, function, expected
):
    """allowed_executables without allowed_functions allows no python function at all."""
    write("spindle.toml", POLICY)
    write(
        "attempt.yaml",
        workflow(
            {"kind": "python", "function": function},
            inputs={"command": {"value": "touch PWNED"}, "cmd": {"value": "touch PWNED"}},
        ),
    )
    refused(spindle, "attempt.yaml", expected)


TASKS = """\
import os
from os import system
from functools import partial

def upper(text: str = "") -> str:
    return text.upper()

shout = partial(system, "touch PWNED")
"""

ALLOWED = [
    ("tasks:os.system", "node 'x': function 'tasks:os.system' is defined as 'posix:system', which is not in the policy's allowed functions (tasks:*)"),
    ("tasks:system", "function 'tasks:system' is defined as 'posix:system', which is not in the policy's allowed functions (tasks:*)"),
    ("tasks:shout", "function 'tasks:shout' is defined as 'functools:partial'"),
    ("tasksx:upper", "function 'tasksx:upper' is not in the policy's allowed functions (tasks:*)"),
    ("tasks.os:system", "function 'tasks.os:system' is not in the policy's allowed functions (tasks:*)"),
    ("..tasks:upper", "function '..tasks:upper' is not a plain 'module:function' reference, which the load policy requires (dotted ASCII names, no '__' attributes)"),
    ("tasks:upper.__globals__", "function 'tasks:upper.__globals__' is not a plain 'module:function' reference"),
    ("tasks :upper", "function 'tasks :upper' is not a plain 'module:function' reference"),
]  # fmt: skip


@pytest.mark.parametrize(("function", "expected"), ALLOWED, ids=[f[0] for f in ALLOWED])
def test_a_function_outside_allowed_functions_is_refused(spindle, write, function, expected):
    """allowed_functions is checked on exact dotted names and on where a function is defined."""
    write("spindle.toml", POLICY + 'allowed_functions = ["tasks:*"]\n')
    write("lib/tasks.py", TASKS)
    write(
        "attempt.yaml",
        workflow(
            {"kind": "python", "function": function},
            inputs={"command": {"value": "touch PWNED"}},
        ),
    )
    proc = spindle("run", "attempt.yaml", env=python_path(spindle.cwd / "lib"))
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1
    nothing_ran(spindle.cwd)


def test_a_module_from_the_workflow_directory_is_refused_and_not_imported(spindle, write):
    """A file next to the workflow named like an allowed module is refused, never imported."""
    write("spindle.toml", POLICY + 'allowed_functions = ["tasks:*"]\n')
    write("flows/tasks.py", "open('PWNED-imported', 'w').close()\ndef upper():\n    return 1\n")
    write("flows/attempt.yaml", workflow({"kind": "python", "function": "tasks:upper"}))
    proc = spindle("run", "flows/attempt.yaml")
    assert proc.returncode == 2, proc.stderr
    assert "node 'x': function 'tasks:upper' comes from the workflow's own directory (" in (
        proc.stderr
    )
    assert "which a load policy does not trust; install the module or put its directory on " in (
        proc.stderr
    )
    nothing_ran(spindle.cwd)


def test_a_module_outside_the_allow_list_is_not_imported(spindle, write):
    """A refused function's module is never imported: its import-time code does not run."""
    write("spindle.toml", POLICY)
    write("lib/evil.py", "open('PWNED-imported', 'w').close()\ndef f():\n    return 1\n")
    write("attempt.yaml", workflow({"kind": "python", "function": "evil:f"}))
    proc = spindle("run", "attempt.yaml", env=python_path(spindle.cwd / "lib"))
    assert proc.returncode == 2
    assert "function 'evil:f' is not in the policy's allowed functions (none)" in proc.stderr
    nothing_ran(spindle.cwd)


def test_python_code_is_refused_by_a_function_policy(spindle, write):
    """Without deny_kinds, allowed_executables still refuses python_code (it runs exec)."""
    write("spindle.toml", '[policy]\nallowed_executables = ["echo"]\n')
    code = "import os\nos.system('touch PWNED')"
    write("attempt.yaml", workflow({"kind": "python_code", "code": code}))
    refused(
        spindle,
        "attempt.yaml",
        "node 'x': function 'builtins:exec' is not in the policy's allowed functions (none)",
    )


def test_allowed_functions_and_plain_commands_still_run(spindle, write):
    """An allowed function and plain allowed command lines run as before under the policy."""
    write("spindle.toml", POLICY + 'allowed_functions = ["tasks:upper"]\n')
    write("lib/tasks.py", TASKS)
    lines = {
        "a": "echo hi",
        "b": "echo hi > {outputs.out.path} 2>&1; echo done;",
        "c": "echo 'a;b' \"c d\" {inputs.text} a=b ~ *.none | echo piped && echo and || echo or",
        "d": "echo 2>{outputs.out.path} -n >>{outputs.out.path}",
    }
    nodes: dict[str, Any] = {
        nid: {
            "runtime": {"kind": "command", "command": line},
            "inputs": {"text": {"value": "x; touch PWNED"}},
            "outputs": {"out": {"kind": "file", "path": f"{nid}.txt"}} if "out" in line else {},
        }
        for nid, line in lines.items()
    }
    nodes["up"] = {
        "runtime": {"kind": "python", "function": "tasks:upper"},
        "inputs": {"text": {"value": "shout"}},
    }
    write("ok.yaml", json.dumps({"name": "ok", "nodes": nodes}))
    code, doc = spindle.json("run", "ok.yaml", env=python_path(spindle.cwd / "lib"))
    assert code == 0, doc
    assert doc["status"] == "completed"
    results = {n["id"]: n.get("result") for n in doc.get("nodes", [])} or doc["output"]
    assert results["a"] == "hi"
    assert results["b"] == "done"
    assert results["c"] == "piped\nand"
    assert results["up"] == "SHOUT"
    assert not list(spindle.cwd.rglob("PWNED*"))


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            'allowed_functions = ["os"]',
            "[policy] allowed_functions: entry 'os' is not 'module:function', 'module:*' or "
            "'package.*:*' (dotted ASCII names, e.g. 'mypkg.tasks:upper')",
        ),
        (
            'allowed_functions = ["o*:*"]',
            "[policy] allowed_functions: entry 'o*:*' is not 'module:function'",
        ),
        (
            'allowed_executables = ["rm -rf"]',
            "[policy] allowed_executables: entry 'rm -rf' is not a plain program name "
            "(ASCII letters, digits and _./+-)",
        ),
    ],
)
def test_a_malformed_policy_entry_is_a_config_error(spindle, write, setting, expected):
    """A policy entry that cannot be matched exactly is refused with the file and line."""
    write("spindle.toml", f"[policy]\n{setting}\n")
    write("ok.yaml", command("echo hi"))
    proc = spindle("run", "ok.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert f"spindle.toml:2: {expected}" in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
