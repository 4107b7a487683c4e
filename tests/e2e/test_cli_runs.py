"""The run commands as a user drives them: exit codes, --json, progress, Ctrl-C,
answering waits, events, cancelling, listing, the ledger, stores, security."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time

import pytest

from tests.ptys import on_pty

pytestmark = pytest.mark.slow

ASK = """\
name: ask
nodes:
  approve:
    effect: {kind: ask_user, prompt: "Ship it?", choices: ["yes", "no"]}
  ship:
    runtime: {kind: python_code, code: "result = 'shipped: ' + inputs['answer']"}
    inputs: {answer: approve}
output: ship
"""

EVENT = """\
name: pay
nodes:
  paid:
    effect: {kind: wait_event, key: payment}
  receipt:
    runtime: {kind: python_code, code: "result = 'receipt for ' + str(inputs['p']['amount'])"}
    inputs: {p: paid}
output: receipt
"""

SLOW = """\
name: slow
nodes:
  first:
    runtime: {kind: command, command: "echo one > first.txt"}
  nap:
    runtime: {kind: command, command: "sleep 3; echo rested"}
    after: [first]
  last:
    runtime: {kind: python_code, code: "result = 'done ' + inputs['x']"}
    inputs: {x: nap}
output: last
"""

FAILS = """\
name: fails
nodes:
  boom:
    runtime: {kind: command, command: "echo going down >&2; exit 7"}
"""

ECHO = """\
name: echo
inputs: {who: world}
nodes:
  say:
    runtime: {kind: command, command: "echo hi {inputs.who}"}
