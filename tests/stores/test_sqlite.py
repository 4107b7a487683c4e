"""SQLite-only behaviour: real files, URLs, settings, damage, schema versions, many processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from spindle.core.errors import ConfigError, LeaseLost, SchemaTooNew, StoreCorrupt, StoreError
from spindle.core.model import (
    MISSING_HEAD,
    PLAIN_CHAIN,
    LedgerHead,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    state_hash,
    state_text,
    verify_run,
)
from spindle.core.store import Commit
from spindle.plugins.stores._sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from spindle.plugins.stores.sqlite import SQLiteStore

Chain = Callable[..., list[StepRecord]]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def at_path(path: Path, **options: object) -> SQLiteStore:
    return SQLiteStore.from_url(f"sqlite:///{path}", **options)


def pragma(store: SQLiteStore, name: str) -> object:
    conn = store._conn  # the settings live on the connection; nothing public exposes them
    assert conn is not None
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


# --- files and URLs ---------------------------------------------------------------------


async def test_store_survives_reopen(tmp_path: Path, chain: Chain) -> None:
    """Runs, ledger, leases, events and artifacts are still there after closing and reopening."""
    path = tmp_path / "spindle.db"
    records = chain("r1", 2)
    async with at_path(path) as store:
        await store.commit(
            Commit(RunState("r1", "wf", status=RunStatus.RUNNING), records, create=True)
        )
        lease = await store.acquire_lease("r1", owner="w", host="h", pid=1, ttl=5, now=NOW)
        event = await store.deliver_event("k", {"v": 1})
        ref = await store.put_artifact("r1", b"blob")
    async with at_path(path) as store:
        assert (await store.load_run("r1")).status == RunStatus.RUNNING
        assert await store.ledger("r1") == records
        assert await store.get_lease("r1") == lease
        assert await store.pending_events("k") == [event]
        assert await store.get_artifact(ref.digest) == b"blob"


async def test_relative_url_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///sub/x.db names a file under the current directory and creates its parents."""
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore.from_url("sqlite:///sub/dir/x.db")
    assert store.path == str(tmp_path / "sub" / "dir" / "x.db")
    async with store:
        pass
    assert (tmp_path / "sub" / "dir" / "x.db").is_file()


def test_absolute_url_has_four_slashes(tmp_path: Path) -> None:
    """sqlite:////abs/path.db names an absolute path; %-escapes are decoded."""
    assert SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db").path == str(tmp_path / "a.db")
    spaced = SQLiteStore.from_url(f"sqlite:///{tmp_path}/my%20dir/a.db")
    assert spaced.path == str(tmp_path / "my dir" / "a.db")


def test_url_options_are_parsed_and_overridable(tmp_path: Path) -> None:
    """Query options set durability and busy_timeout; keyword options override them."""
    url = f"sqlite:///{tmp_path}/a.db?durability=full&busy_timeout=2.5"
    store = SQLiteStore.from_url(url)
    assert (store.durability, store.busy_timeout) == ("full", 2.5)
    assert SQLiteStore.from_url(url, durability="normal").durability == "normal"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///:memory:"]
)
def test_url_without_a_file_raises(url: str) -> None:
    """A SQLite URL that names no file raises ConfigError showing both URL forms."""
    with pytest.raises(ConfigError, match=r"sqlite:///relative\.db"):
        SQLiteStore.from_url(url)


