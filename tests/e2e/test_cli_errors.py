"""Bad input gives one clear ``error: ...`` on stderr and the contract's exit code:
2 for a bad file, input or command line (before anything runs), 1 for a run
that fails."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

STEPS = "def needs_zzz(zzz):\n    return zzz\n"

ASK = """\
name: ask
nodes:
  approve:
    effect: {kind: ask_user, prompt: "Ship it?", choices: ["yes", "no"]}
"""

#: name -> (workflow text, the whole stderr `spindle run bad.yaml` must print)
LOAD_ERRORS = {
    "yaml_syntax": (
        "name: x\nnodes:\n  a:\n    runtime: {kind: command, command: echo: hi}\n",
        "error: bad.yaml: invalid YAML\n"
        "  - bad.yaml:4:43: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping at line 4, column 14)\n",
    ),
    "missing_field": (
        "name: x\nnodes:\n  a:\n    runtime: {kind: command}\n",
        "error: bad.yaml: workflow 'x' is invalid\n"
        "  - bad.yaml:4: required field missing @ nodes.a.runtime.command\n",
    ),
    "wrong_type": (
        "name: x\nnodes:\n  a:\n    runtime: {kind: command, command: echo}\n"
        "    retry: {max_attempts: lots}\n",
        "error: bad.yaml: workflow 'x' is invalid\n"
        "  - bad.yaml:5: expected an integer, got str 'lots' @ nodes.a.retry.max_attempts\n",
    ),
    "unknown_placeholder": (
        "name: x\ninputs: {who: world}\nnodes:\n"
        "  a:\n    runtime: {kind: command, command: 'echo {inputs.whom}'}\n",
        "error: bad.yaml: workflow 'x' is invalid\n"
        "  - bad.yaml:5: node 'a': unknown placeholder '{inputs.whom}' in command; "
        "available: inputs.who, task.name, run.id, run.dir @ nodes.a.runtime\n",
    ),
    "dependency_cycle": (
        "name: x\nnodes:\n"
        "  a:\n    runtime: {kind: command, command: echo a}\n    after: [b]\n"
        "  b:\n    runtime: {kind: command, command: echo b}\n    after: [a]\n",
        "error: bad.yaml: workflow 'x' is invalid\n"
        "  - bad.yaml:3: dependency cycle: a -> b -> a @ nodes.a\n",
    ),
    "missing_function": (
        "name: x\nnodes:\n  a:\n    runtime: {kind: python, function: 'steps:nothere'}\n",
        "error: bad.yaml: workflow 'x' is invalid\n"
        "  - bad.yaml:4: node 'a': runtime 'python' cannot import 'steps:nothere' "
        "(module 'steps' has no attribute 'nothere'); is the module on PYTHONPATH or next "
        "to the workflow file? @ nodes.a.runtime\n",
    ),
    "unsatisfiable_parameter": (
        "name: x\ninputs: {who: world}\nnodes:\n"
        "  a:\n    runtime: {kind: python, function: 'steps:needs_zzz'}\n",
        "error: bad.yaml: workflow 'x' is invalid\n"
        "  - bad.yaml:5: node 'a': function 'steps:needs_zzz' has parameter 'zzz' that "
        "nothing provides; available: ctx, who @ nodes.a.runtime\n",
    ),
}


@pytest.mark.parametrize("case", sorted(LOAD_ERRORS))
def test_invalid_workflow_file_exits_2_with_the_located_problem(spindle, write, case):
    """An invalid file exits 2 with `error: FILE: ...` and FILE:LINE per problem; nothing runs."""
    text, expected = LOAD_ERRORS[case]
    write("bad.yaml", text)
    write("steps.py", STEPS)
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 2
    assert proc.stderr == expected
    assert proc.stdout == ""
    assert not (spindle.cwd / ".spindle").exists()


def test_unknown_kind_lists_the_installed_kinds(spindle, write):
    """An unknown runtime kind is named, with the kinds that are installed."""
    write("bad.yaml", "name: x\nnodes:\n  a:\n    runtime: {kind: nope}\n")
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 2
    assert re.fullmatch(
        r"error: bad\.yaml: workflow 'x' is invalid\n"
        r"  - bad\.yaml:4: unknown runtime kind 'nope'; installed runtime kinds: "
        r"command, python, python_code(, [a-z_]+)*\. @ nodes\.a\.runtime\.kind\n",
        proc.stderr,
    ), proc.stderr


def test_a_command_node_on_the_dask_executor_is_refused_at_load(spindle, write):
    """`executor: {kind: dask}` on a command node says dask runs Python callables only."""
    pytest.importorskip("distributed", reason="the dask executor needs dask.distributed")
    write(
        "bad.yaml",
        "name: x\nnodes:\n  a:\n    runtime: {kind: command, command: echo}\n"
        "    executor: {kind: dask}\n",
    )
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 2
    assert (
        "bad.yaml:5: node 'a': executor 'dask' cannot run what runtime 'command' prepares "
        "(CommandPayload; it accepts PythonCall)"
    ) in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.yaml"], "error: workflow file not found: missing.yaml\n"),
        (
            ["steps.py"],
            "error: cannot load workflow file steps.py: unsupported file type '.py'; "
            "use one of .yaml, .yml, .json\n",
        ),
        (
            ["ask.yaml", "--input", "who"],
            "error: --input 'who' must look like NAME=VALUE (e.g. --input who=Ada)\n",
        ),
        (
            ["ask.yaml", "--input", "who=Ada"],
            "error: invalid inputs for workflow 'ask'\n"
            "  - unknown input 'who'; workflow 'ask' declares: (none)\n",
        ),
    ],
    ids=["file_not_found", "not_a_workflow_file", "malformed_input", "unknown_input"],
)
def test_bad_command_line_exits_2(spindle, write, args, expected):
    """A missing file, a non-workflow file or a bad --input exits 2 with one message."""
    write("ask.yaml", ASK)
    write("steps.py", STEPS)
    proc = spindle("run", *args)
    assert proc.returncode == 2
    assert proc.stderr == expected


def test_required_input_missing_exits_2(spindle, write):
    """A required workflow input that is not given is named with the flag that gives it."""
    write(
        "req.yaml",
        "name: req\ninputs: {who: {required: true}}\nnodes:\n"
        "  a:\n    runtime: {kind: command, command: 'echo {inputs.who}'}\n",
    )
    proc = spindle("run", "req.yaml")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: invalid inputs for workflow 'req'\n"
        "  - input 'who' is required; pass --input who=VALUE\n"
    )


def test_output_file_not_produced_fails_the_run(spindle, write):
    """A node that does not write its declared file fails the run: exit 1, the path named."""
    write(
        "bad.yaml",
        "name: x\nnodes:\n  a:\n    runtime: {kind: command, command: echo hi}\n"
        "    outputs: {o: {kind: file, path: o.txt}}\n",
    )
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 1
    rid = proc.stdout.split()[1]
    run_dir = spindle.cwd / ".spindle" / "runs" / rid
    assert proc.stdout == f"run {rid} failed\n"
    assert proc.stderr.endswith(
        f"error: node 'a' did not produce output 'o': expected a file at {run_dir / 'o.txt'}\n"
    )


def test_command_exiting_non_zero_fails_the_run(spindle, write):
    """A failing command fails the run: exit 1; the error has the exit code and stderr tail."""
    lines = "; ".join(f"echo line{i} >&2" for i in range(30))
    write(
        "bad.yaml",
        f"name: x\nnodes:\n  a:\n    runtime: {{kind: command, command: '{lines}; exit 3'}}\n",
    )
    proc = spindle("run", "bad.yaml")
    assert proc.returncode == 1
    _, _, error = proc.stderr.partition("\nerror: ")
    assert error.startswith("node 'a': command exited with code 3: ")
    assert error.endswith("line28\nline29\n")


@pytest.mark.parametrize("command", ["show", "resume", "ledger", "cancel"])
def test_unknown_run_id_exits_2(spindle, command):
    """A run id the store does not have is named, with how to find the right one."""
    proc = spindle(command, "no-such-run")
    assert proc.returncode == 2
    store = spindle.cwd / ".spindle" / "spindle.db"
    assert proc.stderr == (
        f"error: run 'no-such-run' not found in SQLite store {store}; check the id with "
        f"'spindle runs' and the store URL\n"
    )


def test_resume_of_a_completed_run_exits_2(spindle, write):
    """Resuming a run that already completed is an error saying so."""
    write("ask.yaml", ASK)
    _, doc = spindle.json("run", "ask.yaml")
    rid = doc["run_id"]
    assert spindle("resume", rid, "--payload", '"yes"').returncode == 0
    proc = spindle("resume", rid)
    assert proc.returncode == 2
    assert proc.stderr == (f"error: run {rid} has already completed; there is nothing to resume\n")


def test_resume_with_the_wrong_key_lists_the_keys(spindle, write):
    """A wait key the run is not waiting on exits 2 and lists the keys it waits on."""
    write("ask.yaml", ASK)
    _, doc = spindle.json("run", "ask.yaml")
    rid = doc["run_id"]
    proc = spindle("resume", rid, "--key", "aprove", "--payload", '"yes"')
    assert proc.returncode == 2
    assert proc.stderr == f"error: run {rid} is not waiting on 'aprove'; it waits on: approve\n"


def test_answer_not_among_the_choices_exits_2(spindle, write):
    """An answer that is not one of the choices exits 2, lists them and leaves the run waiting."""
    write("ask.yaml", ASK)
    _, doc = spindle.json("run", "ask.yaml")
    rid = doc["run_id"]
    proc = spindle("resume", rid, "--key", "approve", "--payload", '"maybe"')
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: 'maybe' is not one of the choices for 'approve' (yes, no); answer with one "
        "of them, e.g. --payload '\"yes\"'\n"
    )
    assert spindle.json("show", rid)[1]["status"] == "waiting"


PAY = """\
name: pay
nodes:
  paid:
    effect: {kind: wait_event, key: payment}
