"""The SQLite store's tables and indexes, its migrations, and opening a connection.

The schema version lives in ``spindle_schema``. :data:`MIGRATIONS` is the
list of steps from one version to the next: version *n* is reached by
running the first *n* steps, so a new release appends a step and never
edits an old one. A file whose version is higher than this code knows was
written by a newer spindle and is refused (``SchemaTooNew``) rather than
misread.

Every query the store runs is served by an index; the comments name the
query each index is for.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from spindle._version import __version__
from spindle.core.errors import SchemaTooNew, StoreCorrupt
from spindle.plugins.stores._cache_rows import SQLITE_CACHE as _V7
from spindle.plugins.stores._schedule_rows import SQLITE_SCHEDULES
from spindle.plugins.stores._sqlite_errors import sqlite_failure

__all__ = [
    "HEAD_KIND",
    "MAX_RECORDS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEQ_BITS",
    "connect",
    "schema_version",
]

#: A ledger row's key is ``run_no << SEQ_BITS | seq``: one run's records are
#: one contiguous, seq-ordered key range, and (run, seq) is unique by key.
SEQ_BITS = 32

#: The most records one run's ledger holds (seqs 0 .. MAX_RECORDS - 1): the key
#: after its last record is its ledger head's (schema version 3).
MAX_RECORDS = (1 << SEQ_BITS) - 1

#: The ``kind`` of a ledger head row (no record has it: records are nodes, calls...).
HEAD_KIND = "head"

_V1: tuple[str, ...] = (
    "CREATE TABLE spindle_schema (version INTEGER NOT NULL)",
    # One row per run. The indexed columns are copies of RunState fields for
    # queries; ``body`` (the whole unstructured RunState as JSON) is what is
    # loaded. Times are epoch seconds (``updated_at``: microseconds). A run's
    # ledger count is read off the ledger's last key, and its ledger head (version
    # 3) is a ledger row, rather than kept here, so a step writes no run row.
    # ``wait_keys`` lets a commit skip rewriting ``waits`` when they did not change.
    # ``run_no`` is never reused (AUTOINCREMENT), since ledger keys embed it.
    """CREATE TABLE runs (
        run_no INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        workflow TEXT NOT NULL,
        status TEXT NOT NULL,
        parent_run_id TEXT,
        created_at REAL NOT NULL,
        updated_at INTEGER NOT NULL,  -- microseconds since the epoch (exact)
        wake_at REAL,
        wait_keys TEXT NOT NULL DEFAULT '',
        lease_owner TEXT,
        lease_host TEXT,
        lease_pid INTEGER,
        lease_expires_at REAL,
        lease_token INTEGER NOT NULL DEFAULT 0,
        event_seq INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL
    )""",
    # list_runs(status=...) and due_runs' pending part, newest/oldest first.
    "CREATE INDEX runs_status ON runs (status, created_at)",
    # list_runs(workflow=...)
    "CREATE INDEX runs_workflow ON runs (workflow, created_at)",
    # list_runs(parent_run_id=...): children of a run.
    "CREATE INDEX runs_parent ON runs (parent_run_id, created_at) WHERE parent_run_id IS NOT NULL",
    # list_runs() without filters.
    "CREATE INDEX runs_created ON runs (created_at)",
    # due_runs: timers due.
    "CREATE INDEX runs_wake ON runs (wake_at) WHERE status = 'waiting'",
    # due_runs: running runs whose driver's lease expired.
    "CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE status = 'running'",
    # The ledger. ``id`` (see SEQ_BITS) makes (run, seq) unique and a run's
    # ledger one ordered range, with no second b-tree: a separate UNIQUE
    # (run_id, seq) index would cost another page write on every commit (the
    # commit path is dominated by page writes; this saves about a quarter).
    """CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        node_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        record_hash TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    # find_step: the key, then the run's id range, latest first (the index
    # entries end in the row's id).
    "CREATE INDEX ledger_key ON ledger (idempotency_key)",
    # waiting_on(event_key): rewritten from state.waits in each commit.
    """CREATE TABLE waits (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        event_key TEXT NOT NULL,
        since REAL NOT NULL,
        PRIMARY KEY (run_id, event_key)
    ) WITHOUT ROWID""",
    "CREATE INDEX waits_event ON waits (event_key, since)",
    """CREATE TABLE definitions (
        definition_id TEXT PRIMARY KEY,
        body TEXT NOT NULL
    )""",
    # The inbox; ``id`` is the delivery order.
    """CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        key TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        consumed_by TEXT
    )""",
    # pending_events(key) and pending_events().
    "CREATE INDEX inbox_pending_key ON inbox (key, id) WHERE consumed_by IS NULL",
    "CREATE INDEX inbox_pending ON inbox (id) WHERE consumed_by IS NULL",
    # Artifact references; the content itself is a file named by its digest.
    # ``name`` may be NULL, which UNIQUE would treat as distinct, hence the
    # expression (a blob sorts apart from every text, so no name collides).
    """CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        name TEXT,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX artifacts_ref ON artifacts (run_id, digest, ifnull(name, x''))",
    # Whether any run still references a blob (for pruning).
    "CREATE INDEX artifacts_digest ON artifacts (digest)",
    """CREATE TABLE audit (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE handoffs (
        id INTEGER PRIMARY KEY,
        envelope_id TEXT NOT NULL UNIQUE,
        source_run_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        acknowledged_run_id TEXT,
        body TEXT NOT NULL
    )""",
    # handoffs(source_run_id) and handoffs(open_only=True).
    "CREATE INDEX handoffs_source ON handoffs (source_run_id, created_at)",
    "CREATE INDEX handoffs_open ON handoffs (created_at) WHERE acknowledged_run_id IS NULL",
)

# Version 2: an event emitted while the run waiting on its key was busy is
# queued for that run (``run_id``); NULL leaves it to whichever run waits first.
_V2: tuple[str, ...] = (
    "ALTER TABLE inbox ADD COLUMN run_id TEXT",
    "CREATE INDEX inbox_queued ON inbox (run_id) WHERE run_id IS NOT NULL AND consumed_by IS NULL",
)

# Version 3: every commit writes the run's ledger head, in the transaction that
# appends the records: the record count and last record hash (so records
# removed from the ledger's end are noticed), the engine's digest of the run's
# state chained onto that hash, and the fingerprint of the key the chain is
# keyed with (NULL: plain). The head is a row of the ledger table itself, at
# the key the run's next record will take (``run_no << SEQ_BITS | count``):
# a step writes its first record over the head row and appends the new head
# after its last one, so every ledger write is an append at the end of the
# run's range, sharing the records' b-tree page -- the head costs no page
# write of its own (a table of heads cost one more page per commit, and a head
# kept at a fixed key after the records made every insert a mid-page one,
# whose page splits rewrite more pages). Its columns (kind HEAD_KIND):
# run_id '' and seq -1 (so it is none of the run's records, whatever a query
# filters on), attempt = the record count, record_hash = the last record's
# hash, prev_hash = the state digest, body = the key id ('' for plain). Reads
# of records skip ``kind = 'head'``, and ``ledger_key`` becomes a partial
# index without head rows (a head moves every step; an entry would cost an
# index page). ``runs.head_kept`` says a head was written, so a deleted head
# row is noticed too; runs written before this version have none until their
# next commit. Deleting records (by run_id, seq or key) leaves the head, which
# then tells how many there were.
_V3: tuple[str, ...] = (
    "ALTER TABLE runs ADD COLUMN head_kept INTEGER NOT NULL DEFAULT 0",
    "DROP INDEX ledger_key",
    f"CREATE INDEX ledger_key ON ledger (idempotency_key) WHERE kind <> '{HEAD_KIND}'",
)

# Version 4: work shared by workers. A run started on a queue keeps its queue,
# priority and partition in columns (claims pick by them and count the runs each
# queue has under a live lease); ``claimed_at`` is when a worker first claimed
# it (its start, which rate limits count). ``queues`` holds each queue's limits,
# ``workers`` the workers that announced themselves (body: WorkerInfo as JSON).
_V4: tuple[str, ...] = (
    "ALTER TABLE runs ADD COLUMN queue_name TEXT",
    "ALTER TABLE runs ADD COLUMN queue_priority INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE runs ADD COLUMN queue_partition TEXT",
    "ALTER TABLE runs ADD COLUMN claimed_at REAL",
    # the load of a limited queue: its runs under a lease, its recent starts
    "CREATE INDEX runs_queue ON runs (queue_name, claimed_at) WHERE queue_name IS NOT NULL",
    # claims: pending runs, higher priority first, then the oldest
    "CREATE INDEX runs_pending ON runs (queue_priority DESC, created_at) WHERE status = 'pending'",
    # held_leases and list_workers: the runs under a lease
    "CREATE INDEX runs_leased ON runs (lease_owner) WHERE lease_owner IS NOT NULL",
    "CREATE TABLE queues (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE workers (worker_id TEXT PRIMARY KEY, seen_at REAL NOT NULL, body TEXT NOT NULL)",
)

# Version 5: pruning deletes the inbox events a pruned run consumed, found
# through this index rather than by reading the whole inbox under the write
# lock. Only consumed events have an entry, and an event's entry is written
# once, by the commit that consumes it.
_V5: tuple[str, ...] = (
    "CREATE INDEX inbox_consumed ON inbox (consumed_by) WHERE consumed_by IS NOT NULL",
)

#: Steps from version n to n + 1 (append only; never edit a released step). Version 6:
#: schedules (``_schedule_rows``: a slot claim is one compare-and-set); 7: ``_cache_rows``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, (SQLITE_SCHEDULES,), _V7)

#: The schema version this code writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)


def connect(
    path: Path,
    *,
    durability: str,
    busy_timeout: float,
    new: bool = False,
    shown: Path | None = None,
) -> sqlite3.Connection:
    """Open ``path``, apply the connection settings, and create or migrate the schema.

    Args:
        path: the database file; it must exist unless ``new``.
        durability: ``normal`` or ``full``.
        busy_timeout: seconds to wait for another process's lock.
        new: the file is being created now, so it gets the schema; otherwise a
            file without spindle's schema is refused.
        shown: the path messages name, when ``path`` is a temporary name for it.

    Raises:
        StoreCorrupt: the file is not a SQLite database, is damaged, is
            another application's database, or lacks some of spindle's tables.
        SchemaTooNew: the file was written by a newer spindle.
        StoreError: the file cannot be opened (permissions, locked too long).
    """
    name = shown or path
    try:
        # Autocommit mode (isolation_level=None): the store issues BEGIN
        # IMMEDIATE itself, so a write transaction takes the write lock up
        # front and two processes serialize instead of failing on upgrade.
        # An existing store is opened with mode=rw, which never creates a file:
        # one that vanished since it was looked at is not silently made anew.
        target = path if new else f"file:{quote(str(path))}?mode=rw"
        conn = sqlite3.connect(
            target,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
            uri=not new,
        )
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, str(name), writing=False, busy_timeout=busy_timeout) from exc
    deadline = time.monotonic() + busy_timeout
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # NORMAL in WAL mode loses nothing when a process is killed, only on
        # power loss; FULL fsyncs the WAL at every commit.
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                _migrate(conn, name, new)
                break
            except sqlite3.OperationalError as exc:
                # While processes open a new file together, switching it to
                # WAL can report SQLITE_BUSY without waiting on busy_timeout;
                # wait here instead (only at open, never on the commit path).
                busy = getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY")
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_failure(exc, str(name), writing=False, busy_timeout=busy_timeout) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _tables(steps: tuple[tuple[str, ...], ...]) -> frozenset[str]:
    """The tables a store has after ``steps``: created, less dropped, renamed followed."""
    tables: set[str] = set()
    for step in steps:
        for statement in step:
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                tables.add(words[5] if words[2:5] == ["IF", "NOT", "EXISTS"] else words[2])
            elif words[:2] == ["DROP", "TABLE"]:
                tables.discard(words[-1])
            elif words[:2] == ["ALTER", "TABLE"] and words[3:5] == ["RENAME", "TO"]:
                tables.discard(words[2])
                tables.add(words[5])
    return frozenset(tables)


def _version(conn: sqlite3.Connection, path: Path, new: bool) -> int:
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "spindle_schema" not in tables:
        if tables:
            listed = ", ".join(sorted(tables))
            raise StoreCorrupt(
                f"{path} is a SQLite database but not a spindle store (it has tables {listed} "
                "and no spindle_schema); point the store URL at a new file"
            )
        if not new:
            raise StoreCorrupt(
                f"SQLite store {path} is a SQLite database without spindle's schema (it has "
                "no tables): it is not a spindle store; remove it to start a new store, or "
                "give the right path"
            )
        return 0
    row = conn.execute("SELECT version FROM spindle_schema").fetchone()
    if row is None:
        raise StoreCorrupt(
            f"SQLite store {path} has an empty spindle_schema table; restore it from a backup"
        )
    version: int = row[0]
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"SQLite store {path} has schema version {version}, but spindle {__version__} "
            f"reads up to version {SCHEMA_VERSION}; upgrade spindle (pip install -U spindle) "
            "to open it"
        )
    missing = _tables(MIGRATIONS[:version]) - tables
    if missing:
        raise StoreCorrupt(
            f"SQLite store {path} lacks spindle's table {', '.join(sorted(missing))} (dropped, "
            "or the file was edited): it cannot be used as it is; restore it from a backup"
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path, new: bool) -> None:
    if _version(conn, path, new) == SCHEMA_VERSION:
        return  # the common case: no write lock taken at open
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated
        # the file since the first read.
        version = _version(conn, path, new)
        # Statements one by one: executescript() would COMMIT the transaction.
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        if version == 0:
            conn.execute("INSERT INTO spindle_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            conn.execute("UPDATE spindle_schema SET version = ?", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def schema_version(path: Path) -> int:
    """The schema version of the file at ``path`` (0: no file, or no spindle tables),
    read-only: the file is neither created nor migrated."""
    if not path.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, str(path), writing=False, busy_timeout=0) from exc
    try:
        row = conn.execute(
            "SELECT version FROM spindle_schema"
            " WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'spindle_schema')"
        ).fetchone()
    except sqlite3.OperationalError:
        return 0  # no spindle_schema table
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, str(path), writing=False, busy_timeout=0) from exc
    finally:
        conn.close()
    return int(row[0]) if row else 0