output: say
"""

WAITING_KEYS = {"key", "reason", "prompt", "choices"}


def _run_id(proc):
    """The run id from the `run RUN_ID STATUS` line of `spindle run`."""
    line = next(x for x in proc.stdout.splitlines() if x.startswith("run "))
    return line.split()[1]


# --- exit codes and --json ---------------------------------------------------------------


def test_json_document_describes_a_waiting_run_on_run_resume_show_and_runs(spindle, write):
    """--json prints one document with run_id, status, output, waiting and error everywhere."""
    write("ask.yaml", ASK)
    code, doc = spindle.json("run", "ask.yaml")
    assert code == 3
    assert doc["status"] == "waiting"
    assert doc["output"] is None and doc["error"] is None
    assert {k: doc["waiting"][k] for k in WAITING_KEYS} == {
        "key": "approve",
        "reason": "user",
        "prompt": "Ship it?",
        "choices": ["yes", "no"],
    }
    rid = doc["run_id"]
    code, shown = spindle.json("show", rid)
    assert code == 3
    assert shown["waiting"]["key"] == "approve"
    assert shown["nodes"]["approve"]["status"] == "waiting"
    assert shown["nodes"]["ship"]["status"] == "pending"
    code, listing = spindle.json("runs")
    assert code == 0
    assert [r["run_id"] for r in listing["runs"]] == [rid]
    code, done = spindle.json("resume", rid, "--key", "approve", "--payload", '"yes"')
    assert code == 0
    assert done["status"] == "completed"
    assert done["output"] == "shipped: yes"
    assert done["waiting"] is None


def test_failed_run_exits_1_with_exit_code_and_stderr_tail(spindle, write):
    """A command exiting non-zero fails the run: exit 1, the error names code and stderr."""
    write("fails.yaml", FAILS)
    proc = spindle("run", "fails.yaml")
    assert proc.returncode == 1
    assert "failed" in proc.stdout
    assert "error: node 'boom': command exited with code 7: going down" in proc.stderr
    code, doc = spindle.json("show", _run_id(proc))
    assert code == 1
    assert doc["status"] == "failed"
    assert "exited with code 7" in doc["error"]


def test_progress_shows_running_completed_failed_and_waiting_nodes(spindle, write):
    """Without a terminal, progress is one plain stderr line per node event with durations."""
    write("ask.yaml", ASK)
    write("fails.yaml", FAILS)
    waiting = spindle("run", "ask.yaml")
    assert "  approve running" in waiting.stderr
    assert "  approve waiting" in waiting.stderr
    failed = spindle("run", "fails.yaml")
    lines = failed.stderr.splitlines()
    assert "  boom running" in lines
    assert any(x.startswith("  boom failed in ") and "s: node 'boom'" in x for x in lines)
    assert "\x1b[" not in failed.stderr  # no colour codes when stderr is not a terminal


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_is_coloured_on_a_terminal(spindle, examples):
    """On a terminal, progress is drawn with rich and ends in a one-line summary."""
    env = spindle.env({"TERM": "xterm-256color", "COLUMNS": "120"})
    env.pop("NO_COLOR", None)
    returncode, out, tty = on_pty(["run", "examples/hello.yaml"], cwd=spindle.cwd, env=env)
    assert returncode == 0
    assert "Hello, world!" in out
    assert "\x1b[" in tty
    assert "2/2 nodes · 0 failed · " in tty
    assert "write completed" not in tty  # per-node lines only with -v


# --- interrupting and answering ----------------------------------------------------------


def test_ctrl_c_leaves_the_run_resumable(spindle, write):
    """SIGINT mid-run exits 130; show says interrupted and how to continue; resume finishes it."""
    write("slow.yaml", SLOW)
    proc = spindle.popen("run", "slow.yaml")
    deadline = time.monotonic() + 30
    run_dir = spindle.cwd / ".spindle" / "runs"
    while not list(run_dir.glob("*/first.txt")):
        assert time.monotonic() < deadline, "the first node never ran"
        time.sleep(0.05)
    time.sleep(0.5)  # let `nap` start
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    rid = next(run_dir.iterdir()).name
    assert f"spindle resume {rid}" in err
    shown = spindle("show", rid)
    assert (
        f"status    running (interrupted: its process stopped; continue it with: "
        f"spindle resume {rid})"
    ) in shown.stdout
    assert "first  completed" in shown.stdout
    code, doc = spindle.json("show", rid)
    assert code == 3  # not finished
    assert doc["interrupted"] is True
    assert doc["nodes"]["nap"]["status"] == "pending"
    done = spindle("resume", rid)
    assert done.returncode == 0, done.stderr
    assert "output: done rested" in done.stdout
    ledger = json.loads(spindle("ledger", rid, "--json").stdout)["records"]
    completed = [r["node_id"] for r in ledger if r["kind"] == "node"]
    assert completed == ["first", "nap", "last"]  # `first` was not run again


def _wait_for_node(proc, node):
    """Wait until `spindle run` reports NODE running (reading its stderr line by line)."""
    for line in proc.stderr:
        if line.strip() == f"{node} running":
            return
    raise AssertionError(f"{node} never started: {proc.communicate(timeout=30)}")


def test_ctrl_c_during_a_python_step_exits_at_once(spindle, write):
    """Ctrl-C does not wait for a Python step stuck in a thread; the run stays resumable."""
    write(
        "stuck.yaml",
        "name: stuck\nnodes:\n  nap:\n"
        "    runtime: {kind: python_code, code: 'import time; time.sleep(60)'}\n",
    )
    proc = spindle.popen("run", "stuck.yaml")
    _wait_for_node(proc, "nap")
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert time.monotonic() - began < 10
    assert proc.returncode == 130
    listing = spindle.json("runs")[1]["runs"]
    assert [r["status"] for r in listing] == ["running"]
    _, doc = spindle.json("show", listing[0]["run_id"])
    assert doc["interrupted"] is True
    assert doc["nodes"]["nap"]["status"] == "pending"


def test_killed_run_is_shown_interrupted_and_resumes(spindle, write):
    """After kill -9 mid-run, show says interrupted and resume completes without redoing nodes."""
    write("slow.yaml", SLOW)
    proc = spindle.popen("run", "slow.yaml")
    _wait_for_node(proc, "nap")
    proc.kill()
    proc.communicate(timeout=30)
    rid = spindle.json("runs")[1]["runs"][0]["run_id"]
    shown = spindle("show", rid)
    assert "(interrupted: its process stopped; continue it with: spindle resume" in shown.stdout
    done = spindle("resume", rid)
    assert done.returncode == 0, done.stderr
    assert "output: done rested" in done.stdout
    assert "first running" not in done.stderr


def test_interactive_run_asks_at_the_terminal(spindle, write):
    """--interactive prompts for the answer on stderr, re-asks on a bad choice, and completes."""
    write("ask.yaml", ASK)
    proc = spindle("run", "ask.yaml", "--interactive", input="maybe\nno\n")
    assert proc.returncode == 0, proc.stderr
    assert "Ship it? (yes, no):" in proc.stderr
    assert "'maybe' is not one of 'yes', 'no'" in proc.stderr
    assert "output: shipped: no" in proc.stdout


def test_interactive_run_without_an_answer_stays_waiting(spindle, write):
    """When stdin ends before an answer, the run is left waiting (exit 3)."""
    write("ask.yaml", ASK)
    proc = spindle("run", "ask.yaml", "--interactive", input="")
    assert proc.returncode == 3
    assert "spindle resume" in proc.stdout


def test_resume_of_a_question_without_payload_says_how_to_answer(spindle, write):
    """Resuming an ask_user wait without --payload is an input error naming the command."""
    write("ask.yaml", ASK)
    _, doc = spindle.json("run", "ask.yaml")
    proc = spindle("resume", doc["run_id"])
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: run {doc['run_id']} waits for an answer to 'approve'")
    assert "--payload '\"yes\"'" in proc.stderr
    answered = spindle("resume", doc["run_id"], "--interactive", input="yes\n")
    assert answered.returncode == 0, answered.stderr


def test_resume_answered_twice_is_a_no_op(spindle, write):
    """Answering the same wait again changes nothing and says so."""
    write("ask.yaml", ASK)
    _, doc = spindle.json("run", "ask.yaml")
    rid = doc["run_id"]
    assert spindle("resume", rid, "--key", "approve", "--payload", '"yes"').returncode == 0
    again = spindle("resume", rid, "--key", "approve", "--payload", '"no"')
    assert again.returncode == 0
    assert "wait 'approve' was already answered; nothing changed" in again.stderr
    assert "output: shipped: yes" in again.stdout


def test_emit_delivers_an_event_to_the_waiting_run(spindle, write):
    """`spindle emit KEY --payload JSON` resumes the run waiting on KEY."""
    write("pay.yaml", EVENT)
    proc = spindle("run", "pay.yaml")
    assert proc.returncode == 3
    assert "waiting for event 'payment'" in proc.stdout
    assert "deliver: spindle emit payment --payload" in proc.stdout
    rid = _run_id(proc)
    sent = spindle("emit", "payment", "--payload", '{"amount": 42}')
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == f"event 'payment' delivered to run {rid}"
    code, doc = spindle.json("show", rid)
    assert code == 0
    assert doc["output"] == "receipt for 42"


def test_event_emitted_before_the_run_waits_is_kept(spindle, write):
    """An event no run waits for yet stays in the inbox and is taken by the next run."""
    write("pay.yaml", EVENT)
    early = spindle("emit", "payment", "--payload", '{"amount": 7}')
    assert early.stdout.strip() == "event 'payment' kept in the inbox until a run waits for it"
    code, doc = spindle.json("run", "pay.yaml")
    assert code == 0
    assert doc["output"] == "receipt for 7"


def test_cancel_of_a_waiting_run_cancels_it(spindle, write):
    """Cancelling a waiting run ends it as cancelled (show exits 1); cancelling again is a no-op."""
    write("ask.yaml", ASK)
    _, doc = spindle.json("run", "ask.yaml")
    rid = doc["run_id"]
    proc = spindle("cancel", rid)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"run {rid} cancelled"
    code, shown = spindle.json("show", rid)
    assert code == 1
    assert shown["status"] == "cancelled"
    again = spindle("cancel", rid)
    assert again.returncode == 0
    assert again.stdout.strip() == f"run {rid} has already cancelled; nothing to cancel"


def test_cancel_of_a_finished_run_is_a_no_op(spindle, write):
    """Cancelling a completed run leaves it completed and says so."""
    write("echo.yaml", ECHO)
    _, doc = spindle.json("run", "echo.yaml")
    proc = spindle("cancel", doc["run_id"])
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"run {doc['run_id']} has already completed; nothing to cancel"
    assert spindle.json("show", doc["run_id"])[1]["status"] == "completed"


def test_runs_filters_by_status(spindle, write):
    """`spindle runs --status S` lists only runs in status S."""
    write("ask.yaml", ASK)
    write("echo.yaml", ECHO)
    write("fails.yaml", FAILS)
    waiting = spindle.json("run", "ask.yaml")[1]["run_id"]
    completed = spindle.json("run", "echo.yaml")[1]["run_id"]
    spindle("run", "fails.yaml")
    proc = spindle("runs", "--status", "waiting")
    assert proc.returncode == 0
    assert waiting in proc.stdout and completed not in proc.stdout
    assert "waits on approve" in proc.stdout
    _, listing = spindle.json("runs", "--status", "completed")
    assert [r["run_id"] for r in listing["runs"]] == [completed]
    assert len(spindle.json("runs")[1]["runs"]) == 3
    none = spindle("runs", "--status", "cancelled")
    assert none.stdout.strip() == "no runs with status cancelled"


def test_detached_run_is_driven_by_a_worker(spindle, write):
    """`run --detach` records a pending run; `spindle worker --once` completes it."""
    write("echo.yaml", ECHO)
    proc = spindle("run", "echo.yaml", "--detach", "--input", "who=later")
    assert proc.returncode == 0
    rid = proc.stdout.split()[1]
    code, doc = spindle.json("show", rid)
    assert (code, doc["status"]) == (3, "pending")
    work = spindle("worker", "--once")
    assert work.returncode == 0, work.stderr
    assert f"run {rid} completed" in work.stderr
    assert spindle.json("show", rid)[1]["output"] == "hi later"


def test_worker_reports_a_run_it_cannot_drive_and_drives_the_others(spindle, write, tmp_path):
    """A run whose function no longer imports is reported, left as is; the others complete."""
    write("steps_gone.py", "def hello():\n    return 'hi'\n")
    write(
        "gone.yaml",
        "name: gone\nnodes:\n  hello:\n    runtime: {kind: python, function: 'steps_gone:hello'}\n",
    )
    write("echo.yaml", ECHO)
    bad = spindle("run", "gone.yaml", "--detach").stdout.split()[1]
    good = spindle("run", "echo.yaml", "--detach", "--input", "who=w").stdout.split()[1]
    (tmp_path / "steps_gone.py").unlink()
    work = spindle("worker", "--once")
    assert work.returncode == 0, work.stderr
    assert f"run {bad} cannot be driven here:" in work.stderr
    assert "steps_gone" in work.stderr
    assert f"run {good} completed" in work.stderr
    assert spindle.json("show", bad)[1]["status"] == "pending"


# --- the ledger -----------------------------------------------------------------------


def test_ledger_verify_detects_a_tampered_record(spindle, write):
    """`ledger verify` passes on an intact ledger and reports index 0 after record 0 is edited."""
    write("echo.yaml", ECHO)
    _, doc = spindle.json("run", "echo.yaml")
    rid = doc["run_id"]
    listing = spindle("ledger", rid)
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[0].split() == [
        "SEQ", "KIND", "NODE", "STATUS", "TRY", "RESULT", "/", "ERROR", "HASH"
    ]  # fmt: skip
    assert "hi world" in listing.stdout
    ok = spindle("ledger", "verify", rid)
    assert ok.returncode == 0
    assert ok.stdout.strip() == (
        f"ledger of run {rid} is intact: 2 records, hash chain ok, head and state match"
    )
    with sqlite3.connect(spindle.cwd / ".spindle" / "spindle.db") as db:
        changed = db.execute(
            "UPDATE ledger SET body = replace(body, 'hi world', 'hi mallory') "
            "WHERE run_id = ? AND seq = 0",
            (rid,),
        ).rowcount
    assert changed == 1
    bad = spindle("ledger", "verify", rid)
    assert bad.returncode == 1
    assert f"ledger of run {rid} is BROKEN: first bad record at index 0 of 2" in bad.stdout
    code, report = spindle.json("ledger", "verify", rid)
    assert code == 1
    assert report["ok"] is False and report["first_bad_index"] == 0


# --- stores -----------------------------------------------------------------------------


def test_store_flag_and_spindle_store_pick_the_store(spindle, write):
    """--store URL and SPINDLE_STORE choose the store; --store wins over the variable."""
    write("echo.yaml", ECHO)
    code, doc = spindle.json("run", "echo.yaml", "--store", "sqlite:///custom.db")
    assert code == 0
    assert (spindle.cwd / "custom.db").is_file()
    assert not (spindle.cwd / ".spindle" / "spindle.db").exists()
    assert spindle("runs").stdout.strip() == "no runs"
    env = {"SPINDLE_STORE": "sqlite:///custom.db"}
    shown = spindle("show", doc["run_id"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert "output    hi world" in shown.stdout
    missing = spindle("show", doc["run_id"], "--store", "sqlite:///other.db", env=env)
    assert missing.returncode == 2
    assert f"run '{doc['run_id']}' not found" in missing.stderr


def test_memory_store_runs_without_touching_disk_state(spindle, write):
    """`--store memory://` runs a workflow and leaves no database file."""
    write("echo.yaml", ECHO)
    code, doc = spindle.json("run", "echo.yaml", "--store", "memory://")
    assert code == 0
    assert doc["output"] == "hi world"
    assert not (spindle.cwd / ".spindle" / "spindle.db").exists()


# --- security ---------------------------------------------------------------------------


def test_input_cannot_inject_shell_syntax(spindle, examples):
    """A quoted input with `; touch` is printed literally and creates no file."""
    proc = spindle("run", "examples/hello.yaml", "--input", "who=x; touch INJECTED")
    assert proc.returncode == 0, proc.stderr
    assert "output: Hello, x; touch INJECTED!" in proc.stdout
    assert not list(spindle.cwd.rglob("INJECTED"))


def test_policy_refuses_a_denied_kind_before_anything_runs(spindle, examples, write):
    """`[policy] deny_kinds` refuses python_code: exit 2 naming node and kind; no run starts."""
    write("spindle.toml", '[policy]\ndeny_kinds = ["runtime.python_code"]\n')
    proc = spindle("run", "examples/hello.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: examples/hello.yaml: workflow 'hello' is refused")
    assert "node 'read': runtime kind 'python_code' is not allowed by the load policy" in (
        proc.stderr
    )
    assert proc.stdout == ""
    assert not (spindle.cwd / ".spindle").exists()


def test_policy_refuses_an_executable_not_allowed(spindle, write):
    """`allowed_executables = ["echo"]` refuses a command using rm, naming node and program."""
    write("spindle.toml", '[policy]\nallowed_executables = ["echo"]\n')
    write(
        "clean.yaml",
        "name: clean\nnodes:\n"
        "  say:\n    runtime: {kind: command, command: 'echo cleaning'}\n"
        "  wipe:\n    runtime: {kind: command, command: 'rm -f precious.txt'}\n",
    )
    (spindle.cwd / "precious.txt").write_text("keep me")
    proc = spindle("run", "clean.yaml")
    assert proc.returncode == 2
    assert "node 'wipe': executable 'rm' is not in the policy's allowed executables (echo)" in (
        proc.stderr
    )
    assert "'say'" not in proc.stderr
    assert (spindle.cwd / "precious.txt").read_text() == "keep me"


SECRET = """\
name: deploy
inputs:
  token: {secret: true, required: true}