output: paid
"""


@pytest.mark.parametrize("key", [[], ["--key", "paid"]])
def test_resume_of_an_event_wait_without_payload_is_refused(spindle, write, key):
    """`resume RUN` without --payload does not answer a wait_event with null by accident."""
    write("pay.yaml", PAY)
    rid = spindle.json("run", "pay.yaml")[1]["run_id"]
    proc = spindle("resume", rid, *key)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: run {rid} waits for event 'payment' (wait 'paid') and --payload was not "
        f"given; answer with: spindle resume {rid} --key paid --payload '{{...}}' "
        f"(--payload null for no payload), or deliver the event: spindle emit payment "
        f"--payload '{{...}}'\n"
    )
    assert spindle.json("show", rid)[1]["status"] == "waiting"
    code, doc = spindle.json("resume", rid, "--payload", "null")
    assert (code, doc["status"], doc["output"]) == (0, "completed", None)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_without_a_server_says_it_cannot_connect(spindle, scheme):
    """A postgresql:// store whose server is not there: exit 2, one line saying what to check,
    no password (the store shipped with issue 12; before, it said it was not available)."""
    url = f"{scheme}://user:pw123@127.0.0.1:1/db?retry_for=0.5&connect_timeout=1"
    proc = spindle("runs", "--store", url)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: PostgreSQL store " + scheme + "://user:***@127.0.0.1:1/db"
    ), proc.stderr
    assert "cannot connect" in proc.stderr and "check that the server is running" in proc.stderr
    assert "pw123" not in proc.stderr and len(proc.stderr.splitlines()) == 1