def test_bad_option_value_raises(tmp_path: Path) -> None:
    """A query option whose value does not parse raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="busy_timeout='soon'"):
        SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?busy_timeout=soon")


async def test_unopened_store_raises(tmp_path: Path) -> None:
    """Using a store before open() raises StoreError saying how to open it."""
    with pytest.raises(StoreError, match=r"not open.*store\.open\(\)"):
        await at_path(tmp_path / "a.db").load_run("r1")


async def test_artifacts_are_files_beside_the_database(tmp_path: Path) -> None:
    """Artifact content is one file per digest under <db>.artifacts, with no temporary left."""
    async with at_path(tmp_path / "s.db") as store:
        ref = await store.put_artifact("r1", b"payload")
        await store.put_artifact("r2", b"payload")
    hexdigest = ref.digest.removeprefix("sha256:")
    blob = tmp_path / "s.db.artifacts" / "sha256" / hexdigest[:2] / hexdigest
    assert blob.read_bytes() == b"payload"
    assert [p.name for p in blob.parent.iterdir()] == [hexdigest]


async def test_unserializable_output_raises_store_error(tmp_path: Path) -> None:
    """Committing a state whose output is not JSON data raises StoreError naming the run."""
    async with at_path(tmp_path / "s.db") as store:
        with pytest.raises(StoreError, match=r"'r1'.*not JSON-serializable"):
            await store.commit(Commit(RunState("r1", "wf", output=object()), create=True))


# --- settings -----------------------------------------------------------------------------


async def test_normal_durability_uses_wal_and_synchronous_normal(tmp_path: Path) -> None:
    """The default durability runs in WAL mode with synchronous=NORMAL and foreign keys on."""
    async with at_path(tmp_path / "a.db") as store:
        assert pragma(store, "journal_mode") == "wal"
        assert pragma(store, "synchronous") == 1
        assert pragma(store, "foreign_keys") == 1
        assert pragma(store, "busy_timeout") == 10_000


async def test_full_durability_sets_synchronous_full(tmp_path: Path) -> None:
    """durability=full sets synchronous=FULL and fsyncs artifact files too."""
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?durability=full") as store:
        assert pragma(store, "synchronous") == 2
        ref = await store.put_artifact("r1", b"kept")
        assert await store.get_artifact(ref.digest) == b"kept"


# --- damage and versions -----------------------------------------------------------------


async def test_corrupt_file_raises_store_corrupt(tmp_path: Path) -> None:
    """A file that is not a SQLite database raises StoreCorrupt naming the file."""
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StoreCorrupt, match=rf"{path}.*not a database"):
        await at_path(path).open()


async def test_foreign_database_raises_store_corrupt(tmp_path: Path) -> None:
    """Another application's SQLite database raises StoreCorrupt instead of being written to."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    with pytest.raises(StoreCorrupt, match=rf"{path}.*not a spindle store.*customers"):
        await at_path(path).open()


async def test_newer_schema_raises_schema_too_new(tmp_path: Path) -> None:
    """A store written by a newer spindle raises SchemaTooNew naming the file and both versions."""
    path = tmp_path / "new.db"
    async with at_path(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE spindle_schema SET version = ?", (SCHEMA_VERSION + 7,))
    conn.close()
    expected = rf"{path}.*version {SCHEMA_VERSION + 7}.*up to version {SCHEMA_VERSION}.*upgrade"
    with pytest.raises(SchemaTooNew, match=expected):
        await at_path(path).open()


async def test_version_1_store_migrates_and_keeps_its_events(tmp_path: Path) -> None:
    """A file written at schema version 1 opens migrated; its pending event is kept
    and can be queued for a run."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    with conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO spindle_schema (version) VALUES (1)")
        conn.execute(
            "INSERT INTO inbox (event_id, key, payload, created_at) VALUES ('e1', 'k', '7', 0)"
        )
    conn.close()
    async with at_path(path) as store:
        [event] = await store.pending_events("k")
        assert (event.event_id, event.payload, event.run_id) == ("e1", 7, None)
        assert await store.queue_event("e1", "r1") is True
        assert await store.pending_events("k", for_run="r2") == []
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM spindle_schema").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


def _version_2_file(path: Path, records: list[StepRecord]) -> None:
    """A store file as spindle wrote it at schema version 2: one run and its ledger,
    and no ledger head in the run's row."""
    conn = sqlite3.connect(path)
    with conn:
        for step in MIGRATIONS[:2]:
            for statement in step:
                conn.execute(statement)
        conn.execute("INSERT INTO spindle_schema (version) VALUES (2)")
        run = RunState("r1", "wf", status=RunStatus.WAITING, created_at=NOW, updated_at=NOW)
        conn.execute(
            "INSERT INTO runs (run_id, workflow, status, created_at, updated_at, body)"
            " VALUES ('r1', 'wf', 'waiting', 0, 0, ?)",
            (json.dumps(run.to_dict()),),
        )
        (run_no,) = conn.execute("SELECT run_no FROM runs").fetchone()
        for r in records:
            conn.execute(
                "INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_no << 32 | r.seq,
                    r.run_id,
                    r.seq,
                    r.node_id,
                    r.kind,
                    r.status,
                    r.idempotency_key,
                    r.attempt,
                    r.prev_hash,
                    r.record_hash,
                    r.canonical_body(),
                ),
            )
    conn.close()


