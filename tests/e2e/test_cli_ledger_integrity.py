"""`spindle ledger verify` against a real SQLite file edited behind spindle's back.

Each test runs a workflow through the CLI, then changes the store with
``sqlite3`` as someone with write access to the file could: records removed
from the end of the ledger, a record's payload edited, the run's output or
status edited in the runs table, hashes recomputed. Verify must exit
non-zero and say what it found; a waiting run whose ledger lost records
must refuse to resume rather than run its completed nodes again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

THREE = """\
name: three
nodes:
  a:
    runtime: {kind: python_code, code: "result = 'A'"}
  b:
    runtime: {kind: python_code, code: "result = 'B'"}
    after: [a]
  c:
    runtime: {kind: python_code, code: "result = 'C'"}
    after: [b]
output: c
"""

# A node that leaves a mark each time it runs, then a wait for a person.
WAITING = """\
name: approval
nodes:
  count:
    runtime: {kind: command, command: "echo ran >> ../../../count.txt"}
  approve:
    effect: {kind: ask_user, prompt: "Go?"}
    after: [count]
  done:
    runtime: {kind: python_code, code: "result = 'done'"}
    after: [approve]
output: done
"""

KEY = {"SPINDLE_LEDGER_KEY": "correct horse battery staple"}


def _run(spindle, write, text: str = THREE, env: dict[str, str] | None = None) -> str:
    write("wf.yaml", text)
    code, doc = spindle.json("run", "wf.yaml", env=env)
    assert code in (0, 3), doc
    return str(doc["run_id"])


def _db(spindle) -> sqlite3.Connection:
    return sqlite3.connect(spindle.cwd / ".spindle" / "spindle.db")


def _sql(spindle, statement: str, *params: object) -> int:
    with _db(spindle) as db:
        changed = db.execute(statement, params).rowcount
    db.close()
    return changed


def _count(spindle, rid: str) -> int:
    with _db(spindle) as db:
        (count,) = db.execute("SELECT count(*) FROM ledger WHERE run_id = ?", (rid,)).fetchone()
    db.close()
    return int(count)


def _delete_last(spindle, rid: str, n: int) -> None:
    changed = _sql(
        spindle,
        "DELETE FROM ledger WHERE run_id = ? AND seq >= (SELECT max(seq) + 1 - ? FROM ledger"
        " WHERE run_id = ?)",
        rid,
        n,
        rid,
    )
    assert changed == n


def _verify(spindle, rid: str, env: dict[str, str] | None = None):
    return spindle("ledger", "verify", rid, env=env)


def _recompute_plain_chain(spindle, rid: str, edit: tuple[str, str]) -> None:
    """What an attacker who knows the plain format does: edit a record, then recompute
    every SHA-256 link after it, the run's head and its state digest."""
    from spindle.core.model import RunState, converter, state_hash

    db = _db(spindle)
    with db:
        rows = db.execute(
            "SELECT id, body FROM ledger WHERE run_id = ? ORDER BY seq", (rid,)
        ).fetchall()
        prev = ""
        for row_id, body in rows:
            body = body.replace(*edit)
            digest = hashlib.sha256((prev + "\n" + body).encode()).hexdigest()
            db.execute(
                "UPDATE ledger SET body = ?, prev_hash = ?, record_hash = ? WHERE id = ?",
                (body, prev, digest, row_id),
            )
            prev = digest
        (body,) = db.execute("SELECT body FROM runs WHERE run_id = ?", (rid,)).fetchone()
        hashed = state_hash(converter.structure(json.loads(body), RunState))
        seal = hashlib.sha256(f"state\n{len(rows)}\n{prev}\n{hashed}".encode()).hexdigest()
        db.execute(
            "UPDATE ledger SET record_hash = ?, prev_hash = ? WHERE kind = 'head'"
            " AND id >> 32 = (SELECT run_no FROM runs WHERE run_id = ?)",
            (prev, seal, rid),
        )
    db.close()


# --- the end of the ledger ------------------------------------------------------------------


def test_an_intact_run_verifies(spindle, write):
    """A completed run's ledger verifies: chain, head and state."""
    rid = _run(spindle, write)
    done = _verify(spindle, rid)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"ledger of run {rid} is intact: 4 records, hash chain ok, head and state match"
    )


def test_deleting_the_last_record_is_reported_as_truncation(spindle, write):
    """Removing the ledger's last record is reported: its head records 4, the ledger holds 3."""
    rid = _run(spindle, write)
    (head,) = _db(spindle).execute("SELECT record_hash FROM ledger WHERE kind = 'head'").fetchone()
    _delete_last(spindle, rid, 1)
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (
        f"BROKEN: ledger of run {rid} is truncated: its head records 4 records ending in "
        f"hash {head[:12]}…, the ledger holds 3"
    )


