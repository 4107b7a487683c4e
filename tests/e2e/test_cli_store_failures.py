"""A failing or hostile store file gives one ``error:`` line naming it, exit code 2, and
loses nothing: the runs committed before are still listed, and a run interrupted by
the failure resumes to the end once its cause is gone.

The failures are real: a full tmpfs when the tests may mount one (root), and
otherwise SQLite's own size limit (``PRAGMA max_page_count``, set by a small
wrapper around the real ``spindle`` command) — the same ``SQLITE_FULL`` from
the same engine; a write lock held by another connection; an immutable
(``chattr +i``) or mode-0444 file; bytes overwritten in the file; a table
dropped with sqlite3.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Spindle

pytestmark = pytest.mark.slow

SMALL = """\
name: small
nodes:
  a:
    runtime: {kind: python_code, code: "result = 1"}
"""

#: Node ``big`` needs many new pages: on a full store its commit is the one that fails.
BIG = """\
name: big
nodes:
  a:
    runtime: {kind: python_code, code: "result = 'first'"}
  big:
    runtime: {kind: python_code, code: "result = 'y' * 60000"}
    after: [a]
"""

#: A wrapper running the real CLI with every SQLite connection capped at its size when
#: opened plus SPINDLE_TEST_PAGE_MARGIN pages (the store's own SQLITE_FULL, no mock).
PAGE_LIMIT = """\
import os, sqlite3
_connect = sqlite3.connect
def connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    margin = os.environ.get("SPINDLE_TEST_PAGE_MARGIN")
    if margin is not None:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages + int(margin)}")
    return conn
sqlite3.connect = connect
from spindle.cli import main
main()
"""


def one_error(proc: subprocess.CompletedProcess[str], *says: str) -> str:
    """The one ``error:`` line of a command that exited 2, which must contain ``says``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.rstrip("\n").endswith(errors[0]), proc.stderr  # nothing after it
    for part in says:
        assert part in errors[0], errors[0]
    return errors[0]


def started(proc: subprocess.CompletedProcess[str]) -> str:
    """The id of the run a ``spindle run`` started."""
    found = re.search(r"run (\w+) started", proc.stderr)
    assert found is not None, proc.stderr
    return found.group(1)


def listed(spindle: Spindle, store: str) -> dict[str, str]:
    """``spindle runs``: run id -> status (``interrupted`` for a run left by a dead driver)."""
    code, doc = spindle.json("runs", "--store", store)
    assert code == 0, doc
    return {r["run_id"]: "interrupted" if r["interrupted"] else r["status"] for r in doc["runs"]}