nodes:
  login:
    runtime: {kind: python_code, code: "result = 'token of %d chars' % len(inputs['token'])"}
    inputs: {token: inputs.token}
  approve:
    effect: {kind: ask_user, prompt: "Deploy?", choices: ["yes", "no"]}
    after: [login]
  deploy:
    runtime: {kind: python_code, code: "result = 'deployed with ' + inputs['token']"}
    inputs: {token: inputs.token}
    after: [approve]
output: deploy
"""


def test_secret_input_is_given_again_on_resume_and_never_stored(spindle, write):
    """A secret input is never written under .spindle; resuming elsewhere must give it again."""
    write("deploy.yaml", SECRET)
    proc = spindle("run", "deploy.yaml", "--input", "token=hunter2")
    assert proc.returncode == 3
    rid = _run_id(proc)
    assert f"give them again when you continue: spindle resume {rid} --input token=VALUE" in (
        proc.stderr
    )
    refused = spindle("resume", rid, "--payload", '"yes"')
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: run {rid} has secret inputs, which are never stored: give them again with "
        f"spindle resume {rid} --input token=VALUE (plus --key/--payload to answer a wait)\n"
    )
    assert spindle.json("show", rid)[1]["status"] == "waiting"  # refused before anything ran
    wrong = spindle("resume", rid, "--payload", '"yes"', "--input", "tokn=hunter2")
    assert wrong.returncode == 2
    assert "has no secret input 'tokn'; its secret inputs: token" in wrong.stderr
    done = spindle("resume", rid, "--payload", '"yes"', "--input", "token=hunter2")
    assert done.returncode == 0, done.stderr
    assert "output: deployed with ***" in done.stdout
    assert "hunter2" not in done.stdout + done.stderr
    leaks = [
        p
        for p in (spindle.cwd / ".spindle").rglob("*")
        if p.is_file() and b"hunter2" in p.read_bytes()
    ]
    assert leaks == []


DEPLOY = """\
name: deploy
nodes:
  build:
    runtime: {kind: python_code, code: "result = 'v1'"}
  approve:
    effect: {kind: ask_user, prompt: "Ship?", choices: ["yes", "no"]}
    after: [build]
  ship:
    runtime: {kind: python_code, code: "result = 'shipped ' + inputs['b']"}
    inputs: {b: build}
    after: [approve]