async def test_version_2_runs_have_no_head_until_their_next_commit(tmp_path: Path) -> None:
    """A run written at schema version 2 loads with head None after the migration (verify
    checks its chain and says the head is not recorded); its next commit records one."""
    path = tmp_path / "v2.db"
    records, prev = [], ""
    for seq in range(3):
        record = StepRecord("r1", seq, f"n{seq}", StepKind.NODE, StepStatus.COMPLETED, f"k{seq}")
        records.append(PLAIN_CHAIN.chain(record, prev))
        prev = record.record_hash
    _version_2_file(path, records)
    async with at_path(path) as store:
        loaded = await store.load_run("r1")
        assert loaded.head is None
        found = verify_run(loaded, await store.ledger("r1"))
        assert (found.ok, found.head_recorded, found.count) == (True, False, 3)
        assert found.notes[0].startswith(
            "head not recorded (the run was last written before store schema version 3)"
        )
        more = PLAIN_CHAIN.chain(
            StepRecord("r1", 3, "n3", StepKind.NODE, StepStatus.COMPLETED, "k3"), prev
        )
        for hot in (True, False):  # the hot path falls back to the full one for such a run
            loaded.status = RunStatus.RUNNING
            digest = PLAIN_CHAIN.state_digest(4, more.record_hash, state_hash(loaded))
            commit = Commit(loaded, [more] if hot else [], state_changed=not hot)
            commit.state_digest = digest
            await store.commit(commit)
        again = await store.load_run("r1")
        assert again.head == LedgerHead(4, more.record_hash, digest, None)
        assert verify_run(again, await store.ledger("r1")).ok
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM ledger WHERE kind = 'head'")
    conn.close()
    async with at_path(path) as store:
        assert (await store.load_run("r1")).head == MISSING_HEAD  # written, then deleted
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM spindle_schema").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


async def test_a_commits_state_text_is_kept_as_the_stored_state(
    tmp_path: Path, chain: Chain
) -> None:
    """A commit carrying ``state_text`` (the engine's canonical text of the state) is
    stored as that text, not serialized again, and loads back as the state, its
    counters from their columns."""
    path = tmp_path / "s.db"
    state = RunState("r1", "wf", status=RunStatus.RUNNING, inputs={"who": "Ada"}, event_seq=3)
    text = state_text(state)
    async with at_path(path) as store:
        await store.commit(Commit(state, chain("r1", 2), create=True, state_text=text))
        loaded = await store.load_run("r1")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT body FROM runs").fetchone() == (text,)
    conn.close()
    assert loaded == attrs.evolve(state, step_count=2)