def resumes_to_the_end(spindle: Spindle, store: str, run_id: str) -> None:
    """The run resumes to completed, its first node not run again."""
    code, doc = spindle.json("resume", run_id, "--store", store)
    assert (code, doc["status"]) == (0, "completed"), doc
    proc = spindle("ledger", run_id, "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert len(re.findall(r"node +a +completed", proc.stdout)) == 1, proc.stdout


@pytest.fixture
def earlier(spindle: Spindle, write) -> Callable[[str], str]:
    """``earlier(store)``: commit a completed run first, return its id."""

    def run_first(store: str) -> str:
        write("small.yaml", SMALL)
        code, doc = spindle.json("run", "small.yaml", "--store", store)
        assert code == 0, doc
        return str(doc["run_id"])

    return run_first


# --- a full disk --------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


FILL = """\
name: fill
nodes:
  a:
    runtime: {kind: python_code, code: "result = 'first'"}
  fill:
    after: [a]
    runtime:
      kind: python_code
      code: |
        import os
        # Fill the disk once: a resumed run finds the room freed and goes on.
        if not os.path.exists(MARK):
            open(MARK, "w").close()
            with open(FILLER, "wb") as f:
                try:
                    while True:
                        f.write(b"0" * 65536)
                        f.flush()
                except OSError:
                    pass
        result = "filled"
  after:
    runtime: {kind: python_code, code: "result = 'y' * 3000"}
    after: [fill]
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="mounting needs root"
)
def test_a_full_file_system_interrupts_the_run_and_it_resumes(
    spindle: Spindle, write, earlier, tmp_path: Path
) -> None:
    """A disk that fills up mid-run (a real 2 MB tmpfs) gives one error naming the store
    and the run to resume; the earlier run is kept; once space is freed the run resumes."""
    with small_tmpfs(tmp_path / "disk") as disk:
        store = f"sqlite:///{disk}/s.db"
        first = earlier(store)
        filler, mark = disk / "filler", tmp_path / "filled"
        write(
            "fill.yaml", FILL.replace("MARK", repr(str(mark))).replace("FILLER", repr(str(filler)))
        )
        proc = spindle("run", "fill.yaml", "--store", store)
        run_id = started(proc)
        one_error(
            proc,
            f"disk full writing SQLite store {disk}/s.db",
            f"spindle resume {run_id}",
            "nothing committed was lost",
        )
        assert listed(spindle, store) == {first: "completed", run_id: "interrupted"}
        filler.unlink()
        resumes_to_the_end(spindle, store, run_id)


def test_a_full_store_interrupts_the_run_and_it_resumes(
    spindle: Spindle, write, earlier, tmp_path: Path
) -> None:
    """SQLITE_FULL mid-run (the store at its page limit) gives one error naming the store
    and the run to resume; the earlier run is kept; once the limit is gone it resumes."""
    store = f"sqlite:///{tmp_path}/s.db"
    first = earlier(store)
    wrapper = write("limited_spindle.py", PAGE_LIMIT)
    write("big.yaml", BIG)
    proc = subprocess.run(
        [sys.executable, str(wrapper), "run", "big.yaml", "--store", store],
        cwd=tmp_path,
        env=spindle.env({"SPINDLE_TEST_PAGE_MARGIN": "0"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    run_id = started(proc)
    assert "a completed" in proc.stderr  # interrupted mid-run, after its first node
    one_error(
        proc,
        f"disk full writing SQLite store {tmp_path}/s.db",
        f"run 'spindle resume {run_id}' to continue run {run_id}",
        "the write was rolled back and nothing committed was lost",
    )
    assert listed(spindle, store) == {first: "completed", run_id: "interrupted"}
    resumes_to_the_end(spindle, store, run_id)


# --- a lock held too long ---------------------------------------------------------------------

WAIT_FOR_GO = """\
name: held
nodes:
  a:
    runtime:
      kind: python_code
      code: |
        import os, time
        open("READY", "w").close()
        while not os.path.exists("GO"):
            time.sleep(0.01)
        result = "first"
  b:
    runtime: {kind: python_code, code: "result = 2"}
    after: [a]
"""


def test_a_lock_held_past_busy_timeout_interrupts_the_run_and_it_resumes(
    spindle: Spindle, write, earlier, tmp_path: Path
) -> None:
    """Another process holding the write lock past busy_timeout gives one error naming the
    store, the timeout and the run to resume; once the lock is released it resumes."""
    path = tmp_path / "s.db"
    store = f"sqlite:///{path}?busy_timeout=0.2"
    first = earlier(store)
    ready, go = tmp_path / "ready", tmp_path / "go"
    write("held.yaml", WAIT_FOR_GO.replace("READY", str(ready)).replace("GO", str(go)))
    runner = spindle.popen("run", "held.yaml", "--store", store)
    try:
        while not ready.exists() and runner.poll() is None:
            time.sleep(0.01)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # node a's commit now waits, then gives up
        go.touch()
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    proc = subprocess.CompletedProcess(runner.args, runner.returncode, out, err)
    run_id = started(proc)
    one_error(
        proc,
        f"SQLite store {path} is locked by another process",
        "busy_timeout=0.2s",
        f"spindle resume {run_id}",
    )
    holder.execute("ROLLBACK")
    holder.close()
    assert listed(spindle, store) == {first: "completed", run_id: "interrupted"}
    resumes_to_the_end(spindle, store, run_id)


# --- files that cannot be written ------------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (``chattr +i``), or by its mode otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root, and without chattr nothing stops root writing")
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"running as root, and chattr +i fails here ({made.stderr.strip()})")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_a_read_only_store_file_is_reported_and_still_read(
    spindle: Spindle, write, earlier, tmp_path: Path
) -> None:
    """Writing to a read-only store file gives one error naming it and what to do; its runs
    are still listed, and once writable again a run goes through."""
    path = tmp_path / "s.db"
    store = f"sqlite:///{path}"
    first = earlier(store)
    with read_only(path):
        proc = spindle("run", "small.yaml", "--store", store)
        one_error(proc, f"SQLite store {path} cannot be written", "make the file and its directory")
        assert listed(spindle, store) == {first: "completed"}
    code, doc = spindle.json("run", "small.yaml", "--store", store)
    assert code == 0, doc


def test_a_read_only_store_directory_is_reported(spindle: Spindle, earlier, tmp_path: Path) -> None:
    """A store whose directory cannot be written (no room for its -wal file) gives one error
    naming the store and the directory's part; nothing is lost."""
    directory = tmp_path / "db"
    directory.mkdir()
    path = directory / "s.db"
    store = f"sqlite:///{path}"
    first = earlier(store)
    with read_only(directory):
        proc = spindle("run", "small.yaml", "--store", store)
        one_error(proc, f"SQLite store {path}", "this user can write that directory")
    assert listed(spindle, store) == {first: "completed"}


# --- damaged and foreign files -----------------------------------------------------------------


def test_overwritten_pages_are_reported_as_damage(
    spindle: Spindle, earlier, tmp_path: Path
) -> None:
    """A store whose pages were overwritten gives one error saying it is damaged and how
    to recover, for reading and for running alike."""
    path = tmp_path / "s.db"
    store = f"sqlite:///{path}"
    earlier(store)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * (size - 4096))
    for command in (("runs",), ("run", "small.yaml")):
        proc = spindle(*command, "--store", store)
        one_error(proc, f"SQLite store {path} is not a database or is damaged", ".recover")