output: ship
"""


def test_resume_with_a_changed_workflow_takes_pending_nodes_and_refuses_completed(spindle, write):
    """--workflow: a changed pending node is taken; a changed completed one needs --force."""
    path = write("deploy.yaml", DEPLOY)
    _, first = spindle.json("run", "deploy.yaml")
    _, second = spindle.json("run", "deploy.yaml")
    path.write_text(DEPLOY.replace("'shipped '", "'released '"))
    taken = spindle("resume", first["run_id"], "--payload", '"yes"', "--workflow", "deploy.yaml")
    assert taken.returncode == 0, taken.stderr
    assert "output: released v1" in taken.stdout
    path.write_text(DEPLOY.replace("'v1'", "'v2'"))
    refused = spindle("resume", second["run_id"], "--payload", '"yes"', "--workflow", "deploy.yaml")
    assert refused.returncode == 2
    assert "changed in node(s) that already completed: build" in refused.stderr
    forced = spindle(
        "resume", second["run_id"], "--payload", '"yes"', "--workflow", "deploy.yaml", "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert "output: shipped v1" in forced.stdout


def test_run_with_a_run_id_twice_makes_one_run(spindle, examples):
    """`spindle run --run-id ID` is idempotent: the second call shows the first run."""
    code, first = spindle.json("run", "examples/hello.yaml", "--run-id", "order-7")
    assert code == 0 and first["run_id"] == "order-7"
    code, second = spindle.json("run", "examples/hello.yaml", "--run-id", "order-7")
    assert (code, second["run_id"], second["output"]) == (0, "order-7", first["output"])
    code, listing = spindle.json("runs")
    assert [r["run_id"] for r in listing["runs"]] == ["order-7"]
    proc = spindle("run", "examples/hello.yaml", "--run-id", "../../etc")
    assert proc.returncode == 2 and "run id '../../etc' is not allowed" in proc.stderr