async def test_the_head_is_a_ledger_row_at_the_next_key_and_no_record(
    tmp_path: Path, chain: Chain
) -> None:
    """The ledger head (schema version 3) is the one ledger row after the last record,
    at the key the next record takes: a hot commit moves it on (every ledger write an
    append, no table of its own), and no read of records sees it."""
    path = tmp_path / "spindle.db"
    first = chain("r1", 2)
    more = chain("r1", 2, start=2, head=first[-1].record_hash)
    async with at_path(path) as store:
        await store.commit(
            Commit(RunState("r1", "wf"), first, create=True, state_digest="d1", ledger_key_id="k")
        )
        loaded = await store.load_run("r1")
        await store.commit(Commit(loaded, more, state_changed=False, state_digest="d2"))
        records = first + more
        assert await store.ledger("r1") == records
        assert await store.ledger_head("r1") == (4, more[-1].record_hash)
        assert await store.find_step("r1", "") is None
        again = await store.load_run("r1")
        assert again.step_count == 4
        assert again.head == LedgerHead(4, more[-1].record_hash, "d2", None)
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id & 4294967295, kind, seq FROM ledger ORDER BY id").fetchall()
    assert rows == [(0, "node", 0), (1, "node", 1), (2, "node", 2), (3, "node", 3), (4, "head", -1)]
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "ledger_heads" not in tables
    # The head row is not in the idempotency key index (it moves every step).
    (index,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'ledger_key'").fetchone()
    assert index.endswith("WHERE kind <> 'head'")
    conn.close()


async def test_reopening_keeps_the_schema_version(tmp_path: Path) -> None:
    """Opening a current store again migrates nothing and keeps one version row."""
    path = tmp_path / "s.db"
    for _ in range(2):
        async with at_path(path):
            pass
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM spindle_schema").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


# --- many connections and processes ---------------------------------------------------------


async def test_fencing_holds_across_connections(tmp_path: Path, chain: Chain) -> None:
    """A commit through one connection is fenced off by a lease taken through another."""
    path = tmp_path / "s.db"
    async with at_path(path) as one, at_path(path) as two:
        await one.commit(Commit(RunState("r1", "wf"), create=True))
        old = await one.acquire_lease("r1", owner="a", host="h", pid=1, ttl=60, now=NOW)
        new = await two.acquire_lease(
            "r1", owner="b", host="h", pid=2, ttl=60, now=NOW, steal_token=old.token
        )
        with pytest.raises(LeaseLost):
            await one.commit(Commit(RunState("r1", "wf"), chain("r1", 1), token=old.token))
        await two.commit(Commit(RunState("r1", "wf"), chain("r1", 1), token=new.token))
        assert len(await one.ledger("r1")) == 1


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from datetime import UTC, datetime
    from spindle.core.model import RunState
    from spindle.core.store import Commit
    from spindle.plugins.stores.sqlite import SQLiteStore

    async def main(url, mode, owner, start, count):
        time.sleep(max(0.0, start - time.time()))  # start together to contend
        async with SQLiteStore.from_url(url) as store:
            if mode == "create":
                await store.commit(Commit(RunState(owner, "wf"), create=True))
                print(json.dumps([owner]))
                return
            now = datetime(2030, 1, 1, tzinfo=UTC)
            ttl = 0 if mode == "churn" else 3600  # ttl 0: expired at once, free to take
            tokens = []
            for _ in range(count):
                lease = await store.acquire_lease(
                    "r1", owner=owner, host="h", pid=0, ttl=ttl, now=now
                )
                tokens.append(None if lease is None else lease.token)
            print(json.dumps(tokens))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])))
    """
)


def run_children(url: str, mode: str, processes: int, count: int = 1) -> list[list[object]]:
    start = time.time() + 1.5  # after every child has imported spindle
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, mode, f"w{i}", str(start), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.fixture
def shared_run(tmp_path: Path) -> str:
    """The URL of a store file holding run r1, closed again so children can open it."""
    url = f"sqlite:///{tmp_path}/shared.db"

    async def create() -> None:
        async with SQLiteStore.from_url(url) as store:
            await store.commit(Commit(RunState("r1", "wf"), create=True))

    asyncio.run(create())
    return url


def test_racing_processes_get_one_lease(shared_run: str) -> None:
    """Of processes racing for a free run's lease, exactly one gets it."""
    results = run_children(shared_run, "race", processes=4)
    winners = [tokens[0] for tokens in results if tokens[0] is not None]
    assert winners == [1]


def test_contending_processes_get_distinct_tokens(shared_run: str) -> None:
    """Processes taking a lease in turn get every token exactly once."""
    results = run_children(shared_run, "churn", processes=3, count=40)
    tokens = [t for tokens in results for t in tokens]
    assert sorted(tokens) == list(range(1, 121))  # type: ignore[type-var]


def test_processes_opening_a_new_file_together_all_succeed(tmp_path: Path) -> None:
    """Processes creating the schema of a new file at once all open it and can write."""
    url = f"sqlite:///{tmp_path}/fresh.db"
    results = run_children(url, "create", processes=4)
    assert sorted(r[0] for r in results) == ["w0", "w1", "w2", "w3"]  # type: ignore[type-var]


async def test_a_version_5_store_migrates_to_keep_schedules(tmp_path: Path) -> None:
    """A file written at schema version 5 (before schedules) opens migrated to the
    current version, with an empty schedules table that keeps a schedule."""
    from spindle.core.model import Schedule

    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path)
    with conn:
        for step in MIGRATIONS[:5]:
            for statement in step:
                conn.execute(statement)
        conn.execute("INSERT INTO spindle_schema (version) VALUES (5)")
    conn.close()
    kept = Schedule("s", "wf", "d", "@daily", "UTC", next_slot=NOW)
    async with at_path(path) as store:
        assert await store.list_schedules() == []
        await store.put_schedule(kept)
    async with at_path(path) as store:
        assert await store.list_schedules() == [kept]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM spindle_schema").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()