def test_a_dropped_table_is_reported(spindle: Spindle, earlier, tmp_path: Path) -> None:
    """A store whose ledger table was dropped gives one error naming the file and the table."""
    path = tmp_path / "s.db"
    store = f"sqlite:///{path}"
    earlier(store)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE ledger")
    conn.commit()
    conn.close()
    for command in (("runs",), ("run", "small.yaml")):
        proc = spindle(*command, "--store", store)
        one_error(proc, f"SQLite store {path} lacks spindle's table ledger", "backup")


def test_an_empty_store_file_is_refused_not_taken_for_a_new_store(
    spindle: Spindle, write, tmp_path: Path
) -> None:
    """A 0-byte store file (a truncated store) is refused with one error, for reading and
    running alike, and is left as it was — runs do not silently disappear."""
    path = tmp_path / "s.db"
    path.touch()
    write("small.yaml", SMALL)
    for command in (("runs",), ("run", "small.yaml")):
        proc = spindle(*command, "--store", f"sqlite:///{path}")
        one_error(
            proc,
            f"SQLite store {path} exists but is empty (0 bytes): it is not a spindle store",
            "remove it to start a new store, or give the right path",
        )
    assert path.stat().st_size == 0


def test_a_sqlite_file_without_spindle_tables_is_refused(spindle: Spindle, tmp_path: Path) -> None:
    """A SQLite database with no tables is refused, not given spindle's schema."""
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    proc = spindle("runs", "--store", f"sqlite:///{path}")
    one_error(proc, f"SQLite store {path} is a SQLite database without spindle's schema")


# --- paths that cannot hold a store ---------------------------------------------------------------