def test_deleting_the_last_two_records_is_reported_as_truncation(spindle, write):
    """Removing the last two records is reported with the count the ledger still holds."""
    rid = _run(spindle, write)
    _delete_last(spindle, rid, 2)
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert f"ledger of run {rid} is truncated: its head records 4 records" in bad.stdout
    assert bad.stdout.strip().endswith("the ledger holds 2")
    code, report = spindle.json("ledger", "verify", rid)
    assert code == 1
    assert (report["ok"], report["problem"], report["count"]) == (False, "head", 2)


def test_deleting_every_record_is_reported_as_truncation(spindle, write):
    """A ledger emptied of every record is reported as holding none."""
    rid = _run(spindle, write)
    assert _sql(spindle, "DELETE FROM ledger WHERE run_id = ?", rid) == 4
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert f"ledger of run {rid} is truncated" in bad.stdout
    assert bad.stdout.strip().endswith("the ledger holds none")


def test_a_record_added_after_the_head_is_reported(spindle, write):
    """A record copied onto the end of the ledger (right seq and link) is reported."""
    rid = _run(spindle, write)
    db = _db(spindle)
    with db:
        row = db.execute(
            "SELECT id, run_id, seq, node_id, kind, status, idempotency_key, attempt, prev_hash,"
            " record_hash, body FROM ledger WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
            (rid,),
        ).fetchone()
        body = row[10].replace('"seq":3', '"seq":4')
        digest = hashlib.sha256((row[9] + "\n" + body).encode()).hexdigest()
        # The head row holds the key after the last record (the next record's): move
        # it one on, as someone who knows the layout would, and put the record there.
        db.execute("UPDATE ledger SET id = id + 1 WHERE kind = 'head'")
        db.execute(
            "INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (row[0] + 1, rid, 4, *row[3:7], row[7], row[9], digest, body),
        )
    db.close()
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert f"ledger of run {rid} has records its head does not know" in bad.stdout
    assert "the ledger holds 5" in bad.stdout


def test_deleting_the_head_row_is_reported(spindle, write):
    """A run whose head row was deleted (to hide a truncation) is reported, and refused."""
    rid = _run(spindle, write, WAITING)
    _delete_last(spindle, rid, 1)
    assert _sql(spindle, "DELETE FROM ledger WHERE kind = 'head'") == 1
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (
        f"BROKEN: the ledger head of run {rid} is missing: the store wrote one for the run, "
        "and it was deleted"
    )
    refused = spindle("resume", rid, "--payload", '"yes"')
    assert refused.returncode == 2
    assert f"run {rid} cannot be continued: the ledger head of run {rid} is missing" in (
        refused.stderr
    )
    assert _ran(spindle) == 1


# --- records and the run's state ------------------------------------------------------------


def test_editing_a_record_payload_breaks_the_chain(spindle, write):
    """An edited result in a ledger record is reported at its index."""
    rid = _run(spindle, write)
    changed = _sql(
        spindle,
        "UPDATE ledger SET body = replace(body, '\"B\"', '\"Z\"') WHERE run_id = ? AND seq = 1",
        rid,
    )
    assert changed == 1
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (
        f"ledger of run {rid} is BROKEN: first bad record at index 1 of 4 "
        "(record 1 was changed after it was written)"
    )


def test_editing_the_runs_output_is_reported(spindle, write):
    """An output edited in the runs table is shown by `show`, and verify reports it."""
    rid = _run(spindle, write)
    changed = _sql(
        spindle, 'UPDATE runs SET body = replace(body, \'"output":"C"\', \'"output":"X"\')'
    )
    assert changed == 1
    assert spindle.json("show", rid)[1]["output"] == "X"
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (
        f"BROKEN: the stored state of run {rid} (status 'completed', its output, error and "
        "waits) does not match the digest committed with its last ledger record: the run's "
        "row was changed after it was written"
    )


def test_editing_the_runs_status_is_reported(spindle, write):
    """A status edited in the runs table (column and body) is reported."""
    rid = _run(spindle, write)
    _sql(
        spindle,
        "UPDATE runs SET status = 'failed',"
        ' body = replace(body, \'"status":"completed"\', \'"status":"failed"\')',
    )
    assert spindle.json("show", rid)[1]["status"] == "failed"
    bad = _verify(spindle, rid)
    assert bad.returncode == 1
    assert f"BROKEN: the stored state of run {rid} (status 'failed'" in bad.stdout


# --- a keyed chain --------------------------------------------------------------------------


def test_a_keyed_ledger_verifies_with_its_key(spindle, write):
    """A run written with SPINDLE_LEDGER_KEY verifies as a keyed chain with that key."""
    rid = _run(spindle, write, env=KEY)
    done = _verify(spindle, rid, env=KEY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"ledger of run {rid} is intact: 4 records, keyed hash chain ok, head and state match"
    )
    key_id = _db(spindle).execute("SELECT body FROM ledger WHERE kind = 'head'").fetchone()[0]
    assert key_id and len(key_id) == 16
    assert KEY["SPINDLE_LEDGER_KEY"] not in (spindle.cwd / ".spindle" / "spindle.db").read_text(
        errors="replace"
    )