def unusable_paths(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (store path, what the error says)."""
    (tmp_path / "afile").write_text("not a directory")
    (tmp_path / "adir.db").mkdir()
    paths = {
        "under a regular file": (f"{tmp_path}/afile/x.db", f"{tmp_path}/afile is a file"),
        "a directory": (f"{tmp_path}/adir.db", "is a directory, not a file"),
    }
    if Path("/etc/passwd").is_file():
        paths["under /etc/passwd"] = ("/etc/passwd/x.db", "/etc/passwd is a file")
    if Path("/proc/self").is_dir():
        paths["in /proc"] = ("/proc/x.db", "cannot open SQLite store /proc/x.db")
        paths["below /proc"] = ("/proc/nothing/x.db", "cannot create the directory /proc/nothing")
        paths["a /proc file"] = ("/proc/version", "exists but is empty (0 bytes)")
    if Path("/dev/null").exists():
        paths["a device"] = ("/dev/null", "is not a regular file")
    return paths


@pytest.mark.parametrize(
    "name",
    [
        "under a regular file",
        "a directory",
        "under /etc/passwd",
        "in /proc",
        "below /proc",
        "a /proc file",
        "a device",
    ],
)
def test_a_path_that_cannot_hold_a_store_is_refused(
    spindle: Spindle, write, tmp_path: Path, name: str
) -> None:
    """A store path that cannot be a store file gives one error naming it, for every command."""
    paths = unusable_paths(tmp_path)
    if name not in paths:
        pytest.skip(f"no such path on this system ({name})")
    path, says = paths[name]
    write("small.yaml", SMALL)
    for command in (("runs",), ("run", "small.yaml")):
        proc = spindle(*command, "--store", f"sqlite:///{path}")
        one_error(proc, path, says)


def test_a_worker_retries_a_run_it_could_not_drive_for_a_lock(
    spindle: Spindle, write, tmp_path: Path
) -> None:
    """A worker that meets a lock held past busy_timeout says so and drives the run once
    the lock is released, rather than giving the run up as broken."""
    path = tmp_path / "s.db"
    store = f"sqlite:///{path}?busy_timeout=0.1"
    write("small.yaml", SMALL)
    code, doc = spindle.json("run", "small.yaml", "--detach", "--store", store)
    assert (code, doc["status"]) == (0, "pending"), doc
    run_id = doc["run_id"]
    log = tmp_path / "worker.log"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with log.open("w") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", "spindle", "worker", "--poll", "0.05", "--store", store],
            cwd=tmp_path,
            env=spindle.env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60  # a bound on waiting, not a timing assertion
        while "is locked" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        holder.execute("ROLLBACK")
        holder.close()
        while listed(spindle, store)[run_id] != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    said = log.read_text()
    assert listed(spindle, store)[run_id] == "completed", said
    # Announcing itself and claiming are writes: the worker meets the lock there, says
    # so, and claims the run once the lock is gone.
    assert f"now, retrying: SQLite store {path} is locked" in said
    assert "Traceback" not in said


def test_a_result_the_artifact_store_cannot_keep_interrupts_the_run_not_fails_it(
    spindle: Spindle, write, earlier, tmp_path: Path
) -> None:
    """A result too big for the ledger whose artifact file cannot be written (the artifact
    directory's path is taken by a file) stops the run with one error naming the artifact;
    the node is not recorded as failed, and the run resumes once the path is free."""
    path = tmp_path / "s.db"
    store = f"sqlite:///{path}"
    first = earlier(store)
    blocker = Path(f"{path}.artifacts")
    blocker.write_text("in the way")
    write("huge.yaml", BIG.replace("60000", "70000"))  # over result_inline_limit
    proc = spindle("run", "huge.yaml", "--store", store)
    run_id = started(proc)
    one_error(proc, f"artifact {blocker}/", f"of SQLite store {path}", f"spindle resume {run_id}")
    assert listed(spindle, store) == {first: "completed", run_id: "interrupted"}
    blocker.unlink()
    resumes_to_the_end(spindle, store, run_id)