def test_recomputed_plain_hashes_are_caught_with_a_key(spindle, write):
    """An edit hidden by recomputing the plain SHA-256 chain, head and state digest is
    caught when the ledger is keyed."""
    rid = _run(spindle, write, env=KEY)
    _recompute_plain_chain(spindle, rid, ('"B"', '"Z"'))
    bad = _verify(spindle, rid, env=KEY)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (
        f"ledger of run {rid} is BROKEN: first bad record at index 0 of 4 "
        "(record 0 was changed after it was written)"
    )


def test_recomputed_plain_hashes_pass_without_a_key(spindle, write):
    """Without a key, whoever can write the file can recompute every hash: the limit a
    key removes."""
    rid = _run(spindle, write)
    _recompute_plain_chain(spindle, rid, ('"B"', '"Z"'))
    assert _verify(spindle, rid).returncode == 0


def test_verifying_a_keyed_ledger_without_the_key_says_so(spindle, write):
    """A keyed ledger verified without the key exits 2 and says to set the key."""
    rid = _run(spindle, write, env=KEY)
    key_id = _db(spindle).execute("SELECT body FROM ledger WHERE kind = 'head'").fetchone()[0]
    missing = _verify(spindle, rid)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: ledger of run {rid} is keyed (key id {key_id}); set SPINDLE_LEDGER_KEY to "
        "the key it was written with to verify it"
    )
    wrong = _verify(spindle, rid, env={"SPINDLE_LEDGER_KEY": "guess"})
    assert wrong.returncode == 2
    assert f"ledger of run {rid} is keyed with key id {key_id}, but SPINDLE_LEDGER_KEY" in (
        wrong.stderr
    )
    code, report = spindle.json("ledger", "verify", rid)
    assert code == 2
    assert (report["ok"], report["key_problem"], report["keyed"]) == (False, True, True)


# --- continuing a run -----------------------------------------------------------------------


def _ran(spindle) -> int:
    marks = Path(spindle.cwd / "count.txt")
    return len(marks.read_text().splitlines()) if marks.exists() else 0


def test_a_waiting_run_with_its_last_record_deleted_refuses_to_resume(spindle, write):
    """Resuming a waiting run whose last records were deleted is refused: its completed
    node does not run again."""
    rid = _run(spindle, write, WAITING)
    assert _ran(spindle) == 1
    count = _count(spindle, rid)
    _delete_last(spindle, rid, count)  # the wait and the completed node's record
    refused = spindle("resume", rid, "--payload", '"yes"')
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        f"error: run {rid} cannot be continued: ledger of run {rid} is truncated: its head "
        f"records {count} records ending in hash "
    )
    assert "the ledger holds none; continuing would run its completed nodes again" in (
        refused.stderr
    )
    assert _ran(spindle) == 1


def test_a_waiting_run_missing_only_its_wait_record_refuses_to_resume(spindle, write):
    """Deleting just the last record (the wait) is refused as well."""
    rid = _run(spindle, write, WAITING)
    _delete_last(spindle, rid, 1)
    refused = spindle("resume", rid, "--payload", '"yes"')
    assert refused.returncode == 2
    assert f"run {rid} cannot be continued: ledger of run {rid} is truncated" in refused.stderr
    assert spindle.json("show", rid)[1]["status"] == "waiting"


def test_a_keyed_waiting_run_resumes_only_with_its_key(spindle, write):
    """A keyed run is continued with its key, and refused without it."""
    rid = _run(spindle, write, WAITING, env=KEY)
    refused = spindle("resume", rid, "--payload", '"yes"')
    assert refused.returncode == 2
    assert "is keyed (key id " in refused.stderr
    assert "set SPINDLE_LEDGER_KEY to the key it was written with to continue it" in (
        refused.stderr
    )
    code, doc = spindle.json("resume", rid, "--payload", '"yes"', env=KEY)
    assert (code, doc["status"]) == (0, "completed")
    assert _verify(spindle, rid, env=KEY).returncode == 0
    assert _ran(spindle) == 1


def test_require_key_fails_an_unkeyed_ledger(spindle, write):
    """`--require-key` fails a plain ledger (a key id stripped and hashes recomputed looks
    like one) and passes a keyed one."""
    plain = _run(spindle, write)
    bad = spindle("ledger", "verify", plain, "--require-key", env=KEY)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (
        f"BROKEN: ledger of run {plain} is not keyed: it was written without "
        "SPINDLE_LEDGER_KEY, or its key id was removed and its hashes recomputed (--require-key)"
    )
    keyed = _run(spindle, write, env=KEY)
    assert spindle("ledger", "verify", keyed, "--require-key", env=KEY).returncode == 0
